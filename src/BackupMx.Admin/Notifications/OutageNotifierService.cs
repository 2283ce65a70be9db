using BackupMx.Core.Notifications;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace BackupMx.Admin.Notifications;

/// <summary>The embedded server's outage notices: one run of the notifier every <c>CheckInterval</c>.</summary>
internal sealed class OutageNotifierService(OutageNotifier notifier, IOptions<NotificationOptions> options, TimeProvider time) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!notifier.AnyChannel)
        {
            return;
        }

        while (!stoppingToken.IsCancellationRequested)
        {
            await notifier.RunOnceAsync(stoppingToken).ConfigureAwait(false);
            try
            {
                await Task.Delay(options.Value.CheckInterval, time, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }
}
