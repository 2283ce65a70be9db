using System.Text;
using MailKit;

namespace BackupMx.Delivery.Smtp;

/// <summary>
/// Watches an SMTP conversation without recording it, to learn the facts that
/// MailKit's exceptions do not carry: whether the server spoke at all (a greeting
/// means it is reachable), whether STARTTLS was attempted, and whether the message
/// data began to go out (a failure after that may mean the message was delivered). Never keeps
/// any bytes, so bodies are never logged.
/// </summary>
internal sealed class ProtocolWatcher : IProtocolLogger
{
    private static readonly byte[] StartTlsCommand = "STARTTLS\r\n"u8.ToArray();
    private static readonly byte[] EhloCommand = "EHLO "u8.ToArray();
    private bool _awaitingEhloReply;

    public IAuthenticationSecretDetector? AuthenticationSecretDetector { get; set; }

    /// <summary>Reply code of the greeting, or 0 before one arrived.</summary>
    public int GreetingCode { get; private set; }

    public string? GreetingText { get; private set; }

    public bool ServerSpoke => GreetingCode != 0;

    /// <summary>The first word of the greeting text: by convention the server's host name (RFC 5321 §4.3.1).</summary>
    public string? GreetingName => FirstWord(GreetingText);

    /// <summary>The domain in the first line of the last EHLO reply (RFC 5321 §4.1.1.1).</summary>
    public string? EhloName { get; private set; }

    public bool StartTlsSent { get; private set; }

    /// <summary>The message data of this transaction began to go out (after the server's 354).</summary>
    public bool DataSent { get; private set; }

    /// <summary>Called as the message data starts: from here a lost connection may leave the message delivered.</summary>
    public void BeginData() => DataSent = true;

    /// <summary>Starts a new transaction on this connection: <see cref="DataSent"/> is per transaction.</summary>
    public void BeginTransaction() => DataSent = false;

    public void LogConnect(Uri uri)
    {
    }

    public void LogClient(byte[] buffer, int offset, int count)
    {
        var span = buffer.AsSpan(offset, count);
        if (span.StartsWith(StartTlsCommand))
        {
            StartTlsSent = true;
        }
        else if (span.StartsWith(EhloCommand))
        {
            _awaitingEhloReply = true;
        }
    }

    public void LogServer(byte[] buffer, int offset, int count)
    {
        var span = buffer.AsSpan(offset, count);
        if (_awaitingEhloReply && count >= 4)
        {
            _awaitingEhloReply = false;
            if (span.StartsWith("250"u8))
            {
                EhloName = FirstWord(Encoding.ASCII.GetString(FirstLine(span)[4..]));
            }

            return;
        }

        if (GreetingCode != 0 || count < 3)
        {
            return;
        }

        if (char.IsAsciiDigit((char)span[0]) && char.IsAsciiDigit((char)span[1]) && char.IsAsciiDigit((char)span[2]))
        {
            GreetingCode = ((span[0] - '0') * 100) + ((span[1] - '0') * 10) + (span[2] - '0');
            var line = FirstLine(span);
            GreetingText = Encoding.ASCII.GetString(line[Math.Min(4, line.Length)..]).TrimEnd('\r');
        }
    }

    private static ReadOnlySpan<byte> FirstLine(ReadOnlySpan<byte> span)
    {
        var end = span.IndexOf((byte)'\n');
        return end < 0 ? span : span[..end];
    }

    private static string? FirstWord(string? text)
    {
        var word = text?.Trim().Split(' ', 2)[0].TrimEnd('\r');
        return string.IsNullOrEmpty(word) ? null : word;
    }

    public void Dispose()
    {
    }
}
