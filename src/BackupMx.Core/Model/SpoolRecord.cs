namespace BackupMx.Core.Model;

/// <summary>
/// The durable state of one spooled message for one destination domain. It is the
/// truth about what happens next (rule 2): wake-ups only prompt a worker to look at it.
/// </summary>
public sealed record SpoolRecord
{
    /// <summary>Queue id, unique across the spool; also the body's key.</summary>
    public required string QueueId { get; init; }

    /// <summary>Relayed mail for a configured domain, or a DSN we generated.</summary>
    public MessageKind Kind { get; init; } = MessageKind.Relay;

    /// <summary>
    /// Destination domain: a configured domain for relayed mail, the envelope
    /// sender's domain for a DSN. Also the partition key in Azure mode.
    /// </summary>
    public required string Domain { get; init; }

    /// <summary>Envelope sender; empty string for the null reverse-path &lt;&gt;.</summary>
    public required string Sender { get; init; }

    public MailParameters Parameters { get; init; } = new();

    /// <summary>The recipients' states, in the order the client gave them. Never changed in place: a new state is a new record.</summary>
    public required IReadOnlyList<RecipientState> Recipients
    {
        get;

        // Copied once here, so a list the caller keeps changing cannot change the record.
        init => field = [.. value ?? throw new ArgumentNullException(nameof(value))];
    }

    public required DateTimeOffset ReceivedAt { get; init; }

    /// <summary>Past this moment pending recipients fail with 4.4.7.</summary>
    public required DateTimeOffset ExpiresAt { get; init; }

    /// <summary>
    /// When the next attempt is scheduled. A lease does not change it: while one runs the record is
    /// not due whatever this says (see <see cref="DueAt"/>).
    /// </summary>
    public DateTimeOffset NextAttemptAt { get; init; }

    /// <summary>Failed attempts since arrival or the last flush; indexes the retry schedule.</summary>
    public int Attempts { get; init; }

    /// <summary>The last failure, for operators; bounded by <see cref="StoredText"/>.</summary>
    public string? LastError { get; init => field = StoredText.Bound(value); }

    public DateTimeOffset? LastAttemptAt { get; init; }

    /// <summary>
    /// The latest attempts, oldest first, at most <c>SpoolLedger.MaxAttemptHistory</c> of them.
    /// </summary>
    public IReadOnlyList<DeliveryAttempt> AttemptHistory { get; init; } = [];

    public long BodyLength { get; init; }

    /// <summary>Client address and HELO name of the sending MTA, for the DSN and for operators.</summary>
    public string? ClientAddress { get; init; }

    public string? HeloName { get; init; }

    public string? LeaseOwner { get; init; }

    public DateTimeOffset? LeaseExpiresAt { get; init; }

    /// <summary>Token of the pending wake-up (a Service Bus sequence number in Azure mode), so a flush can cancel it.</summary>
    public string? WakeUpToken { get; init; }

    /// <summary>
    /// When an operator held the message; null when it is not held. A held message is not
    /// delivered, flushed or expired until it is released (see <c>SpoolLedger</c>).
    /// </summary>
    public DateTimeOffset? HeldAt { get; init; }

    /// <summary>Opaque concurrency token set by the store (row version or ETag).</summary>
    public string? ETag { get; init; }

    public bool IsFinished => Recipients.All(r => r.Status is RecipientStatus.Delivered or RecipientStatus.Failed && !r.NeedsNotification);

    public IEnumerable<RecipientState> PendingRecipients => Recipients.Where(r => r.Status == RecipientStatus.Pending);

    public bool IsHeld => HeldAt is not null;

    public bool IsLeased(DateTimeOffset now) => LeaseExpiresAt is { } until && until > now;

    /// <summary>
    /// When the record may next be attempted: its next attempt, or the end of a lease that runs past
    /// it. A worker that dies holding the lease leaves the record due when the lease runs out.
    /// </summary>
    public DateTimeOffset DueAt => LeaseExpiresAt is { } until && until > NextAttemptAt ? until : NextAttemptAt;
}

public enum MessageKind
{
    /// <summary>Mail received for a configured domain, to be forwarded to its primary.</summary>
    Relay = 0,

    /// <summary>A delivery status notification we generated, to be sent to the original sender.</summary>
    Dsn = 1,
}
