using System.Net;
using System.Security.Cryptography;
using System.Text;
using BackupMx.Dashboard;
using Microsoft.AspNetCore.Http;

namespace BackupMx.Admin;

/// <summary>
/// Who may use the admin endpoint, and which POSTs are the operator's own.
/// <list type="bullet">
/// <item>With a token, every request but the health probes carries it: <c>Authorization: Bearer</c>
/// (scrapers, scripts), or the cookie the sign-in form sets (the dashboard), HttpOnly and
/// SameSite=Strict so that no other site's page sends it.</item>
/// <item>Without a token (loopback only), the Host header must name a loopback address: a page of
/// another site whose name was re-pointed at 127.0.0.1 (DNS rebinding) is refused.</item>
/// <item>A POST must come from this origin (Origin and Sec-Fetch-Site, when the browser sends them)
/// and carry the form token, a random value of this process that only a page of the dashboard can
/// read.</item>
/// </list>
/// </summary>
internal sealed class AdminAccess
{
    public const string CookieName = "backupmx-admin";

    public const string FormTokenField = CrossSiteCheck.FormTokenField;

    private readonly byte[]? _tokenHash;

    public AdminAccess(AdminOptions options)
    {
        _tokenHash = options.HasToken ? Hash(options.Token!) : null;
        FormToken = CrossSiteCheck.NewToken();
    }

    public bool TokenRequired => _tokenHash is not null;

    /// <summary>The value every dashboard form carries; new at every start of the process.</summary>
    public string FormToken { get; }

    /// <summary>Null when the request may go on; otherwise why not.</summary>
    public string? Refusal(HttpContext context)
    {
        if (!TokenRequired)
        {
            return IsLoopbackHost(context.Request.Host) ? null : $"Host '{context.Request.Host}' is not a loopback name";
        }

        var presented = Bearer(context.Request) ?? context.Request.Cookies[CookieName];
        return presented is not null && Matches(presented) ? null : presented is null ? "no token" : "wrong token";
    }

    public bool Matches(string token) => _tokenHash is not null && CryptographicOperations.FixedTimeEquals(Hash(token), _tokenHash);

    /// <summary>Null when a POST is the dashboard's own; otherwise why not.</summary>
    public string? CrossSiteRefusal(HttpContext context, IFormCollection form)
    {
        var request = context.Request;
        return CrossSiteCheck.Refusal(
            request.Headers.Origin.ToString(),
            $"{request.Scheme}://{request.Host}",
            request.Headers["Sec-Fetch-Site"].ToString(),
            form[FormTokenField].ToString(),
            FormToken);
    }

    public static void SetCookie(HttpResponse response, string token) =>
        response.Cookies.Append(CookieName, token, new CookieOptions
        {
            HttpOnly = true,
            SameSite = SameSiteMode.Strict,
            Secure = response.HttpContext.Request.IsHttps,
            Path = "/",
            IsEssential = true,
        });

    private static string? Bearer(HttpRequest request)
    {
        var header = request.Headers.Authorization.ToString();
        return header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) ? header["Bearer ".Length..].Trim() : null;
    }

    private static bool IsLoopbackHost(HostString host) =>
        string.Equals(host.Host, "localhost", StringComparison.OrdinalIgnoreCase)
        || (IPAddress.TryParse(host.Host.Trim('[', ']'), out var address) && IPAddress.IsLoopback(address));

    private static byte[] Hash(string token) => SHA256.HashData(Encoding.UTF8.GetBytes(token));
}
