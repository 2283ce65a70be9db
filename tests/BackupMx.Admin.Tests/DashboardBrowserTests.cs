using BackupMx.Core.Model;
using BackupMx.Core.Spool;
using Microsoft.Extensions.DependencyInjection;
using PuppeteerSharp;
using PuppeteerSharp.Input;

namespace BackupMx.Admin.Tests;

/// <summary>
/// The dashboard in a real browser: Debian's headless Chromium, driven by PuppeteerSharp over the
/// DevTools protocol. Nothing is downloaded; a missing browser fails the test with what to install.
/// </summary>
public sealed class DashboardBrowserTests
{
    private const string Domain = "example.net";

    [Fact]
    public async Task Dashboard_PrimaryDownThreeSpooled_HoldOneFlushPrimaryBack_OthersDeliveredHeldStaysUntilReleased()
    {
        await using var rig = await AdminRig.StartAsync(Domain, primaryUp: false, "--BackupMx:Admin:DashboardRefresh=00:00:01");
        await rig.SpoolWithPrimaryDownAsync(3);
        rig.Time.Advance(TimeSpan.FromMinutes(42));

        // The relay's own attempts at the primary (refused) are over: none holds a lease when the
        // operator holds or flushes, which would leave that message alone and say so (a hold would
        // wait for the lease on the fake clock, which nothing here moves). The attempt count is
        // saved with the outcome before the lease is released, so it alone does not say the attempt ended.
        var ledger = rig.Services.GetRequiredService<SpoolLedger>();
        await AdminRig.WaitUntilAsync(async () =>
        {
            var records = new List<SpoolRecord>();
            await foreach (var r in ledger.ListDomainAsync(Domain, CancellationToken.None))
            {
                records.Add(r);
            }

            return records.Count == 3 && records.All(r => r.Attempts == 1 && !r.IsLeased(rig.Time.GetUtcNow()));
        });

        await using var browser = await Puppeteer.LaunchAsync(new LaunchOptions
        {
            ExecutablePath = Chromium(),
            Headless = true,

            // Tests run as root, where Chromium's sandbox cannot start.
            Args = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        });
        await using var page = await browser.NewPageAsync();
        await page.SetViewportAsync(new ViewPortOptions { Width = 1280, Height = 800 });
        var errors = new List<string>();
        var released = false;
        page.Console += (_, e) =>
        {
            // The one expected: once released, the message is delivered while its own page is open, and
            // that page's next refresh finds it gone (404, which the page reports as a refresh failure).
            var url = e.Message.Location?.URL ?? "";
            var goneAfterRelease = released && url.Contains("/messages/", StringComparison.Ordinal) && e.Message.Text.Contains("404", StringComparison.Ordinal);
            if (e.Message.Type == ConsoleType.Error && !goneAfterRelease)
            {
                errors.Add(e.Message.Text + " " + url);
            }
        };
        page.PageError += (_, e) => errors.Add(e.Message);

        await page.GoToAsync(rig.AdminUri.ToString(), WaitUntilNavigation.Load);
        Assert.Equal("3", await Cell(page, "messages"));
        Assert.Equal("3", await Cell(page, "recipients"));
        Assert.Equal("42 min 0 s", await Cell(page, "oldest"));
        Assert.Equal("Down", await Cell(page, "primary"));
        Assert.EndsWith(" UTC", await Cell(page, "since"), StringComparison.Ordinal);

        // Keyboard: the skip link comes first, and the flush button is named after its domain.
        await page.Keyboard.PressAsync(Key.Tab);
        Assert.Equal("Skip to content", await page.EvaluateExpressionAsync<string>("document.activeElement.textContent"));
        Assert.Equal("Flush example.net", await Text(page, "#flush-example-net"));
        Assert.Equal("auto-refresh", await page.EvaluateExpressionAsync<string>("document.querySelector('label[for=auto-refresh]').control.id"));

        // A domain's messages, then one message's detail.
        await Task.WhenAll(page.WaitForNavigationAsync(), Click(page, "#open-example-net"));
        Assert.Equal(3, await page.EvaluateExpressionAsync<int>("document.querySelectorAll('#messages tbody tr').length"));
        var heldId = await page.EvaluateExpressionAsync<string>("document.querySelector('#messages tbody tr:first-child').dataset.queueId");
        var key = System.Text.RegularExpressions.Regex.Replace(heldId.ToLowerInvariant(), "[^a-z0-9]", "-");
        Assert.Equal("Hold " + heldId, await Text(page, "#hold-" + key));
        await Task.WhenAll(page.WaitForNavigationAsync(), Click(page, "#messages tbody tr:first-child a"));
        var detail = await page.EvaluateExpressionAsync<string>("document.getElementById('detail').innerText");
        Assert.Contains("bob@example.net", detail, StringComparison.Ordinal);
        Assert.Contains("alice@sender.test", detail, StringComparison.Ordinal);
        Assert.Equal("Waiting for delivery", await Text(page, "#detail [data-field=state]"));

        // Hold it from its page, with the keyboard: the page says so, and the detail shows it held.
        await page.FocusAsync("#hold-" + key);
        await Task.WhenAll(page.WaitForNavigationAsync(), page.Keyboard.PressAsync(Key.Enter));
        Assert.StartsWith($"Held {heldId}:", await Text(page, "#notice"), StringComparison.Ordinal);
        Assert.StartsWith("Held since ", await Text(page, "#detail [data-field=state]"), StringComparison.Ordinal);
        Assert.Equal("Release " + heldId, await Text(page, "#release-" + key));
        Assert.True((await rig.Inspector.ListAsync(Domain, CancellationToken.None)).Single(m => m.QueueId == heldId).HeldAt is not null);

        // The domain's list marks it held and offers release, hold, delete: the picture the documentation shows.
        await page.GoToAsync(new Uri(rig.AdminUri, "/domains/" + Domain).ToString(), WaitUntilNavigation.Load);
        Assert.Equal("Held", await Text(page, $"tr[data-queue-id=\"{heldId}\"] td[data-field=next]"));
        await SaveScreenshotAsync(page);

        // The primary is back; the operator flushes the domain, and the two others go out.
        await rig.Primary.StartAsync();
        AdminRig.OperatorActsLater(rig);
        await page.FocusAsync("#flush-example-net");
        await Task.WhenAll(page.WaitForNavigationAsync(), page.Keyboard.PressAsync(Key.Enter));
        Assert.Contains("2 message(s) are due now", await Text(page, "#notice"), StringComparison.Ordinal);

        var delivered = await rig.Primary.WaitForMessagesAsync(2, TimeSpan.FromSeconds(30));
        Assert.Equal(2, delivered.Count);

        // The page refreshes itself (every second here): the held one stays, marked held.
        await page.WaitForFunctionAsync(
            "() => document.querySelectorAll('#messages tbody tr').length === 1",
            new WaitForFunctionOptions { Timeout = 30_000 });
        Assert.Equal(heldId, await page.EvaluateExpressionAsync<string>("document.querySelector('#messages tbody tr').dataset.queueId"));
        Assert.Equal("Held", await Text(page, $"tr[data-queue-id=\"{heldId}\"] td[data-field=next]"));
        await Task.Delay(TimeSpan.FromSeconds(1));
        Assert.Equal(2, rig.Primary.Messages.Count);

        // Released, it goes out too, and the list is empty.
        released = true;
        await Task.WhenAll(page.WaitForNavigationAsync(), Click(page, "#release-" + key));
        Assert.StartsWith($"Released {heldId}:", await Text(page, "#notice"), StringComparison.Ordinal);
        delivered = await rig.Primary.WaitForMessagesAsync(3, TimeSpan.FromSeconds(30));
        Assert.Equal(["dashboard message 1", "dashboard message 2", "dashboard message 3"], delivered.Select(Subject).Order());

        await page.GoToAsync(rig.AdminUri.ToString(), WaitUntilNavigation.Load);
        await page.WaitForFunctionAsync(
            "() => document.querySelector('tr[data-domain=\"example.net\"] td[data-field=messages]')?.textContent === '0'",
            new WaitForFunctionOptions { Timeout = 30_000 });
        Assert.True(errors.Count == 0, string.Join("\n", errors));
    }

    [Fact]
    public async Task MessagePage_MessageDeliveredWhileOpen_SaysItLeftTheSpoolAndStopsRefreshing()
    {
        await using var rig = await AdminRig.StartAsync(Domain, primaryUp: false, "--BackupMx:Admin:DashboardRefresh=00:00:01");
        await rig.SpoolWithPrimaryDownAsync(1);
        var ledger = rig.Services.GetRequiredService<SpoolLedger>();
        SpoolRecord? record = null;
        await AdminRig.WaitUntilAsync(async () =>
        {
            await foreach (var r in ledger.ListDomainAsync(Domain, CancellationToken.None))
            {
                record = r;
            }

            return record is not null && !record.IsLeased(rig.Time.GetUtcNow());
        });

        await using var browser = await Puppeteer.LaunchAsync(new LaunchOptions
        {
            ExecutablePath = Chromium(),
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        });
        await using var page = await browser.NewPageAsync();
        var messageUrl = new Uri(rig.AdminUri, $"/domains/{Domain}/messages/{record!.QueueId}").ToString();
        var requests = 0;
        page.Request += (_, e) =>
        {
            if (e.Request.Url == messageUrl)
            {
                Interlocked.Increment(ref requests);
            }
        };
        var errors = new List<string>();
        page.PageError += (_, e) => errors.Add(e.Message);
        await page.GoToAsync(messageUrl, WaitUntilNavigation.Load);
        Assert.Equal("Waiting for delivery", await Text(page, "#detail [data-field=state]"));

        // The primary is back and the domain flushed: the message is delivered while its page is open.
        await rig.Primary.StartAsync();
        AdminRig.OperatorActsLater(rig);
        await rig.Services.GetRequiredService<BackupMx.Core.Monitoring.DomainFlusher>().FlushAsync(Domain, "test", CancellationToken.None);
        Assert.Single(await rig.Primary.WaitForMessagesAsync(1, TimeSpan.FromSeconds(30)));

        await page.WaitForFunctionAsync(
            "text => document.getElementById('refresh-status').textContent === text",
            new WaitForFunctionOptions { Timeout = 30_000 },
            BackupMx.Dashboard.DashboardPages.MessageGone);
        Assert.True(await page.EvaluateExpressionAsync<bool>("document.getElementById('auto-refresh').disabled && !document.getElementById('auto-refresh').checked"));

        // Refreshing every second, it would have asked again by now; it does not.
        var asked = Volatile.Read(ref requests);
        await Task.Delay(TimeSpan.FromSeconds(3));
        Assert.Equal(asked, Volatile.Read(ref requests));
        Assert.Empty(errors);
    }

    // In one evaluation: the page swaps its tables every second, which can detach an element between
    // a lookup and a separate click.
    private static Task Click(IPage page, string selector) =>
        page.EvaluateExpressionAsync($"document.querySelector('{selector}').click()");

    private static Task<string> Text(IPage page, string selector) =>
        page.EvaluateExpressionAsync<string>($"document.querySelector('{selector}').textContent.replace(/\\s+/g, ' ').trim()");

    private static Task<string> Cell(IPage page, string field) =>
        page.EvaluateExpressionAsync<string>($"document.querySelector('tr[data-domain=\"{Domain}\"] td[data-field={field}]').textContent");

    private static string Subject(BackupMx.Testing.FakeTransaction message)
    {
        var text = System.Text.Encoding.ASCII.GetString(message.Data);
        var start = text.IndexOf("Subject: ", StringComparison.Ordinal) + "Subject: ".Length;
        return text[start..text.IndexOf('\r', start)];
    }

    /// <summary>
    /// Always into the test's output folder; into docs/images as well when BACKUPMX_UPDATE_SCREENSHOTS=1
    /// (the picture the documentation shows, taken again after a change to the page).
    /// </summary>
    private static async Task SaveScreenshotAsync(IPage page)
    {
        var output = Path.Combine(AppContext.BaseDirectory, "screenshots", "dashboard.png");
        Directory.CreateDirectory(Path.GetDirectoryName(output)!);
        await page.ScreenshotAsync(output);
        var png = await File.ReadAllBytesAsync(output);
        Assert.Equal(1280, System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(16)));
        Assert.Equal(800, System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(20)));

        if (Environment.GetEnvironmentVariable("BACKUPMX_UPDATE_SCREENSHOTS") == "1")
        {
            var root = new DirectoryInfo(AppContext.BaseDirectory);
            while (root is not null && !File.Exists(Path.Combine(root.FullName, "BackupMx.Functions.sln")))
            {
                root = root.Parent;
            }

            Assert.NotNull(root);
            File.Copy(output, Path.Combine(root.FullName, "docs", "images", "dashboard.png"), overwrite: true);
        }
    }

    private static string Chromium()
    {
        var path = Environment.GetEnvironmentVariable("BACKUPMX_CHROMIUM") is { Length: > 0 } configured ? configured : "/usr/bin/chromium";
        Assert.True(File.Exists(path), $"no Chromium at {path}: install Debian's (apt-get install -y chromium; test.sh does it) or set BACKUPMX_CHROMIUM");
        return path;
    }
}
