using System.Collections.Concurrent;
using System.Net;
using System.Text;
using System.Text.Json;
using BackupMx.Testing;

namespace BackupMx.Admin.Tests;

public sealed class NotificationTests
{
    [Fact]
    public async Task Outage_OneNoticePerOutageThenReminder_RecoveryWithCounts_NothingForDomainThatStayedUp()
    {
        await using var hook = await WebhookReceiver.StartAsync(failFirst: 1);
        await using var sink = new FakePrimary { ServerName = "mx.owners.test" };
        await sink.StartAsync();
        await using var steady = new FakePrimary();
        await steady.StartAsync();
        await using var rig = await AdminRig.StartAsync(
            "outage.example",
            primaryUp: false,
            "--BackupMx:Domains:0:NotifyAddresses:0=hostmaster@owners.test",
            "--BackupMx:Domains:1:Name=steady.example",
            $"--BackupMx:Domains:1:Primary=127.0.0.1:{steady.Port}",
            "--BackupMx:Domains:1:NotifyAddresses:0=owner@owners.test",
            $"--BackupMx:Notifications:Webhook={hook.Url}",
            "--BackupMx:Notifications:Reminder=00:30:00",
            $"--BackupMx:Bounce:SmartHost=127.0.0.1:{sink.Port}");
        await rig.SpoolWithPrimaryDownAsync(2);
        Assert.True((await SmtpSender.SendAsync(rig.SmtpPort, "alice@sender.test", ["carol@steady.example"], AdminRig.Message(9, "steady.example"))).Accepted);
        await steady.WaitForMessagesAsync(1, TimeSpan.FromSeconds(30));

        // The notice is due 5 minutes into the outage; ten more minutes of probes send no second one.
        // (The webhook's first answer is a 500, so it is retried once.)
        await AdvanceUntilAsync(rig, () => hook.Notices.Count >= 1 && sink.Messages.Count >= 1);
        for (var i = 0; i < 20; i++)
        {
            rig.Time.Advance(TimeSpan.FromSeconds(30));
            await Task.Delay(100);
        }

        var mail = Assert.Single(sink.Messages);
        var down = Assert.Single(hook.Notices);
        Assert.Equal("down", down.GetProperty("event").GetString());
        Assert.Equal("outage.example", down.GetProperty("domain").GetString());
        Assert.Equal(2, down.GetProperty("waiting").GetInt32());
        Assert.Contains("outage.example has not been reachable", down.GetProperty("text").GetString(), StringComparison.Ordinal);
        Assert.Equal(2, hook.Requests);

        Assert.Equal("postmaster@backup.test", mail.MailFrom);
        Assert.Equal(["hostmaster@owners.test"], mail.AcceptedRecipients);
        var text = Encoding.ASCII.GetString(mail.Data);
        Assert.Contains("Auto-Submitted: auto-generated\r\n", text, StringComparison.Ordinal);
        Assert.Contains("Subject: Mail for outage.example is being held", text, StringComparison.Ordinal);

        // Still down half an hour after the notice: one reminder (daily by default).
        await AdvanceUntilAsync(rig, () => hook.Notices.Count >= 2 && sink.Messages.Count >= 2);
        var reminder = hook.Notices.ToArray()[1];
        Assert.Equal("reminder", reminder.GetProperty("event").GetString());
        Assert.Equal(2, reminder.GetProperty("waiting").GetInt32());

        // The primary is back: the next probe flushes, and the next look reports the backlog delivered.
        await rig.Primary.StartAsync();
        await AdvanceUntilAsync(rig, () => hook.Notices.Count >= 3 && sink.Messages.Count >= 3);
        await rig.Primary.WaitForMessagesAsync(2, TimeSpan.FromSeconds(30));
        var recovered = hook.Notices.ToArray()[2];
        Assert.Equal("recovered", recovered.GetProperty("event").GetString());
        Assert.Equal(2, recovered.GetProperty("delivered").GetInt32());
        // At least the 5 minutes to the notice and the 30 to the reminder, all of which the messages waited.
        Assert.InRange(recovered.GetProperty("longestWaitSeconds").GetInt64(), 35 * 60, 3 * 60 * 60);
        Assert.Contains("delivered the 2 message(s)", recovered.GetProperty("text").GetString(), StringComparison.Ordinal);

        // Nothing about the domain whose primary stayed up, by either channel.
        Assert.DoesNotContain(hook.Notices, n => n.GetProperty("domain").GetString() == "steady.example");
        Assert.DoesNotContain(sink.Messages, m => m.AcceptedRecipients.Contains("owner@owners.test"));
        Assert.Equal(3, sink.Messages.Count);
        Assert.Equal(3, hook.Notices.Count);
    }

    [Fact]
    public async Task Restart_DuringNotifiedOutage_NoSecondDownNotice_RecoveryStillCountsTheBacklog()
    {
        await using var hook = await WebhookReceiver.StartAsync(failFirst: 0);
        await using var primary = new FakePrimary(port: FreePort.Next());
        using var spool = new TempFolder();
        string[] args = [$"--BackupMx:Domains:0:Primary=127.0.0.1:{primary.Port}", $"--BackupMx:Spool:Path={spool.Path}", $"--BackupMx:Notifications:Webhook={hook.Url}"];
        var stateFile = Path.Combine(spool.Path, "outage-notices.json");

        await using (var first = await AdminRig.StartAsync("restart.example", primaryUp: false, args))
        {
            await first.SpoolWithPrimaryDownAsync(2);
            await AdvanceUntilAsync(first, () => hook.Notices.Count >= 1);
            await AdminRig.WaitUntilAsync(() => Task.FromResult(File.Exists(stateFile) && File.ReadAllText(stateFile).Contains("restart.example", StringComparison.Ordinal)));
        }

        Assert.Equal("down", Assert.Single(hook.Notices).GetProperty("event").GetString());

        // The same spool, the primary still down: twenty minutes of probes and looks send nothing more.
        await using var second = await AdminRig.StartAsync("restart.example", primaryUp: false, args);
        for (var i = 0; i < 40; i++)
        {
            second.Time.Advance(TimeSpan.FromSeconds(30));
            await Task.Delay(100);
        }

        Assert.Single(hook.Notices);

        // The primary is back: the recovery notice counts the messages of the outage, from before the restart.
        await primary.StartAsync();
        await AdvanceUntilAsync(second, () => hook.Notices.Count >= 2);
        await primary.WaitForMessagesAsync(2, TimeSpan.FromSeconds(30));
        var recovered = hook.Notices.ToArray()[1];
        Assert.Equal("recovered", recovered.GetProperty("event").GetString());
        Assert.Equal(2, recovered.GetProperty("delivered").GetInt32());
        Assert.Equal(2, hook.Notices.Count);
        Assert.DoesNotContain("restart.example", await File.ReadAllTextAsync(stateFile), StringComparison.Ordinal);
    }

    [Fact]
    public void NoticeStateFile_SavedThenLoaded_OutagesAndPendingNoticesKept()
    {
        using var spool = new TempFolder();
        var since = new DateTimeOffset(2026, 12, 7, 5, 0, 0, TimeSpan.Zero);
        var notice = BackupMx.Core.Notifications.OutageNotice.Create(BackupMx.Core.Notifications.OutageEvent.Down, "kept.example", since, 3, 0, TimeSpan.Zero, "mx2.test");
        var state = new BackupMx.Core.Notifications.NoticeState();
        state.Outages["kept.example"] = new BackupMx.Core.Notifications.OutageState { Since = since, LastNotice = since.AddMinutes(5), Delivered = 1, LongestWait = TimeSpan.FromMinutes(7) };
        state.Outages["kept.example"].Waiting["Q1"] = since.AddMinutes(-1);
        state.Pending.Add(new BackupMx.Core.Notifications.PendingState(notice, "Email", ["owner@owners.test"], 2, since.AddMinutes(6)));
        new BackupMx.Admin.Notifications.NoticeStateFile(spool.Path).Save(state);

        var loaded = new BackupMx.Admin.Notifications.NoticeStateFile(spool.Path).Load();

        var outage = loaded.Outages["kept.example"];
        Assert.Equal((since, since.AddMinutes(5), 1, TimeSpan.FromMinutes(7)), (outage.Since, outage.LastNotice, outage.Delivered, outage.LongestWait));
        Assert.Equal(since.AddMinutes(-1), outage.Waiting["Q1"]);
        var pending = Assert.Single(loaded.Pending);
        Assert.Equal(notice, pending.Notice);
        Assert.Equal(("Email", 2, since.AddMinutes(6)), (pending.Channel, pending.Attempts, pending.NotBefore));
        Assert.Equal(["owner@owners.test"], pending.Recipients);
    }

    // Fake time moves only when the test moves it, and the notifier's loop must get to run between
    // steps: half a minute at a time, with a moment of real time after each.
    private static async Task AdvanceUntilAsync(AdminRig rig, Func<bool> condition)
    {
        for (var i = 0; i < 240 && !condition(); i++)
        {
            rig.Time.Advance(TimeSpan.FromSeconds(30));
            await Task.Delay(150);
        }

        Assert.True(condition(), "not reached within two hours of fake time");
    }

    [Fact]
    public async Task Start_NotifyAddressInTheAffectedDomain_FailsNamingTheKey()
    {
        var error = await Assert.ThrowsAsync<Microsoft.Extensions.Options.OptionsValidationException>(() =>
            AdminRig.StartAsync("self.example", primaryUp: false, "--BackupMx:Domains:0:NotifyAddresses:0=admin@self.example"));

        Assert.Contains("BackupMx:Domains:0:NotifyAddresses:0 'admin@self.example' is an address of self.example", error.Message, StringComparison.Ordinal);
    }

    /// <summary>A local webhook endpoint that keeps every JSON body it accepted; the first answers can be 500s.</summary>
    private sealed class WebhookReceiver : IAsyncDisposable
    {
        private readonly HttpListener _listener = new();
        private readonly ConcurrentQueue<JsonElement> _notices = new();
        private readonly int _failFirst;
        private Task? _loop;
        private int _requests;

        private WebhookReceiver(int failFirst) => _failFirst = failFirst;

        public string Url { get; private set; } = "";

        public IReadOnlyCollection<JsonElement> Notices => _notices;

        public int Requests => Volatile.Read(ref _requests);

        public static Task<WebhookReceiver> StartAsync(int failFirst)
        {
            var receiver = new WebhookReceiver(failFirst);
            receiver.Url = $"http://127.0.0.1:{FreePort.Next()}/hook/";
            receiver._listener.Prefixes.Add(receiver.Url);
            receiver._listener.Start();
            receiver._loop = receiver.RunAsync();
            return Task.FromResult(receiver);
        }

        private async Task RunAsync()
        {
            while (_listener.IsListening)
            {
                HttpListenerContext context;
                try
                {
                    context = await _listener.GetContextAsync();
                }
                catch (Exception ex) when (ex is HttpListenerException or ObjectDisposedException)
                {
                    return;
                }

                var n = Interlocked.Increment(ref _requests);
                using var reader = new StreamReader(context.Request.InputStream, Encoding.UTF8);
                var body = await reader.ReadToEndAsync();
                if (n <= _failFirst)
                {
                    context.Response.StatusCode = 500;
                }
                else
                {
                    _notices.Enqueue(JsonDocument.Parse(body).RootElement.Clone());
                    context.Response.StatusCode = 204;
                }

                context.Response.Close();
            }
        }

        public async ValueTask DisposeAsync()
        {
            _listener.Stop();
            _listener.Close();
            if (_loop is not null)
            {
                await _loop;
            }
        }
    }
}
