using BackupMx.Core.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BackupMx.Receiver.Callouts;

/// <summary>
/// Says at start which way recipient callouts go, when some domain verifies recipients: a receiver
/// that calls primaries out itself from Azure may find port 25 blocked, and that should be
/// visible before the first deferred RCPT.
/// </summary>
internal sealed partial class CalloutRouteReporter(
    IOptions<CalloutOptions> callouts,
    IOptions<BackupMxOptions> options,
    ILogger<CalloutRouteReporter> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (!options.Value.Domains.Exists(d => d.VerifyRecipients))
        {
            return Task.CompletedTask;
        }

        // Only the host name: a URL may carry a key in its query string.
        if (callouts.Value.CalloutUrl is { } url)
        {
            LogThroughFunctionApp(logger, url.Host);
        }
        else
        {
            LogDirect(logger);
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(EventId = 7010, Level = LogLevel.Information, Message = "Recipient callouts go through the function app at {Host}")]
    private static partial void LogThroughFunctionApp(ILogger logger, string host);

    [LoggerMessage(EventId = 7011, Level = LogLevel.Information, Message = "Recipient callouts connect to the primaries directly (BackupMx:Receiver:CalloutUrl is not set)")]
    private static partial void LogDirect(ILogger logger);
}
