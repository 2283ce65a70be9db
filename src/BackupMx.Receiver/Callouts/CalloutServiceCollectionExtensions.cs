using BackupMx.Azure;
using BackupMx.Core.Configuration;
using BackupMx.Delivery;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
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
        var section = configuration.GetSection(CalloutOptions.SectionName);
        if (string.IsNullOrWhiteSpace(section[nameof(CalloutOptions.CalloutUrl)]))
        {
            services.AddBackupMxRecipientCallouts();
            services.AddBackupMxSharedRecipientVerification<MailKitRecipientVerifier>();
            return services;
        }

        const string url = CalloutOptions.SectionName + ":" + nameof(CalloutOptions.CalloutUrl);
        services.AddOptions<CalloutOptions>()
            .BindChecked(section)
            .ValidateDataAnnotations()

            // The key travels in a header: only over TLS, except to a listener on this machine.
            .Validate(
                o => o.CalloutUrl is { IsAbsoluteUri: true } u && (u.Scheme == Uri.UriSchemeHttps || (u.Scheme == Uri.UriSchemeHttp && u.IsLoopback)),
                $"{url} must be an absolute https URL (http only on loopback).")
            .Validate(
                o => !string.IsNullOrWhiteSpace(o.CalloutKey),
                $"{CalloutOptions.SectionName}:{nameof(CalloutOptions.CalloutKey)} (the function key) is required with {url}.")
            .ValidateOnStart();
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(sp => new FunctionRecipientVerifier(
            new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) }) { Timeout = Timeout.InfiniteTimeSpan },
            sp.GetRequiredService<IOptions<CalloutOptions>>(),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILogger<FunctionRecipientVerifier>>()));
        services.AddBackupMxSharedRecipientVerification<FunctionRecipientVerifier>();
        return services;
    }
}
