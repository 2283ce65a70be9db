using BackupMx.Core.Model;

namespace BackupMx.Core.Ports;

/// <summary>
/// One delivery attempt of a spooled message: to the domain's primary for relayed
/// mail, to the sender domain's MX (or the bounce smart host) for a DSN.
/// </summary>
public sealed record DeliveryRequest
{
    public required string QueueId { get; init; }

    public required MessageKind Kind { get; init; }

    /// <summary>Destination domain: the configured domain, or the DSN recipient's domain.</summary>
    public required string Domain { get; init; }

    public required string Sender { get; init; }

    public required MailParameters Parameters { get; init; }

    public required IReadOnlyList<RecipientState> Recipients { get; init; }

    public required long BodyLength { get; init; }

    /// <summary>Opens the stored body; called at most once per connection attempt.</summary>
    public required Func<CancellationToken, Task<Stream>> OpenBody { get; init; }
}

/// <summary>What became of each recipient in one attempt.</summary>
public sealed record DeliveryResult(IReadOnlyList<RecipientOutcome> Outcomes, string? RemoteHost)
{
    /// <summary>True when a remote server answered at all (it is reachable, whatever it said).</summary>
    public bool ReachedServer { get; init; }

    /// <summary>
    /// True when the server refused the session for load (a 421 greeting, "too many connections"):
    /// its connection limit, not an outage, so the attempt says nothing about the primary's state.
    /// </summary>
    public bool ServerBusy { get; init; }

    /// <summary>
    /// True when the message can never be delivered and no DSN can be sent about it: drop, do not
    /// retry, notify nobody. A DSN whose destination has a null MX (RFC 7505), or an envelope
    /// sender that cannot be written in MAIL FROM (a DSN could not be addressed to it either).
    /// </summary>
    public bool Undeliverable { get; init; }

    /// <summary>
    /// True when every outcome was decided here without contacting any server (addresses that
    /// cannot be written): the attempt says nothing about whether the primary is up.
    /// </summary>
    public bool DecidedLocally { get; init; }

    /// <summary>
    /// True when the server that took the transaction advertised DSN (RFC 3461) in its EHLO reply:
    /// it was given NOTIFY, ORCPT, RET and ENVID and reports success itself. False for one without
    /// DSN, which will send no success report, so a recipient that asked for one is owed a
    /// "relayed" DSN by us (RFC 3461 §5.2.2). Says nothing when no server was reached.
    /// </summary>
    public bool RemoteOffersDsn { get; init; }

    public static DeliveryResult AllRecipients(IEnumerable<RecipientState> recipients, SmtpReply reply, string? remoteHost, bool reachedServer) =>
        new(recipients.Select(r => new RecipientOutcome(r.Address, reply)).ToList(), remoteHost) { ReachedServer = reachedServer };
}

public sealed record RecipientOutcome(string Recipient, SmtpReply Reply);

/// <summary>Outbound SMTP. Never throws for remote failures: they become per-recipient replies.</summary>
public interface IMessageTransport
{
    Task<DeliveryResult> DeliverAsync(DeliveryRequest request, CancellationToken cancellationToken);
}

/// <summary>Result of probing a domain's primary (connect, greeting, EHLO, QUIT).</summary>
public sealed record ProbeResult(bool Reachable, string? Host, string? Error);

public interface IPrimaryProber
{
    Task<ProbeResult> ProbeAsync(string domain, CancellationToken cancellationToken);
}
