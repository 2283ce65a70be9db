using System.Net;
using System.Text.Json;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using BackupMx.Core.Spool;
using BackupMx.Functions.Tests.Fakes;

namespace BackupMx.Functions.Tests;

public sealed class MessageAdminFunctionsTests
{
    private static readonly CancellationToken None = CancellationToken.None;

    [Fact]
    public async Task Show_QueuedMessage_ReturnsEnvelopeRecipientsScheduleAndHeaders()
    {
        using var h = new FunctionsHarness();
        h.Core.Transport.Reachable = false;
        var id = await h.AcceptAsync();
        await h.Forward.ForwardDueAsync(None);

        var response = Assert.IsType<FakeHttpResponseData>(await h.Messages.Show(new FakeHttpRequestData("GET", $"/api/messages/{id}"), id, None));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var json = response.ReadJson();
        var root = json.RootElement;
        Assert.Equal(id, root.GetProperty("queueId").GetString());
        Assert.Equal("alice@sender.test", root.GetProperty("sender").GetString());
        var recipient = root.GetProperty("recipients")[0];
        Assert.Equal("bob@example.test", recipient.GetProperty("address").GetString());
        Assert.Equal("Pending", recipient.GetProperty("status").GetString());
        Assert.Equal(1, root.GetProperty("attempts").GetInt32());
        Assert.Contains("connection refused", root.GetProperty("lastError").GetString(), StringComparison.Ordinal);
        var attempt = Assert.Single(root.GetProperty("attemptHistory").EnumerateArray());
        Assert.Contains("connection refused", attempt.GetProperty("reply").GetString(), StringComparison.Ordinal);
        Assert.Equal(1, attempt.GetProperty("deferred").GetInt32());
        Assert.False(root.GetProperty("hold").GetProperty("held").GetBoolean());
        Assert.Contains("Subject: hello\n", root.GetProperty("headers").GetString(), StringComparison.Ordinal);
        Assert.DoesNotContain("Hi Bob.", root.GetProperty("headers").GetString(), StringComparison.Ordinal);

        var whole = Assert.IsType<FakeHttpResponseData>(await h.Messages.Show(new FakeHttpRequestData("GET", $"/api/messages/{id}?body=true"), id, None));
        using var wholeJson = whole.ReadJson();
        Assert.Contains("Hi Bob.", wholeJson.RootElement.GetProperty("body").GetString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("0000000000NOSUCHID")]
    [InlineData("../etc")]
    public async Task Operations_UnknownMessage_Return404(string id)
    {
        using var h = new FunctionsHarness();
        await h.AcceptAsync();

        foreach (var response in new[]
        {
            await h.Messages.Show(new FakeHttpRequestData("GET", "/api/messages/x"), id, None),
            await h.Messages.Hold(new FakeHttpRequestData("POST", "/api/messages/x/hold"), id, None),
            await h.Messages.Release(new FakeHttpRequestData("POST", "/api/messages/x/release"), id, None),
            await h.Messages.Delete(new FakeHttpRequestData("DELETE", "/api/messages/x"), id, None),
        })
        {
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        }
    }

    [Fact]
    public async Task HoldAndRelease_DueMessage_IsNotDeliveredUntilReleased()
    {
        using var h = new FunctionsHarness();
        var id = await h.AcceptAsync();

        var hold = Assert.IsType<FakeHttpResponseData>(await h.Messages.Hold(new FakeHttpRequestData("POST", $"/api/messages/{id}/hold"), id, None));
        Assert.Equal(HttpStatusCode.OK, hold.StatusCode);
        using (var json = hold.ReadJson())
        {
            Assert.Equal("held", json.RootElement.GetProperty("outcome").GetString());
        }

        await h.Forward.ForwardDueAsync(None);
        h.Core.Time.Advance(TimeSpan.FromHours(1));
        await h.Forward.ForwardDueAsync(None);
        Assert.Empty(h.Core.Transport.Attempts);

        var release = Assert.IsType<FakeHttpResponseData>(await h.Messages.Release(new FakeHttpRequestData("POST", $"/api/messages/{id}/release"), id, None));
        Assert.Equal(HttpStatusCode.OK, release.StatusCode);
        await h.Forward.ForwardDueAsync(None);
        Assert.Equal([id], h.Core.Transport.Attempts.Select(a => a.Request.QueueId));
        Assert.Empty(await h.AllRecordsAsync());
    }

    [Fact]
    public async Task Delete_WithBounce_QueuesADsnToTheSenderAndRemovesTheMessage()
    {
        using var h = new FunctionsHarness();
        h.Core.Transport.Reachable = false;
        var id = await h.AcceptAsync();

        var response = Assert.IsType<FakeHttpResponseData>(await h.Messages.Delete(new FakeHttpRequestData("DELETE", $"/api/messages/{id}?bounce=true"), id, None));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var json = response.ReadJson();
        Assert.Equal("deleted", json.RootElement.GetProperty("outcome").GetString());
        var dsnId = json.RootElement.GetProperty("dsnQueueId").GetString();
        var dsn = Assert.Single(await h.AllRecordsAsync());
        Assert.Equal((dsnId, MessageKind.Dsn, "alice@sender.test"), (dsn.QueueId, dsn.Kind, dsn.Recipients[0].Address));
        await Assert.ThrowsAnyAsync<BodyNotFoundException>(() => h.Core.Bodies.OpenReadAsync(id, None));
    }

    [Fact]
    public async Task Delete_WithoutBounce_RemovesSilently()
    {
        using var h = new FunctionsHarness();
        var id = await h.AcceptAsync();

        var response = Assert.IsType<FakeHttpResponseData>(await h.Messages.Delete(new FakeHttpRequestData("DELETE", $"/api/messages/{id}"), id, None));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Empty(await h.AllRecordsAsync());
    }

    [Fact]
    public async Task DeleteAndHold_MessageBeingDelivered_Return409AndChangeNothing()
    {
        using var h = new FunctionsHarness();
        var id = await h.AcceptAsync();
        var record = Assert.Single(await h.AllRecordsAsync());
        var claim = await h.Core.Get<SpoolLedger>().ClaimAsync(record, "worker-1", h.Core.Time.GetUtcNow(), TimeSpan.FromMinutes(15), _ => true, None);
        Assert.Equal(ClaimStatus.Claimed, claim.Status);

        var delete = await h.Messages.Delete(new FakeHttpRequestData("DELETE", $"/api/messages/{id}?bounce=true&wait=0"), id, None);
        var hold = await h.Messages.Hold(new FakeHttpRequestData("POST", $"/api/messages/{id}/hold?wait=0"), id, None);

        Assert.Equal(HttpStatusCode.Conflict, delete.StatusCode);
        Assert.Equal(HttpStatusCode.Conflict, hold.StatusCode);
        var kept = Assert.Single(await h.AllRecordsAsync());
        Assert.Null(kept.HeldAt);
        Assert.Equal("worker-1", kept.LeaseOwner);
    }

    [Fact]
    public async Task HoldDomain_ConfiguredDomain_HoldsEachMessage_UnknownDomainIs404()
    {
        using var h = new FunctionsHarness();
        await h.AcceptAsync();
        await h.AcceptAsync();

        var response = Assert.IsType<FakeHttpResponseData>(await h.Messages.HoldDomain(new FakeHttpRequestData("POST", "/api/queue/example.test/hold"), "EXAMPLE.test", None));
        var unknown = await h.Messages.ReleaseDomain(new FakeHttpRequestData("POST", "/api/queue/unknown.test/release"), "unknown.test", None);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var json = response.ReadJson();
        Assert.Equal(["held", "held"], json.RootElement.GetProperty("messages").EnumerateArray().Select(m => m.GetProperty("outcome").GetString()));
        Assert.All(await h.AllRecordsAsync(), r => Assert.NotNull(r.HeldAt));
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
    }
}
