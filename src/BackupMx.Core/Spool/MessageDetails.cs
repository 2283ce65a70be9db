using System.Text;
using BackupMx.Core.Model;

namespace BackupMx.Core.Spool;

/// <summary>
/// One message as the spool keeps it, for <c>show</c> and <c>GET /api/messages/{id}</c>: one shape for
/// both, serialized with camelCase names (docs/commands-json.md). The record keeps its latest attempts
/// (<see cref="SpoolLedger.MaxAttemptHistory"/>), each recipient's last reply and host, and the count of
/// failed attempts that drives the retry schedule.
/// </summary>
public sealed record MessageDetails
{
    /// <summary>Bytes of a body read for its headers alone: headers longer than this are cut.</summary>
    public const int MaxHeaderBytes = 256 * 1024;

    public required string QueueId { get; init; }

    public required string Kind { get; init; }

    public required string Domain { get; init; }

    public required string Sender { get; init; }

    public required EnvelopeDetails Envelope { get; init; }

    public required IReadOnlyList<RecipientDetails> Recipients { get; init; }

    public required DateTimeOffset ReceivedAt { get; init; }

    /// <summary>Null while held (never due) and while a delivery is in progress (see <see cref="DeliveryInProgressUntil"/>).</summary>
    public DateTimeOffset? NextAttemptAt { get; init; }

    public required DateTimeOffset ExpiresAt { get; init; }

    /// <summary>Failed attempts since arrival or the last flush (the retry schedule's index).</summary>
    public int Attempts { get; init; }

    public DateTimeOffset? LastAttemptAt { get; init; }

    public string? LastError { get; init; }

    /// <summary>The latest attempts, oldest first.</summary>
    public IReadOnlyList<AttemptDetails> AttemptHistory { get; init; } = [];

    /// <summary>The end of the lease of a delivery in progress, or null.</summary>
    public DateTimeOffset? DeliveryInProgressUntil { get; init; }

    public required HoldDetails Hold { get; init; }

    public long Bytes { get; init; }

    public string? ClientAddress { get; init; }

    public string? HeloName { get; init; }

    /// <summary>The header section (or the whole message when asked for); null when the body is gone.</summary>
    public string? Headers { get; init; }

    public string? Body { get; init; }

    public static MessageDetails From(SpoolRecord record, DateTimeOffset now, TimeSpan retention, string? content, bool wholeBody)
    {
        ArgumentNullException.ThrowIfNull(record);
        var leased = record.IsLeased(now);
        return new MessageDetails
        {
            QueueId = record.QueueId,
            Kind = record.Kind.ToString(),
            Domain = record.Domain,
            Sender = record.Sender,
            Envelope = new EnvelopeDetails(
                record.Parameters.Ret,
                record.Parameters.EnvelopeId,
                record.Parameters.Body,
                record.Parameters.DeclaredSize,
                record.Parameters.SmtpUtf8),
            Recipients = record.Recipients.Select(r => new RecipientDetails(
                r.Address,
                r.Status.ToString(),
                r.Notify,
                r.OriginalRecipient,
                r.LastReply?.ToString(),
                r.RemoteHost,
                r.FailureStatus,
                r.CompletedAt,
                r.NeedsNotification)).ToList(),
            ReceivedAt = record.ReceivedAt,
            NextAttemptAt = record.IsHeld || leased ? null : record.NextAttemptAt,
            ExpiresAt = record.ExpiresAt,
            Attempts = record.Attempts,
            LastAttemptAt = record.LastAttemptAt,
            LastError = record.LastError,
            AttemptHistory = record.AttemptHistory.Select(a => new AttemptDetails(a.At, a.Host, a.Reply, a.Delivered, a.Failed, a.Deferred)).ToList(),
            DeliveryInProgressUntil = leased ? record.LeaseExpiresAt : null,
            Hold = new HoldDetails(
                record.IsHeld,
                record.HeldAt,
                ExpiredWhileHeld: record.IsHeld && record.ExpiresAt <= now,

                // The record keeps no flag for it: an expiry later than retention allows can only
                // come from a release after the expiry had passed (SpoolLedger.ReleaseGrace).
                ExtendedOnRelease: !record.IsHeld && record.ExpiresAt > record.ReceivedAt + retention + TimeSpan.FromSeconds(1)),
            Bytes = record.BodyLength,
            ClientAddress = record.ClientAddress,
            HeloName = record.HeloName,
            Headers = wholeBody ? null : content,
            Body = wholeBody ? content : null,
        };
    }

    /// <summary>The header section (up to the first empty line) or the whole body, as text.</summary>
    public static async Task<string> ReadAsync(Stream body, bool wholeBody, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(body);
        using var reader = new StreamReader(body, new UTF8Encoding(false, false), detectEncodingFromByteOrderMarks: false);
        if (wholeBody)
        {
            return await reader.ReadToEndAsync(cancellationToken).ConfigureAwait(false);
        }

        var headers = new StringBuilder();
        while (headers.Length < MaxHeaderBytes && await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false) is { } line)
        {
            if (line.Length == 0)
            {
                break;
            }

            headers.Append(line).Append('\n');
        }

        return headers.ToString();
    }
}

/// <summary>MAIL FROM parameters (RFC 3461 RET and ENVID, RFC 6152 BODY, RFC 1870 SIZE, RFC 6531 SMTPUTF8).</summary>
public sealed record EnvelopeDetails(string? Ret, string? EnvelopeId, string? Body, long? DeclaredSize, bool SmtpUtf8);

/// <summary>One recipient: its NOTIFY and ORCPT (RFC 3461), state and the last reply it got.</summary>
public sealed record RecipientDetails(
    string Address,
    string Status,
    string? Notify,
    string? OriginalRecipient,
    string? LastReply,
    string? RemoteHost,
    string? FailureStatus,
    DateTimeOffset? CompletedAt,
    bool NoticeOwed);

/// <summary>One attempt: when, the host it reached or last tried, the reply that decided it, and how many recipients it delivered, failed and left pending.</summary>
public sealed record AttemptDetails(DateTimeOffset At, string? Host, string? Reply, int Delivered, int Failed, int Deferred);

/// <param name="ExpiredWhileHeld">Held past its expiry: a release gives it one more day.</param>
/// <param name="ExtendedOnRelease">Released after its expiry had passed: it got one more day.</param>
public sealed record HoldDetails(bool Held, DateTimeOffset? HeldAt, bool ExpiredWhileHeld, bool ExtendedOnRelease);
