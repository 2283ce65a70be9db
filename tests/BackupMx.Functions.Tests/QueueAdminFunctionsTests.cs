using System.Net;
using System.Text.Json;
using BackupMx.Functions.Tests.Fakes;

namespace BackupMx.Functions.Tests;

public sealed class QueueAdminFunctionsTests
{
    private static readonly CancellationToken None = CancellationToken.None;

    [Fact]
    public async Task Summary_ReturnsOneJsonLinePerDomain()
    {
        using var h = new FunctionsHarness();
        h.Core.Transport.Reachable = false;
        await h.AcceptAsync();
        await h.AcceptAsync();
        await h.AcceptAsync("carol@other.test");
        await h.Forward.ForwardDueAsync(None);
        h.Core.Time.Advance(TimeSpan.FromMinutes(2));

        var response = Assert.IsType<FakeHttpResponseData>(await h.Admin.Summary(new FakeHttpRequestData("GET", "/api/queue"), None));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.StartsWith("application/json", response.Headers.GetValues("Content-Type").Single(), StringComparison.Ordinal);
        using var json = response.ReadJson();
        var lines = json.RootElement.EnumerateArray().ToDictionary(e => e.GetProperty("domain").GetString()!);
        Assert.Equal(2, lines.Count);
        var example = lines["example.test"];
        Assert.Equal(2, example.GetProperty("messages").GetInt32());
        Assert.Equal(2, example.GetProperty("recipients").GetInt32());
        Assert.Equal(120, example.GetProperty("oldestAgeSeconds").GetDouble());
        Assert.Equal("Down", example.GetProperty("primaryState").GetString());
        Assert.Contains("connection refused", example.GetProperty("lastError").GetString(), StringComparison.Ordinal);
        Assert.Equal(1, lines["other.test"].GetProperty("messages").GetInt32());
    }

    [Fact]
    public async Task List_ConfiguredDomain_ReturnsItsMessages()
    {
        using var h = new FunctionsHarness();
        h.Core.Transport.Reachable = false;
        var first = await h.AcceptAsync();
        h.Core.Time.Advance(TimeSpan.FromSeconds(1));
        var second = await h.AcceptAsync();
        await h.AcceptAsync("carol@other.test");

        // Domain names are case-insensitive, as in RCPT.
        var response = Assert.IsType<FakeHttpResponseData>(await h.Admin.List(new FakeHttpRequestData("GET", "/api/queue/EXAMPLE.test"), "EXAMPLE.test", None));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var json = response.ReadJson();
        var messages = json.RootElement.EnumerateArray().ToList();
        Assert.Equal([first, second], messages.Select(m => m.GetProperty("queueId").GetString()));
        Assert.Equal("alice@sender.test", messages[0].GetProperty("sender").GetString());
        Assert.Equal("Relay", messages[0].GetProperty("kind").GetString());
        Assert.Equal(["bob@example.test"], messages[0].GetProperty("pendingRecipients").EnumerateArray().Select(e => e.GetString()));
    }

    [Fact]
    public async Task Flush_ConfiguredDomain_MakesItsMessagesDueAndReturnsTheCount()
    {
        using var h = new FunctionsHarness();
        h.Core.Transport.Reachable = false;
        await h.AcceptAsync();
        await h.AcceptAsync();
        await h.Forward.ForwardDueAsync(None);
        h.Core.Transport.Reachable = true;

        var response = Assert.IsType<FakeHttpResponseData>(await h.Admin.Flush(new FakeHttpRequestData("POST", "/api/queue/example.test/flush"), "example.test", None));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var json = response.ReadJson();
        Assert.Equal("example.test", json.RootElement.GetProperty("domain").GetString());
        Assert.Equal(2, json.RootElement.GetProperty("flushed").GetInt32());
        var failedAttempts = h.Core.Transport.Attempts.Count;

        // The first delivery also tells the monitor the primary is back, which may flush the domain once
        // more; how many wake-ups that adds depends on timing, but each message goes out exactly once.
        var report = await h.Forward.ForwardDueAsync(None);
        Assert.Equal(report.Received, report.Completed);
        var delivered = h.Core.Transport.Attempts.Skip(failedAttempts).Select(a => a.Request.QueueId).ToList();
        Assert.Equal(2, delivered.Count);
        Assert.Equal(2, delivered.Distinct().Count());
        Assert.Empty(await h.AllRecordsAsync());
    }

    [Theory]
    [InlineData("unknown.test")]
    [InlineData("sender.test")]
    [InlineData("")]
    public async Task ListAndFlush_DomainNotConfigured_Return404(string domain)
    {
        using var h = new FunctionsHarness();

        // A DSN queued for a sender domain is in the spool, yet the API does not expose that domain.
        h.Core.Transport.Reply = (_, _) => new BackupMx.Core.Model.SmtpReply(550, "5.1.1", "no such user");
        await h.AcceptAsync();
        await h.Forward.ForwardDueAsync(None);

        var list = Assert.IsType<FakeHttpResponseData>(await h.Admin.List(new FakeHttpRequestData("GET", "/api/queue/x"), domain, None));
        var flush = Assert.IsType<FakeHttpResponseData>(await h.Admin.Flush(new FakeHttpRequestData("POST", "/api/queue/x/flush"), domain, None));

        Assert.Equal(HttpStatusCode.NotFound, list.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, flush.StatusCode);
        using var json = flush.ReadJson();
        Assert.Equal(JsonValueKind.String, json.RootElement.GetProperty("error").ValueKind);
    }
}
