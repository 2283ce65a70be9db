using Microsoft.Extensions.Logging;

namespace BackupMx.Admin;

internal static partial class Log
{
    [LoggerMessage(EventId = 8500, Level = LogLevel.Information, Message = "Admin endpoint listening on http://{Endpoint}/ (metrics /metrics, health /healthz and /readyz, dashboard /); token required: {TokenRequired}")]
    public static partial void Listening(ILogger logger, string endpoint, bool tokenRequired);

    [LoggerMessage(EventId = 8501, Level = LogLevel.Information, Message = "Admin endpoint off ({Key} is empty)")]
    public static partial void Off(ILogger logger, string key);

    [LoggerMessage(EventId = 8502, Level = LogLevel.Warning, Message = "Admin request {Method} {Path} from {Client} refused: {Reason}")]
    public static partial void Refused(ILogger logger, string method, string path, string? client, string reason);

    [LoggerMessage(EventId = 8503, Level = LogLevel.Information, Message = "Dashboard flush of {Domain} from {Client}: {Flushed} message(s) made due now")]
    public static partial void Flushed(ILogger logger, string domain, string? client, string flushed);

    [LoggerMessage(EventId = 8504, Level = LogLevel.Warning, Message = "Spool gauges could not be refreshed for a metrics scrape; the last values are exported until they go stale")]
    public static partial void GaugeRefreshFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 8505, Level = LogLevel.Error, Message = "Admin request {Method} {Path} failed")]
    public static partial void RequestFailed(ILogger logger, string method, string path, Exception exception);

    [LoggerMessage(EventId = 8506, Level = LogLevel.Information, Message = "Dashboard {Action} of {QueueId} for {Domain} from {Client}: {Outcome}")]
    public static partial void MessageChanged(ILogger logger, string action, string queueId, string domain, string? client, string outcome);

    [LoggerMessage(EventId = 8507, Level = LogLevel.Information, Message = "Dashboard {Action} of every message of {Domain} from {Client}: {Outcome}")]
    public static partial void DomainChanged(ILogger logger, string action, string domain, string? client, string outcome);
}
