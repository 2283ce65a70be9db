using Microsoft.Extensions.Hosting;

namespace BackupMx.Smtp.Hosting;

/// <summary>
/// Runs the receiver in the host and watches it. Should it stop accepting connections without being
/// asked to, this service fails: the host stops (its default StopHost behaviour), HostRunner exits
/// with 70 naming it, and a supervisor that restarts on failure brings the MX back. Left alone, the
/// process would go on forwarding and probing while no mail could come in, and nobody would know.
/// </summary>
internal sealed class SmtpReceiverHostedService(SmtpReceiver receiver) : BackgroundService
{
    // The receiver first, so that a port in use or a bad certificate fails the host's start (one
    // "cannot start" line, exit 2) rather than the watch a moment later.
    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        await receiver.StartAsync(cancellationToken).ConfigureAwait(false);
        await base.StartAsync(cancellationToken).ConfigureAwait(false);
    }

    // The graceful stop first (no new connections, open sessions finish or get 421); the watch then
    // sees a stop that was asked for and ends without failing.
    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        try
        {
            await receiver.StopAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            await base.StopAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    protected override Task ExecuteAsync(CancellationToken stoppingToken) => receiver.Running.WaitAsync(stoppingToken);
}
