using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace BackupMx.Core;

/// <summary>
/// The relay's traces and metrics, under one name so that any OpenTelemetry exporter
/// (console, Application Insights) picks them up with AddSource/AddMeter("BackupMx").
/// </summary>
public static class Telemetry
{
    public const string Name = "BackupMx";

    public static readonly ActivitySource ActivitySource = new(Name);

    /// <summary>Span tag holding the message's queue id (on the Intake and Forward spans).</summary>
    public const string QueueIdTag = "backupmx.queue_id";

    /// <summary>Span tag listing every queue id of a message split by domain at intake.</summary>
    public const string QueueIdsTag = "backupmx.queue_ids";

    /// <summary>Span tag holding the recipient domain.</summary>
    public const string DomainTag = "backupmx.domain";

    /// <summary>Metric tag holding the recipient domain.</summary>
    public const string DomainMetricTag = "domain";

    public static readonly Meter Meter = new(Name);

    public static readonly Counter<long> MessagesAccepted = Meter.CreateCounter<long>("backupmx.messages.accepted", "{message}", "Messages accepted with 250 and spooled, one per recipient domain of a message.");

    public static readonly Counter<long> MessagesRefused = Meter.CreateCounter<long>("backupmx.messages.refused", "{message}", "Messages refused at DATA because the spool could not store them.");

    public static readonly Counter<long> RecipientsDelivered = Meter.CreateCounter<long>("backupmx.recipients.delivered", "{recipient}", "Recipients accepted by the destination.");

    public static readonly Counter<long> RecipientsDeferred = Meter.CreateCounter<long>("backupmx.recipients.deferred", "{recipient}", "Recipients left for a later attempt.");

    public static readonly Counter<long> RecipientsBounced = Meter.CreateCounter<long>("backupmx.recipients.bounced", "{recipient}", "Recipients failed for good (5xx or expiry).");

    public static readonly Histogram<double> DeliveryLatency = Meter.CreateHistogram<double>("backupmx.delivery.latency", "s", "Time from acceptance to delivery of a recipient.");
}
