using System.ComponentModel.DataAnnotations;

namespace BackupMx.Receiver.Callouts;

/// <summary>
/// The <c>BackupMx:Receiver</c> section: where the receiver's recipient callouts go. With
/// <see cref="CalloutUrl"/> set, the function app calls the primary out (outbound port 25 is
/// supported from Functions with virtual network integration, not from Container Apps); without
/// it the receiver connects to the primary itself, as the embedded server does.
/// </summary>
public sealed class CalloutOptions
{
    public const string SectionName = "BackupMx:Receiver";

    /// <summary>
    /// The function app's VerifyRecipient endpoint, <c>https://&lt;app&gt;.azurewebsites.net/api/verify-recipient</c>.
    /// Unset: callouts leave from the receiver.
    /// </summary>
    public Uri? CalloutUrl { get; set; }

    /// <summary>Function key sent as <c>x-functions-key</c>; required with <see cref="CalloutUrl"/>.</summary>
    public string? CalloutKey { get; set; }

    /// <summary>
    /// Longest the receiver waits for the function's answer; past it, or on any failure of the
    /// function, the recipient is unverified (450 4.1.1 unless the domain accepts unverified
    /// recipients). Longer than the function's own BackupMx:Functions:CalloutTimeout (20 s), so
    /// that its answer arrives first. Default 30 s.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:02:00")]
    public TimeSpan CalloutTimeout { get; set; } = TimeSpan.FromSeconds(30);
}
