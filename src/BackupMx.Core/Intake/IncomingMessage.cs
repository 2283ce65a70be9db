using BackupMx.Core.Model;

namespace BackupMx.Core.Intake;

/// <summary>One message as the receiver got it: envelope, session facts and the raw DATA bytes.</summary>
public sealed record IncomingMessage
{
    /// <summary>Envelope sender; empty for &lt;&gt;.</summary>
    public required string Sender { get; init; }

    public MailParameters Parameters { get; init; } = new();

    public required IReadOnlyList<IncomingRecipient> Recipients { get; init; }

    public string? ClientAddress { get; init; }

    public string? HeloName { get; init; }

    /// <summary>False when the client greeted with HELO (the Received header says SMTP, not ESMTP).</summary>
    public bool Extended { get; init; } = true;

    /// <summary>True when the session used TLS (the Received header says ESMTPS).</summary>
    public bool Secure { get; init; }

    /// <summary>The message exactly as received, dot-stuffing removed, without the terminating dot line.</summary>
    public required MessageContent Content { get; init; }
}

public sealed record IncomingRecipient(string Address, string? Notify = null, string? OriginalRecipient = null);

public abstract record IntakeResult
{
    public sealed record Accepted(IReadOnlyList<string> QueueIds) : IntakeResult;

    /// <summary>The spool could not store it; the client is told 451 4.3.0 and nothing is kept.</summary>
    public sealed record Failed(string Reason) : IntakeResult
    {
        /// <summary>The storage is full (ENOSPC): the receiver may answer 452 4.3.1 instead (RFC 3463).</summary>
        public bool InsufficientStorage { get; init; }
    }
}
