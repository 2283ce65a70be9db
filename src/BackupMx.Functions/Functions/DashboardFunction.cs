// The dashboard of the embedded server's admin endpoint, served by the function app over the same
// Core operations as the admin API (BackupMx.Dashboard renders it and carries out its buttons).
// Like the API it is guarded by a function key, checked by the Functions host before the worker
// sees the request, and by App Service authentication (Entra ID) when that is configured, with
// the admin API's app-role check (AdminRole).
using System.Collections.Specialized;
using System.Net;
using System.Web;
using BackupMx.Core.Configuration;
using BackupMx.Dashboard;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Azure.Functions.Worker.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BackupMx.Functions;

public sealed partial class DashboardFunction(
    DashboardSite site,
    IOptions<BackupMxOptions> options,
    AdminRole adminRole,
    ILogger<DashboardFunction> logger)
{
    public const string Name = "Dashboard";

    /// <summary>Where the pages are: the HTTP functions' route prefix ("api") and the function's route.</summary>
    public const string BasePath = "/api/dashboard";

    /// <summary>
    /// The form token's cookie. The function app runs on any number of instances, so the token cannot
    /// be one random value per process as in the embedded server: the page puts the value of this
    /// cookie (HttpOnly, SameSite=Strict, set by the first page) in its forms, and a POST must carry
    /// both, equal. Another site can neither read the cookie nor make the browser send it.
    /// </summary>
    public const string CookieName = "backupmx-dashboard-form";

    /// <summary>The query parameter that carries the function key (the Functions host reads it there).</summary>
    public const string KeyParameter = "code";

    /// <summary>How often the pages refresh themselves; each refresh is one function run.</summary>
    public static readonly TimeSpan Refresh = TimeSpan.FromSeconds(30);

    [Function(Name)]
    public async Task<HttpResponseData> Run(
        [HttpTrigger(AuthorizationLevel.Function, "get", "post", Route = "dashboard/{*path}")] HttpRequestData request,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (await adminRole.DenyAsync(request, cancellationToken).ConfigureAwait(false) is { } denied)
        {
            return denied;
        }

        var query = HttpUtility.ParseQueryString(request.Url.Query);
        var formToken = request.Cookies.FirstOrDefault(c => c.Name == CookieName)?.Value ?? "";
        var newToken = formToken.Length == 0 ? CrossSiteCheck.NewToken() : null;
        var key = query[KeyParameter];
        var links = new DashboardLinks(BasePath, key is null ? "" : KeyParameter + "=" + Uri.EscapeDataString(key));
        var pages = new DashboardPages(options.Value.HostName, newToken ?? formToken, Refresh, links);

        NameValueCollection? form = null;
        if (string.Equals(request.Method, "POST", StringComparison.OrdinalIgnoreCase))
        {
            form = HttpUtility.ParseQueryString(await request.ReadAsStringAsync().ConfigureAwait(false) ?? "");
            var refusal = CrossSiteCheck.Refusal(
                Header(request, "Origin"),
                request.Url.GetLeftPart(UriPartial.Authority),
                Header(request, "Sec-Fetch-Site"),
                form[CrossSiteCheck.FormTokenField] ?? "",
                formToken);
            if (refusal is not null)
            {
                LogRefused(logger, request.Url.AbsolutePath, refusal);
                return await TextAsync(request, HttpStatusCode.Forbidden, "refused: " + refusal + "\n", cancellationToken).ConfigureAwait(false);
            }
        }

        var path = request.Url.AbsolutePath.StartsWith(BasePath, StringComparison.OrdinalIgnoreCase) ? request.Url.AbsolutePath[BasePath.Length..] : "/";
        var answer = await site.HandleAsync(
            new DashboardRequest(request.Method, path, name => query[name], name => form?[name], Header(request, "Referer")),
            pages,
            cancellationToken).ConfigureAwait(false);
        if (answer is null)
        {
            return await TextAsync(request, HttpStatusCode.NotFound, "not found\n", cancellationToken).ConfigureAwait(false);
        }

        if (answer.Done is { } done)
        {
            LogAction(logger, done.Op, done.Domain, done.QueueId ?? "every message", done.Outcome);
        }

        var response = request.CreateResponse((HttpStatusCode)answer.Status);
        foreach (var (name, value) in CrossSiteCheck.PageHeaders)
        {
            response.Headers.Add(name, value);
        }

        if (newToken is not null)
        {
            response.Cookies.Append(new HttpCookie(CookieName, newToken)
            {
                HttpOnly = true,
                Secure = true,
                SameSite = SameSite.Strict,
                Path = BasePath,
            });
        }

        if (answer.Location is not null)
        {
            response.Headers.Add("Location", answer.Location);
            return response;
        }

        response.Headers.Add("Content-Type", answer.ContentType);
        await response.WriteStringAsync(answer.Body, cancellationToken).ConfigureAwait(false);
        return response;
    }

    private static string Header(HttpRequestData request, string name) =>
        request.Headers.TryGetValues(name, out var values) ? string.Join(",", values) : "";

    private static async Task<HttpResponseData> TextAsync(HttpRequestData request, HttpStatusCode status, string text, CancellationToken cancellationToken)
    {
        var response = request.CreateResponse(status);
        response.Headers.Add("Content-Type", "text/plain; charset=utf-8");
        await response.WriteStringAsync(text, cancellationToken).ConfigureAwait(false);
        return response;
    }

    [LoggerMessage(EventId = 6120, Level = LogLevel.Information, Message = "Dashboard {Action} of {Target} for {Domain}: {Outcome}")]
    private static partial void LogAction(ILogger logger, string action, string domain, string target, string outcome);

    [LoggerMessage(EventId = 6121, Level = LogLevel.Warning, Message = "Dashboard POST {Path} refused: {Reason}")]
    private static partial void LogRefused(ILogger logger, string path, string reason);
}
