using BackupMx.Azure;
using BackupMx.Core.Configuration;
using BackupMx.Core.Ports;
using BackupMx.Delivery;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BackupMx.Receiver.Callouts;

public static class CalloutServiceCollectionExtensions
{
    /// <summary>
    /// Recipient callouts for the receiver, behind the shared verifications table: through the
    /// function app when <c>BackupMx:Receiver:CalloutUrl</c> is set (what the Azure template
    /// configures), otherwise directly to the primary with the embedded server's verifier.
    /// </summary>
    public static IServiceCollection AddBackupMxReceiverCallouts(this IServiceCollection services, IConfiguration configuration)
    {
        const string url = CalloutOptions.SectionName + ":" + nameof(CalloutOptions.CalloutUrl);
        services.AddOptions<CalloutOptions>()
            .BindChecked(configuration.GetSection(CalloutOptions.SectionName))
            .ValidateDataAnnotations()

            // The key travels in a header: only over TLS, except to a listener on this machine.
            .Validate(
                o => o.CalloutUrl is null || (o.CalloutUrl.IsAbsoluteUri && (o.CalloutUrl.Scheme == Uri.UriSchemeHttps || (o.CalloutUrl.Scheme == Uri.UriSchemeHttp && o.CalloutUrl.IsLoopback))),
                $"{url} must be an absolute https URL (http only on loopback).")
            .Validate(
                o => o.CalloutUrl is null || !string.IsNullOrWhiteSpace(o.CalloutKey),
                $"{CalloutOptions.SectionName}:{nameof(CalloutOptions.CalloutKey)} (the function key) is required with {url}.")
            .ValidateOnStart();

        services.AddBackupMxRecipientCallouts();
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(sp => new FunctionRecipientVerifier(
            new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) }) { Timeout = Timeout.InfiniteTimeSpan },
            sp.GetRequiredService<IOptions<CalloutOptions>>(),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILogger<FunctionRecipientVerifier>>()));
        services.TryAddSingleton(sp => new ReceiverCalloutVerifier(
            sp.GetRequiredService<IOptions<CalloutOptions>>().Value.CalloutUrl is null
                ? sp.GetRequiredService<MailKitRecipientVerifier>()
                : sp.GetRequiredService<FunctionRecipientVerifier>()));
        services.AddBackupMxSharedRecipientVerification<ReceiverCalloutVerifier>();
        services.AddHostedService<CalloutRouteReporter>();
        return services;
    }
}

/// <summary>
/// The callout the receiver uses, chosen once from the options (the function app, or the primary
/// directly), so the choice follows the configuration as finally built rather than as it stood
/// when the services were composed.
/// </summary>
public sealed class ReceiverCalloutVerifier(IRecipientVerifier inner) : IRecipientVerifier
{
    public IRecipientVerifier Inner { get; } = inner;

    public Task<VerificationResult> VerifyAsync(string domain, string address, CancellationToken cancellationToken) =>
        Inner.VerifyAsync(domain, address, cancellationToken);
}
