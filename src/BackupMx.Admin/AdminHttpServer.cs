// The admin endpoint runs its own small Kestrel application inside the relay's process: an empty
// WebApplication (no configuration sources, no default logging of its own) whose handlers use the
// relay's services. The relay's host stays a plain generic host, and the endpoint can be left out
// (BackupMx:Admin:Endpoint empty) without changing anything else.
using System.Globalization;
using System.Net;
using BackupMx.Admin.Dashboard;
using BackupMx.Core.Configuration;
using BackupMx.Core.Hosting;
using BackupMx.Core.Inspection;
using BackupMx.Core.Monitoring;
using BackupMx.Core.Spool;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OpenTelemetry.Metrics;

namespace BackupMx.Admin;

internal sealed class AdminHttpServer(IServiceProvider services, IOptions<AdminOptions> options, ILoggerFactory loggerFactory) : IHostedService, IAsyncDisposable
{
    public const string ReadyTag = "ready";

    private readonly ILogger _logger = loggerFactory.CreateLogger<AdminHttpServer>();
    private WebApplication? _app;

    /// <summary>The address Kestrel listens on (with the actual port when the configured one was 0).</summary>
    public Uri? Address { get; private set; }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var config = options.Value;
        if (!config.Enabled)
        {
            Log.Off(_logger, AdminOptions.EndpointKey);
            return;
        }

        var endpoint = config.ParsedEndpoint!;
        var access = new AdminAccess(config);
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions { ApplicationName = typeof(AdminHttpServer).Assembly.GetName().Name });
        builder.Services.AddSingleton(loggerFactory);
        builder.Services.AddSingleton(typeof(ILogger<>), typeof(Logger<>));
        builder.Services.AddRoutingCore();
        builder.WebHost.UseKestrelCore().ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = 64 * 1024;
            k.Listen(endpoint);
        });

        var app = builder.Build();
        Map(app, access, config);
        try
        {
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (IOException ex)
        {
            await app.DisposeAsync().ConfigureAwait(false);
            var reason = ex.InnerException is { } inner ? inner.Message : ex.Message;
            throw new StartupException($"the admin endpoint cannot listen on {AdminOptions.EndpointKey} {config.Endpoint}: {reason} (set another address:port, or an empty value to turn it off)", ex);
        }

        _app = app;
        Address = new Uri(app.Urls.First());
        Log.Listening(_logger, Address.Authority, access.TokenRequired);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_app is not null)
        {
            await _app.StopAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.DisposeAsync().ConfigureAwait(false);
            _app = null;
        }
    }

    private void Map(WebApplication app, AdminAccess access, AdminOptions config)
    {
        var time = services.GetRequiredService<TimeProvider>();
        var inspector = services.GetRequiredService<QueueInspector>();
        var flusher = services.GetRequiredService<DomainFlusher>();
        var operations = services.GetRequiredService<MessageOperations>();
        var health = services.GetRequiredService<HealthCheckService>();
        var refresher = services.GetRequiredService<SpoolGaugeRefresher>();
        var hostName = services.GetRequiredService<IOptions<BackupMxOptions>>().Value.HostName;
        var pages = new DashboardPages(hostName, access.FormToken, config.DashboardRefresh);

        app.Use(async (context, next) =>
        {
            var headers = context.Response.Headers;
            headers.CacheControl = "no-store";
            headers.XContentTypeOptions = "nosniff";
            // "same-origin", not "no-referrer": with no referrer a browser sends "Origin: null" on a POST,
            // which the cross-site check must refuse; other sites still get no address of ours.
            headers["Referrer-Policy"] = "same-origin";
            headers.XFrameOptions = "DENY";
            headers.ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
            var path = context.Request.Path.Value ?? "/";

            // Probes are anonymous (a load balancer or orchestrator rarely holds a token); they
            // say only "Healthy" or "Unhealthy" unless the request is authorised.
            var probe = path is "/healthz" or "/readyz";
            var refusal = access.Refusal(context);
            if (refusal is not null && !probe && path is not ("/login" or "/favicon.ico") && !path.StartsWith("/assets/", StringComparison.Ordinal))
            {
                Log.Refused(_logger, context.Request.Method, path, Client(context), refusal);
                if (access.TokenRequired && WantsHtml(context.Request) && HttpMethods.IsGet(context.Request.Method))
                {
                    context.Response.Redirect("/login");
                    return;
                }

                context.Response.StatusCode = access.TokenRequired ? StatusCodes.Status401Unauthorized : StatusCodes.Status403Forbidden;
                if (access.TokenRequired)
                {
                    context.Response.Headers.WWWAuthenticate = "Bearer";
                }

                await context.Response.WriteAsync(access.TokenRequired ? "a bearer token is required\n" : "this endpoint answers to loopback host names only\n").ConfigureAwait(false);
                return;
            }

            context.Items[nameof(AdminAccess)] = refusal is null;
            try
            {
                await next(context).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException && !context.Response.HasStarted)
            {
                Log.RequestFailed(_logger, context.Request.Method, path, ex);
                context.Response.StatusCode = StatusCodes.Status500InternalServerError;
                await context.Response.WriteAsync("the request failed; the relay's log says why\n").ConfigureAwait(false);
            }
        });

        app.UseRouting();

        var meterProvider = services.GetRequiredService<MeterProvider>();
        app.MapPrometheusScrapingEndpoint(
            "/metrics",
            meterProvider,
            branch => branch.Use(async (context, next) =>
            {
                await refresher.RefreshAsync(context.RequestAborted).ConfigureAwait(false);
                await next(context).ConfigureAwait(false);
            }),
            optionsName: null);

        app.MapGet("/healthz", context => Health(context, health, _ => false));
        app.MapGet("/readyz", context => Health(context, health, r => r.Tags.Contains(ReadyTag)));

        app.MapGet("/assets/admin.css", context => Send(context, Assets.Css, "text/css; charset=utf-8"));
        app.MapGet("/assets/admin.js", context => Send(context, Assets.Script, "text/javascript; charset=utf-8"));

        // Browsers ask for it on every page; no icon, and no 404 in their consoles.
        app.MapGet("/favicon.ico", context =>
        {
            context.Response.StatusCode = StatusCodes.Status204NoContent;
            return Task.CompletedTask;
        });

        app.MapGet("/login", context => Send(context, pages.Login(failed: false)));
        app.MapPost("/login", async context =>
        {
            var form = await context.Request.ReadFormAsync(context.RequestAborted).ConfigureAwait(false);
            if (!await CheckPostAsync(context, access, form).ConfigureAwait(false))
            {
                return;
            }

            if (!access.TokenRequired)
            {
                context.Response.Redirect("/", permanent: false);
                return;
            }

            if (!access.Matches(form["token"].ToString()))
            {
                Log.Refused(_logger, "POST", "/login", Client(context), "wrong token");
                context.Response.StatusCode = StatusCodes.Status401Unauthorized;
                await Send(context, pages.Login(failed: true)).ConfigureAwait(false);
                return;
            }

            AdminAccess.SetCookie(context.Response, form["token"].ToString());
            SeeOther(context, "/");
        });

        app.MapGet("/", async context =>
        {
            var ct = context.RequestAborted;
            var summaries = await inspector.SummarizeAsync(ct).ConfigureAwait(false);
            var quarantined = await inspector.ListQuarantinedAsync(null, ct).ConfigureAwait(false);
            await Send(context, pages.Home(summaries, quarantined, time.GetUtcNow(), ActionNotice.From(context.Request))).ConfigureAwait(false);
        });

        app.MapGet("/domains/{domain}", async context =>
        {
            var ct = context.RequestAborted;
            var domain = DomainOf(context);
            var messages = await inspector.ListAsync(domain, ct).ConfigureAwait(false);
            var quarantined = await inspector.ListQuarantinedAsync(domain, ct).ConfigureAwait(false);
            await Send(context, pages.Domain(domain, messages, quarantined, time.GetUtcNow(), ActionNotice.From(context.Request))).ConfigureAwait(false);
        });

        app.MapGet("/domains/{domain}/messages/{queueId}", async context =>
        {
            var domain = DomainOf(context);
            var queueId = (string)context.Request.RouteValues["queueId"]!;
            var message = await FindAsync(inspector, domain, queueId, context.RequestAborted).ConfigureAwait(false);
            context.Response.StatusCode = message is null ? StatusCodes.Status404NotFound : StatusCodes.Status200OK;
            await Send(context, pages.Message(domain, message, queueId, ActionNotice.From(context.Request))).ConfigureAwait(false);
        });

        // Deleting asks first, on a page of its own: no script, and the question is read out like any page.
        app.MapGet("/domains/{domain}/messages/{queueId}/delete", async context =>
        {
            var domain = DomainOf(context);
            var queueId = (string)context.Request.RouteValues["queueId"]!;
            var message = await FindAsync(inspector, domain, queueId, context.RequestAborted).ConfigureAwait(false);
            context.Response.StatusCode = message is null ? StatusCodes.Status404NotFound : StatusCodes.Status200OK;
            await Send(context, pages.ConfirmDelete(domain, message, queueId)).ConfigureAwait(false);
        });

        foreach (var op in (string[])[ActionNotice.Hold, ActionNotice.Release, ActionNotice.Delete])
        {
            MapMessageAction(app, access, operations, op);
        }

        MapDomainAction(app, access, operations, ActionNotice.Hold);
        MapDomainAction(app, access, operations, ActionNotice.Release);

        app.MapPost("/domains/{domain}/flush", async context =>
        {
            var form = await context.Request.ReadFormAsync(context.RequestAborted).ConfigureAwait(false);
            if (!await CheckPostAsync(context, access, form).ConfigureAwait(false))
            {
                return;
            }

            var domain = DomainOf(context);
            var flushed = await flusher.FlushAsync(domain, "operator request (dashboard)", context.RequestAborted).ConfigureAwait(false);
            Log.Flushed(_logger, domain, Client(context), flushed);

            // Back to the page the button was on, which then says what happened.
            var back = context.Request.Headers.Referer.ToString().Contains("/domains/", StringComparison.Ordinal) ? $"/domains/{Html.Url(domain)}" : "/";
            SeeOther(context, string.Create(CultureInfo.InvariantCulture, $"{back}?flushed={flushed}&domain={Html.Url(domain)}"));
        });
    }

    private async Task<bool> CheckPostAsync(HttpContext context, AdminAccess access, IFormCollection form)
    {
        var refusal = access.CrossSiteRefusal(context, form);
        if (refusal is null)
        {
            return true;
        }

        Log.Refused(_logger, context.Request.Method, context.Request.Path.Value ?? "", Client(context), refusal);
        context.Response.StatusCode = StatusCodes.Status403Forbidden;
        await context.Response.WriteAsync("refused: " + refusal + "\n").ConfigureAwait(false);
        return false;
    }

    private static async Task Health(HttpContext context, HealthCheckService health, Func<HealthCheckRegistration, bool> predicate)
    {
        var report = await health.CheckHealthAsync(predicate, context.RequestAborted).ConfigureAwait(false);
        context.Response.StatusCode = report.Status == HealthStatus.Unhealthy ? StatusCodes.Status503ServiceUnavailable : StatusCodes.Status200OK;
        context.Response.ContentType = "text/plain; charset=utf-8";
        var text = report.Status.ToString() + "\n";
        if (context.Items[nameof(AdminAccess)] is true)
        {
            text += string.Concat(report.Entries.Select(e => $"{e.Key}: {e.Value.Status}: {e.Value.Description}\n"));
        }

        await context.Response.WriteAsync(text).ConfigureAwait(false);
    }

    /// <summary>
    /// POST /domains/{domain}/messages/{queueId}/{op}, through <see cref="MessageOperations"/> like the
    /// operator's commands: a message being delivered is waited for up to <see cref="ActionNotice.Wait"/>;
    /// when its attempt has not ended by then (Busy) the page says so and nothing changes. A delete must
    /// carry confirm=yes, which only the confirmation page's form sends; without it the browser is sent
    /// to that page.
    /// </summary>
    private void MapMessageAction(WebApplication app, AdminAccess access, MessageOperations operations, string op) =>
        app.MapPost("/domains/{domain}/messages/{queueId}/" + op, async context =>
        {
            var form = await context.Request.ReadFormAsync(context.RequestAborted).ConfigureAwait(false);
            if (!await CheckPostAsync(context, access, form).ConfigureAwait(false))
            {
                return;
            }

            var domain = DomainOf(context);
            var queueId = (string)context.Request.RouteValues["queueId"]!;
            var message = $"/domains/{Html.Url(domain)}/messages/{Html.Url(queueId)}";
            if (op == ActionNotice.Delete && form["confirm"].ToString() != "yes")
            {
                SeeOther(context, message + "/delete");
                return;
            }

            var record = await operations.FindAsync(queueId, context.RequestAborted).ConfigureAwait(false);
            var outcome = record is null || !string.Equals(record.Domain, domain, StringComparison.OrdinalIgnoreCase)
                ? LedgerChange.NotFound
                : (await operations.ChangeAsync(record, op, notify: false, ActionNotice.Wait, context.RequestAborted).ConfigureAwait(false)).Change;
            Log.MessageChanged(_logger, op, queueId, domain, Client(context), outcome);

            // A deleted message has no page left: back to its domain's list.
            var back = op == ActionNotice.Delete && outcome is LedgerChange.Done or LedgerChange.NotFound ? $"/domains/{Html.Url(domain)}" : message;
            SeeOther(context, back + "?" + ActionNotice.Query(op, outcome, queueId));
        });

    /// <summary>POST /domains/{domain}/{op}: the same change for every message queued for the domain.</summary>
    private void MapDomainAction(WebApplication app, AdminAccess access, MessageOperations operations, string op) =>
        app.MapPost("/domains/{domain}/" + op, async context =>
        {
            var form = await context.Request.ReadFormAsync(context.RequestAborted).ConfigureAwait(false);
            if (!await CheckPostAsync(context, access, form).ConfigureAwait(false))
            {
                return;
            }

            var domain = DomainOf(context);
            int changed = 0, busy = 0;
            var outcomes = await operations.ChangeDomainAsync(domain, op == ActionNotice.Hold, ActionNotice.Wait, context.RequestAborted).ConfigureAwait(false);
            foreach (var (_, change) in outcomes)
            {
                switch (change)
                {
                    case LedgerChange.Done:
                        changed++;
                        break;
                    case LedgerChange.Busy:
                        busy++;
                        break;
                }
            }

            Log.DomainChanged(_logger, op, domain, Client(context), changed, busy);
            SeeOther(context, $"/domains/{Html.Url(domain)}?" + ActionNotice.DomainQuery(op, domain, changed, busy));
        });

    private static async Task<QueuedMessageView?> FindAsync(QueueInspector inspector, string domain, string queueId, CancellationToken cancellationToken)
    {
        var messages = await inspector.ListAsync(domain, cancellationToken).ConfigureAwait(false);
        return messages.FirstOrDefault(m => string.Equals(m.QueueId, queueId, StringComparison.Ordinal));
    }

    private static string DomainOf(HttpContext context) => ((string)context.Request.RouteValues["domain"]!).Trim();

    private static void SeeOther(HttpContext context, string location)
    {
        context.Response.StatusCode = StatusCodes.Status303SeeOther;
        context.Response.Headers.Location = location;
    }

    private static Task Send(HttpContext context, string body, string contentType = "text/html; charset=utf-8")
    {
        context.Response.ContentType = contentType;
        return context.Response.WriteAsync(body);
    }

    private static bool WantsHtml(HttpRequest request) => request.Headers.Accept.ToString().Contains("text/html", StringComparison.OrdinalIgnoreCase);

    private static string? Client(HttpContext context) => context.Connection.RemoteIpAddress?.ToString();
}
