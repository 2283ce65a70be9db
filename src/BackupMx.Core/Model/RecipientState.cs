namespace BackupMx.Core.Model;

public enum RecipientStatus
{
    Pending = 0,
    Delivered = 1,
    Failed = 2,
}

/// <summary>Per-recipient outcome (rule 4): each recipient is delivered or failed on its own.</summary>
public sealed record RecipientState
{
    public required string Address { get; init; }

    /// <summary>ORCPT as given by the client (RFC 3461 §4.2), when known.</summary>
    public string? OriginalRecipient { get; init; }

    /// <summary>NOTIFY as given by the client (RFC 3461 §4.1), when known; null means the default (FAILURE).</summary>
    public string? Notify { get; init; }

    public RecipientStatus Status { get; init; }

    /// <summary>Last reply from the remote server for this recipient, or our own description of a failure.</summary>
    public SmtpReply? LastReply { get; init; }

    /// <summary>Enhanced status code reported for a failed recipient: the primary's code on 5xx, 4.4.7 on expiry.</summary>
    public string? FailureStatus { get; init; }

    /// <summary>
    /// True while a DSN about this recipient is still to be queued: a "failed" one for a failed
    /// recipient, a "relayed" one for a delivered recipient (see <see cref="NoticeAction"/>).
    /// Kept in the record, so a crash between the outcome and the DSN still sends it, once.
    /// </summary>
    public bool NeedsNotification { get; init; }

    public DateTimeOffset? CompletedAt { get; init; }

    /// <summary>The host that accepted or refused it, for logs and the DSN.</summary>
    public string? RemoteHost { get; init; }

    public bool WantsFailureNotice => Notify is null || NotifyIncludes("FAILURE");

    /// <summary>NOTIFY includes SUCCESS; without the parameter no success notice is wanted (RFC 3461 §4.1).</summary>
    public bool WantsSuccessNotice => NotifyIncludes("SUCCESS");

    /// <summary>
    /// What a notice due for this recipient reports. The status alone decides it: only a delivered
    /// recipient is ever marked for a "relayed" notice and it cannot fail afterwards, so the
    /// NeedsNotification flag needs no companion field in the stored record.
    /// </summary>
    public DsnAction NoticeAction => Status == RecipientStatus.Delivered ? DsnAction.Relayed : DsnAction.Failed;

    private bool NotifyIncludes(string keyword) =>
        Notify is not null && Notify.Split(',', StringSplitOptions.TrimEntries).Any(n => n.Equals(keyword, StringComparison.OrdinalIgnoreCase));
}
