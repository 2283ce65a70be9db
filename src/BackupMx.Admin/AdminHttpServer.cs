// The admin endpoint runs its own small Kestrel application inside the relay's process: an empty
// WebApplication (no configuration sources, no default logging of its own) whose handlers use the
// relay's services. The relay's host stays a plain generic host, and the endpoint can be left out
// (BackupMx:Admin:Endpoint empty) without changing anything else.
using System.Globalization;
using System.Net;
using BackupMx.Dashboard;
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
        var pages = new DashboardPages(hostName, access.FormToken, config.DashboardRefresh, DashboardLinks.Root);
        var site = new DashboardSite(inspector, flusher, operations, time);

        app.Use(async (context, next) =>
        {
            foreach (var (name, value) in CrossSiteCheck.PageHeaders)
            {
                context.Response.Headers[name] = value;
            }

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

        // Everything else is the dashboard's: its pages, assets and buttons (BackupMx.Dashboard).
        app.MapMethods("/{**path}", [HttpMethods.Get, HttpMethods.Post], async context =>
        {
            var request = context.Request;
            var ct = context.RequestAborted;
            IFormCollection? form = null;
            if (HttpMethods.IsPost(request.Method))
            {
                form = request.HasFormContentType ? await request.ReadFormAsync(ct).ConfigureAwait(false) : FormCollection.Empty;
                if (!await CheckPostAsync(context, access, form).ConfigureAwait(false))
                {
                    return;
                }
            }

            var response = await site.HandleAsync(
                new DashboardRequest(
                    request.Method,
                    request.Path.ToUriComponent(),
                    name => request.Query.TryGetValue(name, out var v) ? v.ToString() : null,
                    name => form is not null && form.TryGetValue(name, out var v) ? v.ToString() : null,
                    request.Headers.Referer.ToString()),
                pages,
                ct).ConfigureAwait(false);
            if (response is null)
            {
                context.Response.StatusCode = StatusCodes.Status404NotFound;
                await Send(context, "not found\n", "text/plain; charset=utf-8").ConfigureAwait(false);
                return;
            }

            if (response.Done is { } done)
            {
                LogAction(done, Client(context));
            }

            context.Response.StatusCode = response.Status;
            if (response.Location is not null)
            {
                context.Response.Headers.Location = response.Location;
                return;
            }

            await Send(context, response.Body, response.ContentType).ConfigureAwait(false);
        });
    }

    private void LogAction(DashboardAction done, string? client)
    {
        if (done.Op == "flush")
        {
            Log.Flushed(_logger, done.Domain, client, done.Outcome);
        }
        else if (done.QueueId is null)
        {
            Log.DomainChanged(_logger, done.Op, done.Domain, client, done.Outcome);
        }
        else
        {
            Log.MessageChanged(_logger, done.Op, done.QueueId, done.Domain, client, done.Outcome);
        }
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
