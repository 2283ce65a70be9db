using System.Net;
using BackupMx.Core.Inspection;
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
        Assert.DoesNotContain(Directory.EnumerateFiles(rig.Spool.Path, "*", SearchOption.AllDirectories), f => f.Contains(gone, StringComparison.Ordinal));
        Assert.Contains(Directory.EnumerateFiles(rig.Spool.Path, "*", SearchOption.AllDirectories), f => f.Contains(kept, StringComparison.Ordinal));
    }

    [Fact]
    public async Task DeleteOrHold_MessageBeingDelivered_RefusedWithNotice_NothingChanged()
    {
        await using var rig = await AdminRig.StartAsync("leased.test", primaryUp: false);
        await rig.SpoolWithPrimaryDownAsync(1);
        var token = await MetricsTests.FormTokenAsync(rig);

        // A delivery takes the message's lease (the relay's own waits for the primary's next probe, in fake time).
        var queueId = (await ListAsync(rig)).Single().QueueId;
        var ledger = Ledger(rig);
        var record = await ledger.FindAsync("leased.test", queueId, CancellationToken.None);
        var claim = await ledger.ClaimAsync(record!, "test-delivery", rig.Time.GetUtcNow(), TimeSpan.FromMinutes(5), _ => true, CancellationToken.None);
        Assert.Equal(ClaimStatus.Claimed, claim.Status);

        using (var delete = await PostAsync(rig, $"messages/{queueId}/delete", token, confirm: true))
        {
            Assert.Equal(HttpStatusCode.SeeOther, delete.StatusCode);
            var location = delete.Headers.Location!.OriginalString;
            Assert.Equal($"/domains/leased.test/messages/{queueId}?op=delete&outcome=busy&id={queueId}", location);
            var page = await (await rig.GetAsync(location)).Content.ReadAsStringAsync();
            Assert.Contains($"<p class=\"problem\" role=\"alert\" id=\"notice\">{queueId} is being delivered right now, so it cannot be deleted yet. Nothing changed", page, StringComparison.Ordinal);
        }

        using (var hold = await PostAsync(rig, $"messages/{queueId}/hold", token))
        {
            Assert.EndsWith("outcome=busy&id=" + queueId, hold.Headers.Location!.OriginalString, StringComparison.Ordinal);
        }

        var after = await ledger.FindAsync("leased.test", queueId, CancellationToken.None);
        Assert.NotNull(after);
        Assert.Null(after.HeldAt);
        Assert.Single(await ListAsync(rig));
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
