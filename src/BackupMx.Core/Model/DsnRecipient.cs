namespace BackupMx.Core.Model;

/// <summary>The per-recipient Action of a DSN (RFC 3464 §2.3.3), as far as BackupMx reports them.</summary>
public enum DsnAction
{
    /// <summary>Given up: refused for good (5xx), an address we cannot write, or retention ran out.</summary>
    Failed = 0,

    /// <summary>
    /// Accepted by a primary that does not offer DSN: NOTIFY=SUCCESS could not be passed on, so no
    /// success report will come from further on and this is the last word (RFC 3461 §5.2.2).
    /// </summary>
    Relayed = 1,
}

/// <summary>One recipient of a DSN and what the DSN says happened to it.</summary>
public sealed record DsnRecipient(RecipientState Recipient, DsnAction Action);
