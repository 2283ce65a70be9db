using System.Globalization;
using System.Net;
using System.Text;
using BackupMx.Core.Notifications;

namespace BackupMx.Dashboard;

/// <summary>Small helpers for the dashboard's server-rendered HTML: everything from the spool is encoded.</summary>
public static class Html
{
    public static string E(string? text) => WebUtility.HtmlEncode(text ?? "");

    public static string Url(string segment) => Uri.EscapeDataString(segment);

    public static string Time(DateTimeOffset? at) =>
        at is null ? "-" : at.Value.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss 'UTC'", CultureInfo.InvariantCulture);

    /// <summary>A duration as people read it: "45 s", "12 min 5 s", "3 h 07 min", "2 d 04 h".</summary>
    public static string Age(TimeSpan? age) => Durations.Format(age);

    /// <summary>The page around <paramref name="body"/>: one h1, a skip link, the main landmark.</summary>
    /// <param name="goneText">What the refresh says, stopping, when the page's subject is gone (404); null on pages whose subject cannot go.</param>
    public static string Page(string title, string hostName, string body, int refreshSeconds, DashboardLinks links, string? goneText = null)
    {
        var html = new StringBuilder();
        html.Append("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
            .Append("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n")
            .Append("<title>").Append(E(title)).Append(" - BackupMx ").Append(E(hostName)).Append("</title>\n")
            .Append("<link rel=\"stylesheet\" href=\"").Append(E(links.To("/assets/admin.css"))).Append("\">\n")
            .Append("<script src=\"").Append(E(links.To("/assets/admin.js"))).Append("\" defer></script>\n</head>\n")
            .Append(CultureInfo.InvariantCulture, $"<body data-refresh=\"{refreshSeconds}\"")
            .Append(goneText is null ? "" : $" data-gone=\"{E(goneText)}\"").Append(">\n")
            .Append("<a class=\"skip\" href=\"#main\">Skip to content</a>\n")
            .Append("<header><p class=\"brand\"><a href=\"").Append(E(links.To("/"))).Append("\">BackupMx</a> <span>").Append(E(hostName)).Append("</span></p></header>\n")
            .Append("<main id=\"main\" tabindex=\"-1\">\n")
            .Append(body)
            .Append("</main>\n</body>\n</html>\n");
        return html.ToString();
    }
}
