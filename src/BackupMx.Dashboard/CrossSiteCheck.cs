using System.Security.Cryptography;
using System.Text;

namespace BackupMx.Dashboard;

/// <summary>
/// Which POSTs are the operator's own, in both hosts: the request comes from the dashboard's origin
/// (Origin and Sec-Fetch-Site, when the browser sends them) and carries the form token, a value only
/// a page of the dashboard can read. The hosts differ only in where the expected token comes from.
/// </summary>
public static class CrossSiteCheck
{
    public const string FormTokenField = "csrf";

    /// <summary>A new random form token, URL- and HTML-safe.</summary>
    public static string NewToken() =>
        Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    /// <summary>Null when the POST is the dashboard's own; otherwise why not.</summary>
    /// <param name="origin">The Origin header, empty when absent.</param>
    /// <param name="ownOrigin">scheme://host[:port] of the dashboard as the browser addresses it.</param>
    /// <param name="fetchSite">The Sec-Fetch-Site header, empty when absent.</param>
    /// <param name="presented">The form's token field, empty when absent.</param>
    /// <param name="expected">The token the dashboard put in its forms; empty means none was issued.</param>
    public static string? Refusal(string origin, string ownOrigin, string fetchSite, string presented, string expected)
    {
        ArgumentNullException.ThrowIfNull(origin);
        ArgumentNullException.ThrowIfNull(fetchSite);
        if (origin.Length > 0 && !string.Equals(origin, ownOrigin, StringComparison.OrdinalIgnoreCase))
        {
            return $"Origin '{origin}' is not this endpoint";
        }

        if (fetchSite.Length > 0 && fetchSite is not ("same-origin" or "none"))
        {
            return $"Sec-Fetch-Site is '{fetchSite}'";
        }

        return expected.Length > 0 && CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(presented ?? ""), Encoding.ASCII.GetBytes(expected))
            ? null
            : "the form token is missing or stale (reload the page)";
    }

    /// <summary>
    /// The response headers of every dashboard page: no caching, no framing, no script or style from
    /// anywhere else. "same-origin", not "no-referrer": with no referrer a browser sends "Origin: null"
    /// on a POST, which the check above must refuse; other sites still get no address of ours.
    /// </summary>
    public static readonly IReadOnlyList<KeyValuePair<string, string>> PageHeaders =
    [
        new("Cache-Control", "no-store"),
        new("X-Content-Type-Options", "nosniff"),
        new("Referrer-Policy", "same-origin"),
        new("X-Frame-Options", "DENY"),
        new("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    ];
}
