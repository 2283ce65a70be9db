using System.ComponentModel.DataAnnotations;

namespace BackupMx.Functions;

/// <summary>The <c>BackupMx:Functions</c> section: how the Forward function drains due wake-ups, and the deadline of the callouts VerifyRecipient makes for the receiver.</summary>
public sealed class FunctionsOptions
{
    public const string SectionName = "BackupMx:Functions";

    /// <summary>Messages forwarded at the same time within one run. Default 16.</summary>
    [Range(1, 256)]
    public int MaxConcurrentForwards { get; set; } = 16;

    /// <summary>The <c>functionTimeout</c> of host.json: the host stops a run that lasts longer.</summary>
    public static readonly TimeSpan FunctionTimeout = TimeSpan.FromMinutes(10);

    /// <summary>Room a run keeps after its last attempt ends, to commit outcomes and settle wake-ups.</summary>
    public static readonly TimeSpan SettleMargin = TimeSpan.FromMinutes(1);

    /// <summary>
    /// How long one Forward run keeps receiving new wake-ups; deliveries started before the end
    /// still finish, each within BackupMx:Delivery:AttemptTimeout. The budget plus that timeout plus
    /// <see cref="SettleMargin"/> must fit in <see cref="FunctionTimeout"/> (validated at start), or
    /// the host could stop a run mid-delivery and a later run deliver the message again.
    /// Default 4 minutes.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:08:00")]
    public TimeSpan ForwardTimeBudget { get; set; } = TimeSpan.FromMinutes(4);

    /// <summary>
    /// Longest one receive waits for a due wake-up before the run decides nothing is due. Default 2 s:
    /// long enough for Service Bus to hand over what is due, short enough to end an idle run quickly.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:01:00")]
    public TimeSpan ReceiveWait { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Failed wake-ups after which a run stops receiving. Abandoned wake-ups come back at once, so
    /// while a dependency is down a run would otherwise spin on them for its whole budget. Default 10.
    /// </summary>
    [Range(1, 10_000)]
    public int MaxFailuresPerRun { get; set; } = 10;

    /// <summary>
    /// Longest a recipient callout for the receiver (VerifyRecipient) may take; past it the answer
    /// is Unknown. The receiver's BackupMx:Receiver:CalloutTimeout must be longer. Default 20 s.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:02:00")]
    public TimeSpan CalloutTimeout { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>
    /// A body blob with no spool record is deleted by the Expire function once it is older than
    /// this: a receiver killed between the upload and the record commit leaves one. It must be
    /// longer than any intake can take (the receiver answers within BackupMx:Smtp:FinalDotTimeout,
    /// 5 minutes by default, of the final dot). Default 1 hour.
    /// </summary>
    [Range(typeof(TimeSpan), "00:15:00", "30.00:00:00")]
    public TimeSpan OrphanBodyAge { get; set; } = TimeSpan.FromHours(1);

    /// <summary>
    /// How often the Expire function looks for orphaned bodies. Each look lists the container and,
    /// when some body is older than <see cref="OrphanBodyAge"/>, reads every spool record. Default 1 hour.
    /// </summary>
    [Range(typeof(TimeSpan), "00:01:00", "1.00:00:00")]
    public TimeSpan OrphanBodySweepInterval { get; set; } = TimeSpan.FromHours(1);

    /// <summary>
    /// The Entra ID app role (a value of the token's <c>roles</c> claim) a caller of the admin API
    /// must hold, checked by the functions (<see cref="AdminRole"/>): App Service authentication
    /// checks groups but not app roles. Set by the template from <c>adminApiAllowedRole</c>. Empty:
    /// no role check.
    /// </summary>
    public string? AdminRole { get; set; }

    /// <summary>Orphaned bodies deleted per look at most; the rest wait for the next one. Default 100.</summary>
    [Range(1, 10_000)]
    public int MaxOrphanBodiesPerSweep { get; set; } = 100;
}
