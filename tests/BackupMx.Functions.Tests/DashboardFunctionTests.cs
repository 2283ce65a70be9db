using System.Net;
using System.Text;
using Azure.Messaging.ServiceBus;
using BackupMx.Azure;
using BackupMx.Azure.Tests;
using BackupMx.Core.Intake;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using BackupMx.Dashboard;
using BackupMx.Functions.Tests.Fakes;
using BackupMx.Testing;
using BackupMx.Testing.Azurite;
using Microsoft.Azure.Functions.Worker.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace BackupMx.Functions.Tests;

/// <summary>
/// The dashboard in Azure mode: the function's HTTP handler over the function app's own composition,
/// Table and Blob storage in Azurite, the Service Bus wake-up queue over a recording sender and
/// receiver, and a primary that is down. The function key is checked by the Functions host before
/// the worker runs (FunctionsMetadataTests: authLevel "Function"); the form token and origin checks
/// are the function's own.
/// </summary>
[Collection(AzuriteFixture.CollectionName)]
public sealed class DashboardFunctionTests(AzuriteFixture azurite) : IAsyncLifetime
{
    private const string Domain = "example.test";
    private const string Key = "k3y/with+chars";
    private static readonly CancellationToken None = CancellationToken.None;

    // Never started: its port refuses connections, so every attempt is deferred.
    private readonly FakePrimary _primary = new(port: FreePort.Next());
    private readonly FakeSender _sender = new();
    private readonly FakeReceiver _receiver = new();
    private readonly HashSet<long> _released = [];
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 27, 12, 0, 0, TimeSpan.Zero));
    private ServiceProvider _services = null!;

    private ISpoolStore Spool => _services.GetRequiredService<ISpoolStore>();

    private DashboardFunction Function => _services.GetRequiredService<DashboardFunction>();

    public async Task InitializeAsync()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(AzureModeSettings.Create(azurite, Domain, _primary.HostPort)).Build();
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddSingleton<TimeProvider>(_time);
        services.AddSingleton(new ServiceBusWakeUpQueue(_sender, _receiver));
        services.AddSingleton<ForwardFunction>();
        services.AddBackupMxFunctions(configuration);
        services.AddSingleton<DashboardFunction>();
        _services = services.BuildServiceProvider();
        await _services.GetRequiredService<AzureStorageInitializer>().EnsureCreatedAsync(None);
    }

    public async Task DisposeAsync()
    {
        await _services.DisposeAsync();
        await _primary.DisposeAsync();
    }

    [Fact]
    public async Task Pages_DomainListDomainAndMessage_RenderedFromTheTableSpool_LinksCarryTheKey()
    {
        var ids = new[] { await AcceptAsync("bob@example.test"), await AcceptAsync("carol@example.test") };
        var code = "code=" + Uri.EscapeDataString(Key);

        var (home, cookie) = await GetAsync("/api/dashboard");
        Assert.Equal(HttpStatusCode.OK, home.StatusCode);
        var html = home.ReadText();
        Assert.Contains($"<tr data-domain=\"{Domain}\">", html, StringComparison.Ordinal);
        Assert.Contains("<td class=\"num\" data-field=\"messages\">2</td>", html, StringComparison.Ordinal);
        Assert.Contains($"href=\"/api/dashboard/domains/{Domain}?{code}\"", html, StringComparison.Ordinal);
        Assert.Contains($"action=\"/api/dashboard/domains/{Domain}/flush?{code}\"", html, StringComparison.Ordinal);
        Assert.Contains($"href=\"/api/dashboard/assets/admin.css?{code}\"", html, StringComparison.Ordinal);
        Assert.Contains($"name=\"csrf\" value=\"{cookie.Value}\"", html, StringComparison.Ordinal);
        Assert.True(cookie.HttpOnly);
        Assert.Equal(SameSite.Strict, cookie.SameSite);
        Assert.Equal("DENY", Header(home, "X-Frame-Options"));
        Assert.Contains("form-action 'self'", Header(home, "Content-Security-Policy"), StringComparison.Ordinal);

        var (domain, _) = await GetAsync($"/api/dashboard/domains/{Domain}", cookie);
        var domainHtml = domain.ReadText();
        Assert.All(ids, id => Assert.Contains($"<tr data-queue-id=\"{id}\">", domainHtml, StringComparison.Ordinal));
        Assert.Contains($"action=\"/api/dashboard/domains/{Domain}/messages/{ids[0]}/hold?{code}\"", domainHtml, StringComparison.Ordinal);

        var (message, _) = await GetAsync($"/api/dashboard/domains/{Domain}/messages/{ids[1]}", cookie);
        Assert.Equal(HttpStatusCode.OK, message.StatusCode);
        Assert.Contains("<dd>carol@example.test</dd>", message.ReadText(), StringComparison.Ordinal);

        var (css, _) = await GetAsync("/api/dashboard/assets/admin.css", cookie);
        Assert.Equal("text/css; charset=utf-8", Header(css, "Content-Type"));

        var (missing, _) = await GetAsync($"/api/dashboard/domains/{Domain}/messages/0000000000NOSUCHID", cookie);
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
    }

    [Fact]
    public async Task Buttons_HoldReleaseDeleteAndFlush_ChangeTheTableSpool()
    {
        var (kept, gone) = (await AcceptAsync("bob@example.test"), await AcceptAsync("carol@example.test"));
        var (_, cookie) = await GetAsync("/api/dashboard");

        var hold = await PostAsync($"/api/dashboard/domains/{Domain}/messages/{kept}/hold", cookie, cookie.Value);
        Assert.Equal(HttpStatusCode.SeeOther, hold.StatusCode);
        Assert.Equal($"/api/dashboard/domains/{Domain}/messages/{kept}?op=hold&outcome=done&id={kept}&code={Uri.EscapeDataString(Key)}", Header(hold, "Location"));
        Assert.NotNull((await Spool.GetAsync(Domain, kept, None))!.HeldAt);

        var (page, _) = await GetAsync($"/api/dashboard/domains/{Domain}/messages/{kept}?op=hold&outcome=done&id={kept}", cookie);
        Assert.Contains($"Held {kept}: it is not delivered", page.ReadText(), StringComparison.Ordinal);

        Assert.Equal(HttpStatusCode.SeeOther, (await PostAsync($"/api/dashboard/domains/{Domain}/messages/{kept}/release", cookie, cookie.Value)).StatusCode);
        Assert.Null((await Spool.GetAsync(Domain, kept, None))!.HeldAt);

        // A delete without confirm=yes goes to the question; with it the record and its body are gone.
        var unconfirmed = await PostAsync($"/api/dashboard/domains/{Domain}/messages/{gone}/delete", cookie, cookie.Value);
        Assert.StartsWith($"/api/dashboard/domains/{Domain}/messages/{gone}/delete?", Header(unconfirmed, "Location"), StringComparison.Ordinal);
        Assert.NotNull(await Spool.GetAsync(Domain, gone, None));
        var delete = await PostAsync($"/api/dashboard/domains/{Domain}/messages/{gone}/delete", cookie, cookie.Value, "confirm=yes");
        Assert.StartsWith($"/api/dashboard/domains/{Domain}?op=delete&outcome=done", Header(delete, "Location"), StringComparison.Ordinal);
        Assert.Null(await Spool.GetAsync(Domain, gone, None));
        await Assert.ThrowsAsync<BodyNotFoundException>(() => _services.GetRequiredService<IBodyStore>().OpenReadAsync(gone, None));

        // Flush: after a failed attempt the message waits for its retry; the flush makes it due now.
        await ForwardDueAsync();
        Assert.Equal(1, (await Spool.GetAsync(Domain, kept, None))!.Attempts);
        Assert.True((await Spool.GetAsync(Domain, kept, None))!.NextAttemptAt > _time.GetUtcNow());
        _time.Advance(TimeSpan.FromSeconds(30));
        var flush = await PostAsync($"/api/dashboard/domains/{Domain}/flush", cookie, cookie.Value);
        Assert.Equal($"/api/dashboard/?flushed=1&domain={Domain}&code={Uri.EscapeDataString(Key)}", Header(flush, "Location"));
        var flushed = (await Spool.GetAsync(Domain, kept, None))!;
        Assert.Equal((_time.GetUtcNow(), 0), (flushed.NextAttemptAt, flushed.Attempts));
    }

    [Fact]
    public async Task Post_CrossSiteOrWithoutTheFormCookie_Refused_NothingChanged()
    {
        var id = await AcceptAsync("bob@example.test");
        var (_, cookie) = await GetAsync("/api/dashboard");
        var path = $"/api/dashboard/domains/{Domain}/messages/{id}/hold";

        var forgeries = new (HttpCookie? Cookie, string Csrf, (string, string)[] Headers)[]
        {
            (null, cookie.Value, []),
            (cookie, "", []),
            (cookie, "forged", []),
            (cookie, cookie.Value, [("Origin", "https://evil.example")]),
            (cookie, cookie.Value, [("Origin", "null")]),
            (cookie, cookie.Value, [("Sec-Fetch-Site", "cross-site")]),
        };
        foreach (var (c, csrf, headers) in forgeries)
        {
            var response = await PostAsync(path, c, csrf, headers: headers);
            Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
            Assert.StartsWith("refused: ", response.ReadText(), StringComparison.Ordinal);
        }

        Assert.Null((await Spool.GetAsync(Domain, id, None))!.HeldAt);

        // The same POST from the dashboard's own page goes through.
        var own = await PostAsync(path, cookie, cookie.Value, headers: [("Origin", "https://backupmx.test"), ("Sec-Fetch-Site", "same-origin")]);
        Assert.Equal(HttpStatusCode.SeeOther, own.StatusCode);
        Assert.NotNull((await Spool.GetAsync(Domain, id, None))!.HeldAt);
    }

    [Fact]
    public async Task AdminRole_Set_PagesAndButtonsNeedIt_AsTheAdminApiDoes()
    {
        var id = await AcceptAsync("bob@example.test");
        var guarded = new DashboardFunction(
            _services.GetRequiredService<DashboardSite>(),
            _services.GetRequiredService<Microsoft.Extensions.Options.IOptions<BackupMx.Core.Configuration.BackupMxOptions>>(),
            new AdminRole(Microsoft.Extensions.Options.Options.Create(new FunctionsOptions { AdminRole = "BackupMx.Operator" })),
            Microsoft.Extensions.Logging.Abstractions.NullLogger<DashboardFunction>.Instance);

        var page = await guarded.Run(new FakeHttpRequestData("GET", "/api/dashboard?code=" + Uri.EscapeDataString(Key)), None);
        Assert.Equal(HttpStatusCode.Unauthorized, page.StatusCode);

        var hold = new FakeHttpRequestData("POST", $"/api/dashboard/domains/{Domain}/messages/{id}/hold?code=" + Uri.EscapeDataString(Key));
        hold.Headers.Add(AdminRole.PrincipalHeader, Convert.ToBase64String(Encoding.UTF8.GetBytes(
            "{\"auth_typ\":\"aad\",\"claims\":[{\"typ\":\"roles\",\"val\":\"BackupMx.Reader\"}],\"name_typ\":\"name\",\"role_typ\":\"roles\"}")));
        Assert.Equal(HttpStatusCode.Forbidden, (await guarded.Run(hold, None)).StatusCode);
        Assert.Null((await Spool.GetAsync(Domain, id, None))!.HeldAt);
    }

    private async Task<(FakeHttpResponseData Response, HttpCookie Cookie)> GetAsync(string path, HttpCookie? cookie = null)
    {
        var request = new FakeHttpRequestData("GET", path + (path.Contains('?', StringComparison.Ordinal) ? "&" : "?") + "code=" + Uri.EscapeDataString(Key));
        if (cookie is not null)
        {
            request.CookieList.Add(cookie);
        }

        var response = Assert.IsType<FakeHttpResponseData>(await Function.Run(request, None));
        var set = response.SetCookies.OfType<HttpCookie>().SingleOrDefault(c => c.Name == DashboardFunction.CookieName);
        Assert.True(cookie is null ? set is not null : set is null, "the form cookie is set once, by the first page");
        return (response, cookie ?? set!);
    }

    private async Task<FakeHttpResponseData> PostAsync(string path, HttpCookie? cookie, string csrf, string extra = "", (string Name, string Value)[]? headers = null)
    {
        var request = new FakeHttpRequestData("POST", path + "?code=" + Uri.EscapeDataString(Key));
        if (cookie is not null)
        {
            request.CookieList.Add(cookie);
        }

        foreach (var (name, value) in headers ?? [])
        {
            request.Headers.Add(name, value);
        }

        var form = $"{CrossSiteCheck.FormTokenField}={Uri.EscapeDataString(csrf)}" + (extra.Length > 0 ? "&" + extra : "");
        await request.Body.WriteAsync(Encoding.ASCII.GetBytes(form));
        request.Body.Position = 0;
        return Assert.IsType<FakeHttpResponseData>(await Function.Run(request, None));
    }

    /// <summary>One Forward run after each scheduled, uncancelled wake-up that is due became receivable once (as Service Bus does).</summary>
    private Task<ForwardRunReport> ForwardDueAsync()
    {
        foreach (var (message, at, sequenceNumber) in _sender.Scheduled)
        {
            if (at <= _time.GetUtcNow() && !_sender.Cancelled.Contains(sequenceNumber) && _released.Add(sequenceNumber))
            {
                _receiver.Available.Enqueue(ServiceBusModelFactory.ServiceBusReceivedMessage(
                    body: message.Body, messageId: message.MessageId, sequenceNumber: sequenceNumber, properties: message.ApplicationProperties));
            }
        }

        return _services.GetRequiredService<ForwardFunction>().ForwardDueAsync(None);
    }

    private static string Header(HttpResponseData response, string name) =>
        response.Headers.TryGetValues(name, out var values) ? string.Join(",", values) : "";

    private async Task<string> AcceptAsync(string recipient)
    {
        var result = await _services.GetRequiredService<IntakeService>().AcceptAsync(
            new IncomingMessage
            {
                Sender = "alice@sender.test",
                Recipients = [new IncomingRecipient(recipient)],
                ClientAddress = "192.0.2.10",
                HeloName = "mail.sender.test",
                Content = MessageContent.FromBytes(Encoding.ASCII.GetBytes("From: alice@sender.test\r\nSubject: hi\r\n\r\nHello.\r\n")),
            },
            None);
        return Assert.Single(Assert.IsType<IntakeResult.Accepted>(result).QueueIds);
    }
}
