using System.Reflection;
using System.Text;
using BackupMx.Core.Model;
using MailKit.Net.Smtp;

namespace BackupMx.Delivery.Smtp;

/// <summary>
/// A MailKit client used for what MailKit does well (connect, greeting, EHLO, STARTTLS, reply
/// parsing, timeouts) while the transaction itself is ours: MailKit's SendAsync builds MAIL and
/// RCPT from a parsed MimeMessage (BODY from the MIME structure, ORCPT from the RCPT address) and
/// has no raw send, so a relay that must pass the stored envelope and bytes on unchanged cannot
/// use it. Commands go through the protected <see cref="SmtpClient.SendCommandAsync"/>; the body
/// is written, dot-stuffed by <see cref="DataWriter"/>, on MailKit's own connection stream (the
/// only reach past MailKit's public surface, see <see cref="Wire"/>), and the final "."
/// is sent as a command so MailKit reads the end-of-data reply. Where the server offers
/// PIPELINING (RFC 2920), the envelope is written on the same stream in groups, and the replies
/// are read back in order with MailKit's reply reader.
/// </summary>
internal sealed class RelaySmtpClient(ProtocolWatcher watcher) : SmtpClient(watcher)
{
    // MailKit keeps its SmtpStream in a private property. It is a Stream whose writes go into the
    // same buffer as commands, after STARTTLS too. Found once; a MailKit upgrade that renames it
    // fails every send with a clear message and the transport tests.
    private static readonly PropertyInfo? StreamProperty =
        typeof(SmtpClient).GetProperty("Stream", BindingFlags.Instance | BindingFlags.NonPublic);

    // The same stream's reply reader (a public method of an internal class). Without it the
    // transaction goes one command at a time.
    private static readonly MethodInfo? ReadResponseMethod =
        StreamProperty?.PropertyType.GetMethod("ReadResponseAsync", BindingFlags.Instance | BindingFlags.Public, [typeof(CancellationToken)]) is { } method
        && method.ReturnType == typeof(Task<SmtpResponse>) ? method : null;

    public ProtocolWatcher Watcher { get; } = watcher;

    /// <summary>True once this connection has carried a transaction before the current one.</summary>
    public bool Reused { get; set; }

    /// <summary>True when the server's EHLO reply advertised DSN, so NOTIFY, ORCPT, RET and ENVID went with the transaction.</summary>
    public bool OffersDsn => Capabilities.HasFlag(SmtpCapabilities.Dsn);

    /// <summary>Sends one command line (without CRLF) and returns the reply, whatever its code.</summary>
    public async Task<SmtpReply> CommandAsync(string line, CancellationToken cancellationToken)
    {
        var response = await SendCommandAsync(line, cancellationToken).ConfigureAwait(false);
        return ToReply(response);
    }

    /// <summary>Whether this MailKit build lets the relay read a reply without sending a command, which pipelining needs.</summary>
    public static bool CanPipeline => ReadResponseMethod is not null && StreamProperty is not null;

    /// <summary>Sends command lines (without CRLF) in one write, without reading any reply (RFC 2920).</summary>
    public async Task PipelineAsync(IEnumerable<string> lines, CancellationToken cancellationToken)
    {
        var text = new StringBuilder();
        foreach (var line in lines)
        {
            text.Append(line).Append("\r\n");
        }

        // UTF-8, as MailKit encodes its own commands (addresses are UTF-8 only under SMTPUTF8).
        var wire = Wire();
        await wire.WriteAsync(Encoding.UTF8.GetBytes(text.ToString()), cancellationToken).ConfigureAwait(false);
        await wire.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Reads the next reply of a pipelined group, with MailKit's own reply parser and timeout.</summary>
    public async Task<SmtpReply> ReadReplyAsync(CancellationToken cancellationToken)
    {
        var read = ReadResponseMethod ?? throw new InvalidOperationException("MailKit's SmtpStream has no ReadResponseAsync; pipelining is unavailable.");
        var response = await ((Task<SmtpResponse>)read.Invoke(Wire(), [cancellationToken])!).ConfigureAwait(false);
        return ToReply(response);
    }

    /// <summary>After a 354: writes the body dot-stuffed, then the final "." and returns the reply to it.</summary>
    public async Task<SmtpReply> SendDataAsync(Stream body, CancellationToken cancellationToken)
    {
        Watcher.BeginData();
        await DataWriter.WriteAsync(body, Wire(), cancellationToken).ConfigureAwait(false);

        // The terminating line as a command: MailKit flushes it after the body and reads the reply.
        return await CommandAsync(".", cancellationToken).ConfigureAwait(false);
    }

    private Stream Wire() =>
        StreamProperty?.GetValue(this) as Stream
        ?? throw new InvalidOperationException("MailKit's SmtpClient no longer exposes its connection stream; the relay cannot send message data.");

    /// <summary>
    /// A 552 to RCPT is permanent (a full mailbox, RFC 5321 §4.2.2), with one exception: RFC 821
    /// listed "too many recipients" as 552, and RFC 5321 §4.5.3.1.10 says to treat that one as 452,
    /// so those recipients go in the next transaction instead of bouncing.
    /// </summary>
    internal static SmtpReply RecipientReply(SmtpReply reply) =>
        reply.Code == 552 && (reply.EnhancedCode == "5.5.3" || reply.Text.Contains("too many recipients", StringComparison.OrdinalIgnoreCase))
            ? reply with { Code = 452, EnhancedCode = "4.5.3" }
            : reply;

    public static SmtpReply ToReply(SmtpResponse response) => ToReply((int)response.StatusCode, response.Response);

    public static SmtpReply ToReply(int code, string? text) =>
        SmtpReply.Parse(code, text?.ReplaceLineEndings(" "));
}
