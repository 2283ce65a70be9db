using System.Net;

namespace BackupMx.Admin;

/// <summary>The admin HTTP endpoint of the embedded server: metrics, health and the dashboard.</summary>
public sealed class AdminOptions
{
    public const string SectionName = "BackupMx:Admin";

    public const string EndpointKey = SectionName + ":Endpoint";

    public const string TokenKey = SectionName + ":Token";

    /// <summary>The fewest characters a token may have: it is the only thing between the network and the spool.</summary>
    public const int MinimumTokenLength = 16;

    /// <summary>
    /// <c>address:port</c> to listen on (an IP address: <c>127.0.0.1:8025</c>, <c>[::1]:8025</c>,
    /// <c>0.0.0.0:8025</c>). Default <c>127.0.0.1:8025</c>; empty turns the endpoint off.
    /// </summary>
    public string? Endpoint { get; set; } = "127.0.0.1:8025";

    /// <summary>
    /// Bearer token that every request but <c>/healthz</c> and <c>/readyz</c> must carry (the dashboard
    /// takes it once in a sign-in form and keeps it in a same-site cookie). Required when the endpoint
    /// is not a loopback address; when set on loopback, it is required there too.
    /// </summary>
    public string? Token { get; set; }

    /// <summary>How often the dashboard reloads its tables. Default 10 seconds.</summary>
    public TimeSpan DashboardRefresh { get; set; } = TimeSpan.FromSeconds(10);

    public bool Enabled => !string.IsNullOrWhiteSpace(Endpoint);

    /// <summary>The parsed endpoint; null when off or not an <c>address:port</c>.</summary>
    public IPEndPoint? ParsedEndpoint =>
        Enabled && IPEndPoint.TryParse(Endpoint!.Trim(), out var ip) && ip.Port > 0 ? ip : null;

    public bool HasToken => !string.IsNullOrEmpty(Token);
}
