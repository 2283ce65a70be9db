using Azure.Data.Tables;
using BackupMx.Core.Configuration;
using BackupMx.Core.Ports;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BackupMx.Azure;

public static class SharedRecipientVerificationExtensions
{
    /// <summary>
    /// Puts <see cref="TableCachedRecipientVerifier"/> (table <c>BackupMx:Azure:VerificationsTable</c>)
    /// in front of the callout verifier <typeparamref name="TCallout"/>, which must be registered
    /// as itself, and makes it the host's one <see cref="IRecipientVerifier"/>. Needs <see cref="AzureServiceCollectionExtensions.AddBackupMxAzureStorage"/>.
    /// </summary>
    public static IServiceCollection AddBackupMxSharedRecipientVerification<TCallout>(this IServiceCollection services)
        where TCallout : class, IRecipientVerifier
    {
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(sp => new TableCachedRecipientVerifier(
            sp.GetRequiredService<TCallout>(),
            sp.GetRequiredService<TableServiceClient>().GetTableClient(sp.GetRequiredService<IOptions<AzureOptions>>().Value.VerificationsTable),
            sp.GetRequiredService<IOptions<BackupMxOptions>>(),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILogger<TableCachedRecipientVerifier>>()));
        services.TryAddSingleton<IRecipientVerifier>(sp => sp.GetRequiredService<TableCachedRecipientVerifier>());
        return services;
    }
}
