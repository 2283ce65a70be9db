namespace BackupMx.Core.Model;

public enum RecipientStatus
{
    Pending = 0,
    Delivered = 1,
    Failed = 2,
}

/// <summary>Per-recipient outcome (rule 4): each recipient is delivered or failed on its own.</summary>
public sealed class RecipientState
{
    public required string Address { get; init; }

    /// <summary>ORCPT as given by the client (RFC 3461 §4.2), when known.</summary>
    public string? OriginalRecipient { get; init; }

    /// <summary>NOTIFY as given by the client (RFC 3461 §4.1), when known; null means the default (FAILURE).</summary>
    public string? Notify { get; init; }

    public RecipientStatus Status { get; set; }

    /// <summary>Last reply from the remote server for this recipient, or our own description of a failure.</summary>
    public SmtpReply? LastReply { get; set; }

    /// <summary>Enhanced status code reported for a failed recipient: the primary's code on 5xx, 4.4.7 on expiry.</summary>
    public string? FailureStatus { get; set; }

    /// <summary>True for a failed recipient whose DSN has not yet been queued.</summary>
    public bool NeedsNotification { get; set; }

    public DateTimeOffset? CompletedAt { get; set; }

    /// <summary>The host that accepted or refused it, for logs and the DSN.</summary>
    public string? RemoteHost { get; set; }

    public bool WantsFailureNotice =>
        Notify is null || Notify.Split(',', StringSplitOptions.TrimEntries).Any(n => n.Equals("FAILURE", StringComparison.OrdinalIgnoreCase));

    public RecipientState Clone() => new()
    {
        Address = Address,
        OriginalRecipient = OriginalRecipient,
        Notify = Notify,
        Status = Status,
        LastReply = LastReply,
        NeedsNotification = NeedsNotification,
        FailureStatus = FailureStatus,
        CompletedAt = CompletedAt,
        RemoteHost = RemoteHost,
    };
}
