namespace BackupMx.Dashboard;

/// <summary>
/// Where the dashboard's pages live: the embedded endpoint serves them at the root, the function app
/// under <c>/api/dashboard</c>. In the function app a browser authenticates with the function key in
/// the <c>code</c> query parameter (it cannot send the <c>x-functions-key</c> header when it follows
/// a link or posts a form), so every link, form action and redirect carries it on.
/// </summary>
/// <param name="BasePath">Prefix of every dashboard path, without a trailing slash; empty at the root.</param>
/// <param name="Query">Query parameters every URL carries (already encoded, without '?'); empty for none.</param>
public sealed record DashboardLinks(string BasePath, string Query)
{
    public static readonly DashboardLinks Root = new("", "");

    /// <summary>The URL of the dashboard path <paramref name="path"/> ("/", "/domains/x", "/domains/x?op=hold").</summary>
    public string To(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var url = BasePath + path;
        return Query.Length == 0 ? url : url + (path.Contains('?', StringComparison.Ordinal) ? "&" : "?") + Query;
    }
}
