using System.Globalization;
using System.Text;
using System.Text.Json.Serialization;

namespace BackupMx.Core.Notifications;

public enum OutageEvent
{
    Down,
    Reminder,
    Recovered,
}

/// <summary>One notice about one domain, as the webhook receives it (JSON) and as the e-mail says it.</summary>
public sealed record OutageNotice(
    [property: JsonPropertyName("event")] string Event,
    [property: JsonPropertyName("domain")] string Domain,
    [property: JsonPropertyName("since")] DateTimeOffset Since,
    [property: JsonPropertyName("waiting")] int Waiting,
    [property: JsonPropertyName("delivered")] int Delivered,
    [property: JsonPropertyName("longestWaitSeconds")] long LongestWaitSeconds,
    [property: JsonPropertyName("relay")] string Relay,
    [property: JsonPropertyName("text")] string Text)
{
    public static OutageNotice Create(OutageEvent kind, string domain, DateTimeOffset since, int waiting, int delivered, TimeSpan longestWait, string relay)
    {
        var at = since.ToUniversalTime().ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture);
        var text = kind switch
        {
            OutageEvent.Down => string.Create(CultureInfo.InvariantCulture, $"The mail server of {domain} has not been reachable since {at}. {relay} is holding {waiting} message(s) for it and will deliver them as soon as it answers again."),
            OutageEvent.Reminder => string.Create(CultureInfo.InvariantCulture, $"Reminder: the mail server of {domain} is still not reachable (since {at}). {relay} is holding {waiting} message(s) for it."),
            _ => string.Create(CultureInfo.InvariantCulture, $"The mail server of {domain} is back. {relay} delivered the {delivered} message(s) it held during the outage (since {at}); the longest waited {Durations.Format(longestWait)}."),
        };
        return new OutageNotice(kind.ToString().ToLowerInvariant(), domain, since, waiting, delivered, (long)longestWait.TotalSeconds, relay, text);
    }

    /// <summary>The notice as a plain-text RFC 5322 message from postmaster, marked as automatic (RFC 3834).</summary>
    public byte[] ToMessage(string from, IReadOnlyList<string> to, DateTimeOffset date)
    {
        var subject = Event switch
        {
            "down" => $"Mail for {Domain} is being held: its server is not reachable",
            "reminder" => $"Reminder: mail for {Domain} is still being held",
            _ => $"Mail for {Domain} has been delivered",
        };
        var message = new StringBuilder()
            .Append("From: ").Append(from).Append("\r\n")
            .Append("To: ").Append(string.Join(", ", to)).Append("\r\n")
            .Append("Subject: ").Append(subject).Append("\r\n")
            .Append("Date: ").Append(date.ToString("ddd, dd MMM yyyy HH:mm:ss +0000", CultureInfo.InvariantCulture)).Append("\r\n")
            .Append("Message-ID: <").Append(Guid.NewGuid().ToString("N")).Append('@').Append(Relay).Append(">\r\n")
            .Append("Auto-Submitted: auto-generated\r\n")
            .Append("MIME-Version: 1.0\r\n")
            .Append("Content-Type: text/plain; charset=us-ascii\r\n")
            .Append("\r\n")
            .Append(Text).Append("\r\n");
        return Encoding.ASCII.GetBytes(message.ToString());
    }
}
