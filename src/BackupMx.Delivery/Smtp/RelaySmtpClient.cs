using BackupMx.Core.Model;
using MailKit;
using MailKit.Net.Smtp;
using MimeKit;

namespace BackupMx.Delivery.Smtp;

/// <summary>
/// A MailKit client that sends stored messages as they are and reports every
/// recipient's reply instead of stopping at the first refusal.
/// </summary>
internal sealed class RelaySmtpClient(ProtocolWatcher watcher) : SmtpClient(watcher)
{
    private readonly Dictionary<MailboxAddress, SmtpReply> _replies = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<MailboxAddress, string?> _notify = new(ReferenceEqualityComparer.Instance);
    private string? _envelopeId;
    private long _storedLength = -1;

    public ProtocolWatcher Watcher { get; } = watcher;

    /// <summary>True once this connection has carried a transaction before the current one.</summary>
    public bool Reused { get; set; }

    /// <summary>RCPT replies of the current transaction, by the mailbox given to SendAsync.</summary>
    public IReadOnlyDictionary<MailboxAddress, SmtpReply> RecipientReplies => _replies;

    public int AcceptedCount => _replies.Values.Count(r => r.IsSuccess);

    /// <summary>True when the server's EHLO reply advertised DSN, so NOTIFY, ORCPT, RET and ENVID went with the transaction.</summary>
    public bool OffersDsn => Capabilities.HasFlag(SmtpCapabilities.Dsn);

    /// <summary>Sets the envelope of the next transaction (MAIL FROM and RCPT parameters).</summary>
    public void SetEnvelope(MailParameters parameters, IEnumerable<(MailboxAddress Mailbox, string? Notify)> recipients, long storedLength)
    {
        _replies.Clear();
        _notify.Clear();
        foreach (var (mailbox, notify) in recipients)
        {
            _notify[mailbox] = notify;
        }

        _envelopeId = string.IsNullOrEmpty(parameters.EnvelopeId) ? null : parameters.EnvelopeId;
        _storedLength = storedLength;
        DeliveryStatusNotificationType = parameters.Ret?.ToUpperInvariant() switch
        {
            "FULL" => DeliveryStatusNotificationType.Full,
            "HDRS" => DeliveryStatusNotificationType.HeadersOnly,
            _ => DeliveryStatusNotificationType.Unspecified,
        };
    }

    // MimeKit's Prepare re-encodes long lines and 8-bit parts; the bytes we stored
    // must reach the primary unchanged (rule 3, DKIM), so there is nothing to prepare.
    protected override void Prepare(FormatOptions options, MimeMessage message, EncodingConstraint constraint, int maxLineLength)
    {
    }

    protected override async Task<long> GetSizeAsync(FormatOptions options, MimeMessage message, CancellationToken cancellationToken)
    {
        // BDAT needs the exact count of what will be written (bare LF becomes CRLF), so
        // measure then; SIZE= is only a declaration and the stored length saves a second pass.
        if (_storedLength < 0 || (Capabilities & (SmtpCapabilities.Chunking | SmtpCapabilities.BinaryMime)) != 0)
        {
            return await base.GetSizeAsync(options, message, cancellationToken).ConfigureAwait(false);
        }

        return _storedLength;
    }

    protected override string? GetEnvelopeId(MimeMessage message) => _envelopeId;

    protected override DeliveryStatusNotification? GetDeliveryStatusNotifications(MimeMessage message, MailboxAddress mailbox)
    {
        var notify = _notify.GetValueOrDefault(mailbox);
        if (string.IsNullOrWhiteSpace(notify))
        {
            return null;
        }

        DeliveryStatusNotification result = DeliveryStatusNotification.Never;
        foreach (var item in notify.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            result |= item.ToUpperInvariant() switch
            {
                "SUCCESS" => DeliveryStatusNotification.Success,
                "FAILURE" => DeliveryStatusNotification.Failure,
                "DELAY" => DeliveryStatusNotification.Delay,
                _ => DeliveryStatusNotification.Never,
            };
        }

        return result;
    }

    protected override void OnRecipientAccepted(MimeMessage message, MailboxAddress mailbox, SmtpResponse response) =>
        _replies[mailbox] = ToReply(response);

    // The default throws at the first refusal and sends no DATA; each recipient stands alone (rule 4).
    protected override void OnRecipientNotAccepted(MimeMessage message, MailboxAddress mailbox, SmtpResponse response) =>
        _replies[mailbox] = RecipientReply(ToReply(response));

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
