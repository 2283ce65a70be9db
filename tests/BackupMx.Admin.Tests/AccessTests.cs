using System.Net;
using System.Net.Sockets;
using BackupMx.Core.Hosting;
using BackupMx.Core.Spool;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace BackupMx.Admin.Tests;

public sealed class AccessTests
{
    private const string Token = "s3cret-admin-token-0123";

    [Fact]
    public async Task Token_MissingOrWrong_Refused_RightBearerOrSignInCookieServed()
    {
        await using var rig = await AdminRig.StartAsync("token.test", primaryUp: true, $"--BackupMx:Admin:Token={Token}");

        using (var none = await rig.GetAsync("/metrics"))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, none.StatusCode);
            Assert.Equal("Bearer", none.Headers.WwwAuthenticate.Single().Scheme);
            Assert.DoesNotContain("backupmx_", await none.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        using (var wrong = await rig.GetAsync("/metrics", bearer: Token + "x"))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
        }

        using (var wrongDashboard = await rig.GetAsync("/domains/token.test", bearer: "not-the-token-at-all"))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, wrongDashboard.StatusCode);
        }

        using (var right = await rig.GetAsync("/metrics", bearer: Token))
        {
            right.ShouldBeOk();
            Assert.Contains("backupmx_", await right.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        // Probes stay anonymous, and then say nothing but their verdict.
        using (var probe = await rig.GetAsync("/readyz"))
        {
            probe.ShouldBeOk();
            Assert.Equal("Healthy\n", await probe.Content.ReadAsStringAsync());
        }

        // A browser is sent to the sign-in form, and the cookie it gets opens the dashboard.
        using var page = new HttpRequestMessage(HttpMethod.Get, "/");
        page.Headers.Accept.ParseAdd("text/html");
        using (var redirect = await rig.Http.SendAsync(page))
        {
            Assert.Equal(HttpStatusCode.Redirect, redirect.StatusCode);
            Assert.Equal("/login", redirect.Headers.Location?.OriginalString);
        }

        var login = await (await rig.GetAsync("/login")).Content.ReadAsStringAsync();
        var csrf = System.Text.RegularExpressions.Regex.Match(login, "name=\"csrf\" value=\"([^\"]+)\"").Groups[1].Value;
        using (var failed = await rig.Http.PostAsync("/login", new FormUrlEncodedContent([new("csrf", csrf), new("token", "guess-guess-guess")])))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, failed.StatusCode);
            Assert.False(failed.Headers.Contains("Set-Cookie"));
        }

        string cookie;
        using (var signedIn = await rig.Http.PostAsync("/login", new FormUrlEncodedContent([new("csrf", csrf), new("token", Token)])))
        {
            Assert.Equal(HttpStatusCode.SeeOther, signedIn.StatusCode);
            cookie = signedIn.Headers.GetValues("Set-Cookie").Single();
            Assert.Contains("httponly", cookie, StringComparison.OrdinalIgnoreCase);
            Assert.Contains("samesite=strict", cookie, StringComparison.OrdinalIgnoreCase);
        }

        using var withCookie = new HttpRequestMessage(HttpMethod.Get, "/");
        withCookie.Headers.Add("Cookie", cookie.Split(';')[0]);
        using var dashboard = await rig.Http.SendAsync(withCookie);
        dashboard.ShouldBeOk();
        Assert.Contains("<td data-field=\"messages\">", (await dashboard.Content.ReadAsStringAsync()).Replace(" class=\"num\"", "", StringComparison.Ordinal), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Start_NonLoopbackEndpointWithoutToken_FailsNamingTheKey()
    {
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() =>
            AdminRig.StartAsync("open.test", primaryUp: false, $"--BackupMx:Admin:Endpoint=0.0.0.0:{BackupMx.Testing.FreePort.Next()}"));

        Assert.Contains("BackupMx:Admin:Token is required", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Start_EndpointPortTaken_FailsNamingTheKey()
    {
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var port = ((IPEndPoint)taken.LocalEndpoint).Port;

        var error = await Assert.ThrowsAsync<StartupException>(() =>
            AdminRig.StartAsync("taken.test", primaryUp: false, $"--BackupMx:Admin:Endpoint=127.0.0.1:{port}"));

        Assert.Contains($"BackupMx:Admin:Endpoint 127.0.0.1:{port}", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Start_EndpointEmpty_NothingListens()
    {
        await using var rig = await AdminRig.StartAsync("off.test", primaryUp: false, "--BackupMx:Admin:Endpoint=");

        await Assert.ThrowsAsync<HttpRequestException>(() => rig.GetAsync("/healthz"));
    }

    [Fact]
    public async Task Flush_CrossSiteOrWithoutFormToken_RefusedAndNothingFlushed()
    {
        await using var rig = await AdminRig.StartAsync("csrf.test", primaryUp: false);
        await rig.SpoolWithPrimaryDownAsync(1);
        var before = (await rig.Inspector.ListAsync(rig.Domain, CancellationToken.None)).Single().NextAttemptAt;
        var token = await MetricsTests.FormTokenAsync(rig);

        Assert.Equal(HttpStatusCode.Forbidden, await PostFlushAsync(rig, csrf: null));
        Assert.Equal(HttpStatusCode.Forbidden, await PostFlushAsync(rig, csrf: "forged"));
        Assert.Equal(HttpStatusCode.Forbidden, await PostFlushAsync(rig, token, ("Origin", "http://evil.example")));
        Assert.Equal(HttpStatusCode.Forbidden, await PostFlushAsync(rig, token, ("Sec-Fetch-Site", "cross-site")));

        // A page of another name that resolves to 127.0.0.1 (DNS rebinding) reads nothing.
        using (var rebound = new HttpRequestMessage(HttpMethod.Get, "/"))
        {
            rebound.Headers.Host = "evil.example";
            Assert.Equal(HttpStatusCode.Forbidden, (await rig.Http.SendAsync(rebound)).StatusCode);
        }

        Assert.Equal(before, (await rig.Inspector.ListAsync(rig.Domain, CancellationToken.None)).Single().NextAttemptAt);

        AdminRig.OperatorActsLater(rig);
        Assert.Equal(HttpStatusCode.SeeOther, await PostFlushAsync(rig, token, ("Origin", rig.AdminUri.GetLeftPart(UriPartial.Authority)), ("Sec-Fetch-Site", "same-origin")));
        // Flushed: due at once, and the relay (woken by the flush) tries it again well before its old retry time.
        await AdminRig.WaitUntilAsync(async () =>
        {
            var view = (await rig.Inspector.ListAsync(rig.Domain, CancellationToken.None)).Single();
            var record = await rig.Services.GetRequiredService<SpoolLedger>().FindAsync(rig.Domain, view.QueueId, CancellationToken.None);
            return view.NextAttemptAt < before || record?.LastAttemptAt is not null;
        });
    }

    private static async Task<HttpStatusCode> PostFlushAsync(AdminRig rig, string? csrf, params (string Name, string Value)[] headers)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/domains/{rig.Domain}/flush")
        {
            Content = new FormUrlEncodedContent(csrf is null ? [] : [new KeyValuePair<string, string>("csrf", csrf)]),
        };
        foreach (var (name, value) in headers)
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        using var response = await rig.Http.SendAsync(request);
        return response.StatusCode;
    }
}
