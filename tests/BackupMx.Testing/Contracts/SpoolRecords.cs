using BackupMx.Core.Model;

namespace BackupMx.Testing.Contracts;

/// <summary>Sample records for tests.</summary>
public static class SpoolRecords
{
    public static readonly DateTimeOffset T0 = new(2026, 11, 27, 12, 0, 0, TimeSpan.Zero);

    public static SpoolRecord Sample(string? queueId = null, string domain = "example.test", DateTimeOffset? nextAttemptAt = null, int recipients = 2) => new()
    {
        QueueId = queueId ?? QueueId.New(T0),
        Kind = MessageKind.Relay,
        Domain = domain,
        Sender = "alice@sender.test",
        Parameters = new MailParameters { Body = "8BITMIME", Ret = "HDRS", EnvelopeId = "env+1=x", DeclaredSize = 1234, SmtpUtf8 = true },
        Recipients = Enumerable.Range(1, recipients).Select(i => new RecipientState
        {
            Address = $"user{i}@{domain}",
            Notify = i == 1 ? "FAILURE,DELAY" : null,
            OriginalRecipient = i == 1 ? "rfc822;User1@" + domain : null,
        }).ToList(),
        ReceivedAt = T0,
        ExpiresAt = T0.AddDays(5),
        NextAttemptAt = nextAttemptAt ?? T0,
        BodyLength = 1234,
        ClientAddress = "192.0.2.7",
        HeloName = "mx.sender.test",
    };

    /// <summary>The record with its recipient at <paramref name="index"/> changed by <paramref name="change"/>.</summary>
    public static SpoolRecord WithRecipient(this SpoolRecord record, int index, Func<RecipientState, RecipientState> change)
    {
        ArgumentNullException.ThrowIfNull(record);
        ArgumentNullException.ThrowIfNull(change);
        var recipients = record.Recipients.ToArray();
        recipients[index] = change(recipients[index]);
        return record with { Recipients = recipients };
    }
}
