using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using BackupMx.Core.Configuration;

namespace BackupMx.Core.Notifications;

public static class NotificationServiceCollectionExtensions
{
    /// <summary>
    /// The outage notifier and its settings (<c>BackupMx:Notifications</c>, each domain's
    /// <c>NotifyAddresses</c>), checked at start-up. The host adds where the state is kept
    /// (<see cref="INoticeStateStore"/>) and when the notifier runs.
    /// </summary>
    public static IServiceCollection AddBackupMxNotifications(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<NotificationOptions>()
            .BindChecked(configuration.GetSection(NotificationOptions.SectionName))
            .ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<NotificationOptions>, NotificationOptionsValidator>());
        services.AddOptions<List<NotifiedDomain>>().Configure(list => configuration.GetSection("BackupMx:Domains").Bind(list));
        services.TryAddSingleton<WebhookClient>();
        services.TryAddSingleton<OutageNotifier>();
        return services;
    }
}
