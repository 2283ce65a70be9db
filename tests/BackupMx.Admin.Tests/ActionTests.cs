using System.Net;
using BackupMx.Dashboard;
using BackupMx.Core.Inspection;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using BackupMx.Core.Spool;
using Microsoft.Extensions.DependencyInjection;

namespace BackupMx.Admin.Tests;

/// <summary>The dashboard's hold, release and delete POSTs: guarded like flush, and never racing a delivery.</summary>
public sealed class ActionTests
{
    private static readonly (string Name, string Value)[] NoHeaders = [];

    [Fact]
    public async Task Actions_CrossSiteOrWithoutFormToken_RefusedAndNothingChanged()
    {
        await using var rig = await AdminRig.StartAsync("actions.test", primaryUp: false);
        await rig.SpoolWithPrimaryDownAsync(2);
        var token = await MetricsTests.FormTokenAsync(rig);
        var messages = await ListAsync(rig);
        var (free, held) = (messages[0].QueueId, messages[1].QueueId);
        Assert.Equal(HttpStatusCode.SeeOther, (await PostAsync(rig, $"messages/{held}/hold", token)).StatusCode);
        var before = await ListAsync(rig);
        Assert.Null(before.Single(m => m.QueueId == free).HeldAt);
        Assert.NotNull(before.Single(m => m.QueueId == held).HeldAt);
        var snapshot = await SnapshotAsync(rig);

        string[] actions = [$"messages/{free}/hold", $"messages/{held}/release", $"messages/{free}/delete", $"messages/{held}/delete", "hold", "release"];
        foreach (var action in actions)
        {
            foreach (var (csrf, headers) in Forgeries(token, rig))
            {
                using var response = await PostAsync(rig, action, csrf, headers, confirm: true);
                Assert.True(response.StatusCode == HttpStatusCode.Forbidden, $"{action} with csrf '{csrf}' and {string.Join(", ", headers)}: {response.StatusCode}");
                Assert.StartsWith("refused: ", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
            }
        }

        Assert.Equal(snapshot, await SnapshotAsync(rig));

        // The same POSTs from the dashboard's own page go through.
        var own = (("Origin", rig.AdminUri.GetLeftPart(UriPartial.Authority)), ("Sec-Fetch-Site", "same-origin"));
        using (var release = await PostAsync(rig, $"messages/{held}/release", token, [own.Item1, own.Item2]))
        {
            Assert.Equal(HttpStatusCode.SeeOther, release.StatusCode);
            Assert.Equal($"/domains/actions.test/messages/{held}?op=release&outcome=done&id={held}", release.Headers.Location?.OriginalString);
        }

        Assert.All(await ListAsync(rig), m => Assert.Null(m.HeldAt));
    }

    [Fact]
    public async Task HoldAndReleaseDomain_EveryMessageChanged_PageSaysHowMany()
    {
        await using var rig = await AdminRig.StartAsync("whole.test", primaryUp: false);
        await rig.SpoolWithPrimaryDownAsync(2);
        var token = await MetricsTests.FormTokenAsync(rig);

        using (var hold = await PostAsync(rig, "hold", token))
        {
            Assert.Equal(HttpStatusCode.SeeOther, hold.StatusCode);
            var page = await (await rig.GetAsync(hold.Headers.Location!.OriginalString)).Content.ReadAsStringAsync();
            Assert.Contains("Held 2 message(s) of whole.test", page, StringComparison.Ordinal);
        }

        Assert.All(await ListAsync(rig), m => Assert.NotNull(m.HeldAt));

        using (var release = await PostAsync(rig, "release", token))
        {
            Assert.Equal(HttpStatusCode.SeeOther, release.StatusCode);
        }

        Assert.All(await ListAsync(rig), m => Assert.Null(m.HeldAt));
    }

    [Fact]
    public async Task Delete_AskedFirst_ThenConfirmed_MessageAndBodyGone()
    {
        await using var rig = await AdminRig.StartAsync("delete.test", primaryUp: false);
        await rig.SpoolWithPrimaryDownAsync(2);
        var token = await MetricsTests.FormTokenAsync(rig);
        var (gone, kept) = ((await ListAsync(rig))[0].QueueId, (await ListAsync(rig))[1].QueueId);

        // Without confirm=yes the browser is sent to the question, and nothing is deleted.
        using (var unconfirmed = await PostAsync(rig, $"messages/{gone}/delete", token))
        {
            Assert.Equal(HttpStatusCode.SeeOther, unconfirmed.StatusCode);
            Assert.Equal($"/domains/delete.test/messages/{gone}/delete", unconfirmed.Headers.Location?.OriginalString);
        }

        Assert.Equal(2, (await ListAsync(rig)).Count);
        using (var question = await rig.GetAsync($"/domains/delete.test/messages/{gone}/delete"))
        {
            question.ShouldBeOk();
            var html = await question.Content.ReadAsStringAsync();
            Assert.Contains($"<h1>Delete message {gone}?</h1>", html, StringComparison.Ordinal);
            Assert.Contains("name=\"confirm\" value=\"yes\"", html, StringComparison.Ordinal);
            Assert.Contains("This cannot be undone.", html, StringComparison.Ordinal);
        }

        using (var confirmed = await PostAsync(rig, $"messages/{gone}/delete", token, confirm: true))
        {
            Assert.Equal(HttpStatusCode.SeeOther, confirmed.StatusCode);
            var page = await (await rig.GetAsync(confirmed.Headers.Location!.OriginalString)).Content.ReadAsStringAsync();
            Assert.Contains($"Deleted {gone}: it was removed from the spool without being delivered", page, StringComparison.Ordinal);
        }

        Assert.Equal([kept], (await ListAsync(rig)).Select(m => m.QueueId));
        Assert.Null(await Ledger(rig).FindAsync("delete.test", gone, CancellationToken.None));
        // The body goes with the record, wherever the spool keeps it (small ones in its database).
        var bodies = rig.Services.GetRequiredService<IBodyStore>();
        await Assert.ThrowsAsync<BodyNotFoundException>(() => bodies.OpenReadAsync(gone, CancellationToken.None));
        await using (var body = await bodies.OpenReadAsync(kept, CancellationToken.None))
        {
            Assert.True(body.ReadByte() >= 0);
        }
    }

    [Fact]
    public async Task Hold_MessageBeingDelivered_WaitsForTheAttempt_ThenHolds()
    {
        await using var rig = await AdminRig.StartAsync("waited.test", primaryUp: false);
        await rig.SpoolWithPrimaryDownAsync(1);
        var token = await MetricsTests.FormTokenAsync(rig);
        var (queueId, claimed) = await LeaseAsync(rig);

        var post = PostAsync(rig, $"messages/{queueId}/hold", token);

        // The POST keeps asking while the lease is held: nothing is answered in the first seconds of the wait.
        await AdvanceWhileRunningAsync(rig, post, TimeSpan.FromSeconds(3));
        Assert.False(post.IsCompleted, "the hold answered while the message was still leased");

        // The delivery attempt ends (deferred: the primary is down), within the wait.
        Assert.Equal(ReleaseStatus.Deferred, (await Ledger(rig).ReleaseAsync(claimed, CancellationToken.None)).Status);
        await AdvanceWhileRunningAsync(rig, post, ActionNotice.Wait);

        using var hold = await post;
        Assert.Equal(HttpStatusCode.SeeOther, hold.StatusCode);
        var location = hold.Headers.Location!.OriginalString;
        Assert.Equal($"/domains/waited.test/messages/{queueId}?op=hold&outcome=done&id={queueId}", location);
        var page = await (await rig.GetAsync(location)).Content.ReadAsStringAsync();
        Assert.Contains($"Held {queueId}: it is not delivered", page, StringComparison.Ordinal);
        Assert.NotNull((await Ledger(rig).FindAsync("waited.test", queueId, CancellationToken.None))!.HeldAt);
    }

    [Fact]
    public async Task DeleteOrHold_MessageStillBeingDeliveredAfterTheWait_RefusedWithNotice_NothingChanged()
    {
        await using var rig = await AdminRig.StartAsync("leased.test", primaryUp: false);
        await rig.SpoolWithPrimaryDownAsync(1);
        var token = await MetricsTests.FormTokenAsync(rig);
        var (queueId, _) = await LeaseAsync(rig);

        var delete = PostAsync(rig, $"messages/{queueId}/delete", token, confirm: true);
        await AdvanceWhileRunningAsync(rig, delete, ActionNotice.Wait + TimeSpan.FromSeconds(5));
        using (var response = await delete)
        {
            Assert.Equal(HttpStatusCode.SeeOther, response.StatusCode);
            var location = response.Headers.Location!.OriginalString;
            Assert.Equal($"/domains/leased.test/messages/{queueId}?op=delete&outcome=busy&id={queueId}", location);
            var page = await (await rig.GetAsync(location)).Content.ReadAsStringAsync();
            Assert.Contains($"<p class=\"problem\" role=\"alert\" id=\"notice\">{queueId} is being delivered right now and its delivery did not end within 10 seconds, so it was not deleted. Nothing changed", page, StringComparison.Ordinal);
        }

        var hold = PostAsync(rig, $"messages/{queueId}/hold", token);
        await AdvanceWhileRunningAsync(rig, hold, ActionNotice.Wait + TimeSpan.FromSeconds(5));
        using (var response = await hold)
        {
            Assert.EndsWith("outcome=busy&id=" + queueId, response.Headers.Location!.OriginalString, StringComparison.Ordinal);
        }

        var after = await Ledger(rig).FindAsync("leased.test", queueId, CancellationToken.None);
        Assert.NotNull(after);
        Assert.Null(after.HeldAt);
        Assert.Single(await ListAsync(rig));
    }

    /// <summary>A delivery takes the only message's lease, as the relay's own does, for longer than any wait.</summary>
    private static async Task<(string QueueId, SpoolRecord Claimed)> LeaseAsync(AdminRig rig)
    {
        var queueId = (await ListAsync(rig)).Single().QueueId;
        var ledger = Ledger(rig);
        var record = await ledger.FindAsync(rig.Domain, queueId, CancellationToken.None);
        var claim = await ledger.ClaimAsync(record!, "test-delivery", rig.Time.GetUtcNow(), TimeSpan.FromMinutes(5), _ => true, CancellationToken.None);
        Assert.Equal(ClaimStatus.Claimed, claim.Status);
        return (queueId, claim.Record!);
    }

    /// <summary>
    /// Moves the fake clock on in steps of the operations' poll interval, for <paramref name="span"/> or
    /// until the request has been answered; real time passes between steps so the server can run.
    /// </summary>
    private static async Task AdvanceWhileRunningAsync(AdminRig rig, Task request, TimeSpan span)
    {
        var step = TimeSpan.FromMilliseconds(250);
        for (var moved = TimeSpan.Zero; moved < span && !request.IsCompleted; moved += step)
        {
            await Task.WhenAny(request, Task.Delay(50));
            rig.Time.Advance(step);
        }
    }

    private static SpoolLedger Ledger(AdminRig rig) => rig.Services.GetRequiredService<SpoolLedger>();

    private static async Task<string> SnapshotAsync(AdminRig rig) =>
        string.Join("\n", (await ListAsync(rig)).Select(m => $"{m.QueueId} {m.HeldAt:O} {m.NextAttemptAt:O} {m.Attempts} {string.Join(",", m.PendingRecipients)}"));

    private static async Task<IReadOnlyList<QueuedMessageView>> ListAsync(AdminRig rig) =>
        (await rig.Inspector.ListAsync(rig.Domain, CancellationToken.None)).OrderBy(m => m.QueueId, StringComparer.Ordinal).ToList();

    /// <summary>No token, a forged one, the right one from another site (by Origin, and by Sec-Fetch-Site).</summary>
    private static IEnumerable<(string? Csrf, (string, string)[] Headers)> Forgeries(string token, AdminRig rig)
    {
        yield return (null, NoHeaders);
        yield return ("forged", NoHeaders);
        yield return ("forged", [("Origin", rig.AdminUri.GetLeftPart(UriPartial.Authority))]);
        yield return (token, [("Origin", "http://evil.example")]);
        yield return (token, [("Origin", "null")]);
        yield return (token, [("Sec-Fetch-Site", "cross-site")]);
        yield return (token, [("Sec-Fetch-Site", "same-site")]);
    }

    private static Task<HttpResponseMessage> PostAsync(AdminRig rig, string action, string? csrf, (string Name, string Value)[]? headers = null, bool confirm = false)
    {
        var fields = new List<KeyValuePair<string, string>>();
        if (csrf is not null)
        {
            fields.Add(new("csrf", csrf));
        }

        if (confirm)
        {
            fields.Add(new("confirm", "yes"));
        }

        var request = new HttpRequestMessage(HttpMethod.Post, $"/domains/{rig.Domain}/{action}") { Content = new FormUrlEncodedContent(fields) };
        foreach (var (name, value) in headers ?? NoHeaders)
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        return rig.Http.SendAsync(request);
    }
}
