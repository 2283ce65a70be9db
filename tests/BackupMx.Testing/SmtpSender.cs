using System.Net.Sockets;
using System.Text;

namespace BackupMx.Testing;

/// <summary>The replies of one SMTP transaction, as a sending MTA sees them.</summary>
public sealed record SendResult(string MailReply, IReadOnlyList<string> RecipientReplies, string? DataReply)
{
    /// <summary>True when the message was accepted (250 after the final dot).</summary>
    public bool Accepted => DataReply?.StartsWith("250", StringComparison.Ordinal) == true;
}

/// <summary>
/// A minimal sending MTA for tests: sends exact bytes (only dot-stuffing is applied) and
/// reports every reply, so tests can compare what the primary got with what was sent.
/// </summary>
public static class SmtpSender
{
    /// <param name="rcptParameters">Parameters to put after a recipient's RCPT TO path (NOTIFY, ORCPT), by address.</param>
    public static async Task<SendResult> SendAsync(int port, string from, IReadOnlyList<string> recipients, byte[] message, string mailParameters = "", IReadOnlyDictionary<string, string>? rcptParameters = null, CancellationToken cancellationToken = default)
    {
        using var client = new TcpClient();
        await client.ConnectAsync("127.0.0.1", port, cancellationToken);
        await using var stream = client.GetStream();
        var reader = new ReplyReader(stream);

        Expect(await reader.ReadAsync(cancellationToken), "220");
        await WriteLineAsync(stream, "EHLO sender.test", cancellationToken);
        Expect(await reader.ReadAsync(cancellationToken), "250");

        await WriteLineAsync(stream, $"MAIL FROM:<{from}>{(mailParameters.Length > 0 ? " " + mailParameters : "")}", cancellationToken);
        var mail = await reader.ReadAsync(cancellationToken);
        var rcptReplies = new List<string>();
        string? dataReply = null;
        if (mail.StartsWith('2'))
        {
            foreach (var rcpt in recipients)
            {
                var parameters = rcptParameters?.GetValueOrDefault(rcpt) is { Length: > 0 } p ? " " + p : "";
                await WriteLineAsync(stream, $"RCPT TO:<{rcpt}>{parameters}", cancellationToken);
                rcptReplies.Add(await reader.ReadAsync(cancellationToken));
            }

            if (rcptReplies.Any(r => r.StartsWith('2')))
            {
                await WriteLineAsync(stream, "DATA", cancellationToken);
                var go = await reader.ReadAsync(cancellationToken);
                if (go.StartsWith("354", StringComparison.Ordinal))
                {
                    await stream.WriteAsync(DotStuff(message), cancellationToken);
                    await stream.WriteAsync(".\r\n"u8.ToArray(), cancellationToken);
                    dataReply = await reader.ReadAsync(cancellationToken);
                }
                else
                {
                    dataReply = go;
                }
            }
        }

        try
        {
            await WriteLineAsync(stream, "QUIT", cancellationToken);
            await reader.ReadAsync(cancellationToken);
        }
        catch (IOException)
        {
            // The server may close first; the transaction is already decided.
        }

        return new SendResult(mail, rcptReplies, dataReply);
    }

    /// <summary>Dot-stuffs and makes sure the message ends with CRLF before the terminating dot.</summary>
    public static byte[] DotStuff(byte[] message)
    {
        using var output = new MemoryStream(message.Length + 64);
        var lineStart = true;
        foreach (var b in message)
        {
            if (lineStart && b == (byte)'.')
            {
                output.WriteByte((byte)'.');
            }

            output.WriteByte(b);
            lineStart = b == (byte)'\n';
        }

        if (!lineStart)
        {
            output.Write("\r\n"u8);
        }

        return output.ToArray();
    }

    private static void Expect(string reply, string code)
    {
        if (!reply.StartsWith(code, StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"Expected {code}, got: {reply}");
        }
    }

    private static Task WriteLineAsync(NetworkStream stream, string line, CancellationToken cancellationToken) =>
        stream.WriteAsync(Encoding.ASCII.GetBytes(line + "\r\n"), cancellationToken).AsTask();

    private sealed class ReplyReader(NetworkStream stream)
    {
        private readonly byte[] _buffer = new byte[4096];
        private readonly StringBuilder _pending = new();

        /// <summary>Reads one whole reply (all continuation lines); returns its last line.</summary>
        public async Task<string> ReadAsync(CancellationToken cancellationToken)
        {
            while (true)
            {
                var text = _pending.ToString();
                var end = text.IndexOf("\r\n", StringComparison.Ordinal);
                while (end >= 0)
                {
                    var line = text[..end];
                    text = text[(end + 2)..];
                    if (line.Length < 4 || line[3] == ' ')
                    {
                        _pending.Clear().Append(text);
                        return line;
                    }

                    end = text.IndexOf("\r\n", StringComparison.Ordinal);
                }

                var read = await stream.ReadAsync(_buffer, cancellationToken);
                if (read == 0)
                {
                    throw new IOException("Connection closed by the server.");
                }

                _pending.Append(Encoding.Latin1.GetString(_buffer, 0, read));
            }
        }
    }
}
