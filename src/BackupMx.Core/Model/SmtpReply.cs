using System.Text.RegularExpressions;

namespace BackupMx.Core.Model;

/// <summary>
/// An SMTP reply as received from a remote server, or synthesised by us for a
/// failure that never got one (connection refused, timeout, expiry).
/// </summary>
public sealed partial record SmtpReply(int Code, string? EnhancedCode, string Text, bool FromRemote = true)
{
    /// <summary>The reply text, bounded by <see cref="StoredText"/> however it was built.</summary>
    public string Text { get; init => field = StoredText.Bound(value, StoredText.MaxLength); } = StoredText.Bound(Text, StoredText.MaxLength);

    public bool IsSuccess => Code is >= 200 and < 300;

    public bool IsTransient => Code is >= 400 and < 500;

    public bool IsPermanent => Code >= 500;

    /// <summary>Builds a reply from a code and the text after it, taking an enhanced code (x.y.z) from the start of the text.</summary>
    public static SmtpReply Parse(int code, string? text)
    {
        text = (text ?? string.Empty).Trim();
        var match = EnhancedCodePattern().Match(text);
        if (match.Success && match.Groups[1].Value[0] - '0' == code / 100)
        {
            return new SmtpReply(code, match.Groups[1].Value, text[match.Length..].Trim());
        }

        return new SmtpReply(code, null, text);
    }

    /// <summary>A transient failure of our own (no reply from the remote side).</summary>
    public static SmtpReply LocalTransient(string enhancedCode, string text) => new(451, enhancedCode, text, FromRemote: false);

    public static SmtpReply LocalPermanent(string enhancedCode, string text) => new(550, enhancedCode, text, FromRemote: false);

    /// <summary>The enhanced status code to report, derived from the basic code when the server gave none (RFC 3463).</summary>
    public string StatusCode => EnhancedCode ?? (Code / 100) switch
    {
        2 => "2.0.0",
        4 => "4.0.0",
        _ => "5.0.0",
    };

    public override string ToString() => EnhancedCode is null ? $"{Code} {Text}" : $"{Code} {EnhancedCode} {Text}";

    [GeneratedRegex(@"^([245]\.\d{1,3}\.\d{1,3})(?=\s|$)")]
    private static partial Regex EnhancedCodePattern();
}
