using Microsoft.Extensions.Hosting;

namespace BackupMx.Smtp.Hosting;

internal sealed class SmtpReceiverHostedService(SmtpReceiver receiver) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => receiver.StartAsync(cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => receiver.StopAsync(cancellationToken);
}
