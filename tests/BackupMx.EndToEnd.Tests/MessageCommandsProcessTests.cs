using System.Diagnostics;
using System.Text;
using System.Text.Json;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using BackupMx.Local;
using BackupMx.Testing;
using BackupMx.Testing.Contracts;

namespace BackupMx.EndToEnd.Tests;

/// <summary>
/// <c>show</c>, <c>hold</c>, <c>release</c> and <c>delete</c> as processes: over a spool whose relay is
/// stopped (records written by the test), and beside a running relay with a fake primary.
/// </summary>
[Collection(EndToEndCollection.Name)]
public sealed class MessageCommandsProcessTests : IDisposable
{
    private const string Headers = "From: alice@sender.test\r\nTo: user1@example.test\r\nSubject: stuck one\r\n";
    private const string Text = "the body line\r\n";

    private readonly TempFolder _spool = new();

    public void Dispose() => _spool.Dispose();

    [Fact]
    public async Task Show_StoppedRelay_PrintsEnvelopeRecipientsScheduleAndHeaders()
    {
        var record = SpoolRecords.Sample().WithRecipient(0, r => r with { LastReply = SmtpReply.Parse(451, "4.3.0 try later"), RemoteHost = "mx1.example.test" }) with
        {
            Attempts = 2,
            LastError = "451 4.3.0 try later",
            LastAttemptAt = SpoolRecords.T0.AddMinutes(10),
            AttemptHistory =
            [
                new DeliveryAttempt { At = SpoolRecords.T0.AddMinutes(5), Reply = "421 4.4.0 connection refused", Deferred = 2 },
                new DeliveryAttempt { At = SpoolRecords.T0.AddMinutes(10), Host = "mx1.example.test", Reply = "451 4.3.0 try later", Deferred = 2 },
            ],
        };
        await AddAsync(record);

        var run = await RunAsync(["show", record.QueueId]);

        Assert.True(run.ExitCode == 0, run.Error);
        Assert.Contains($"queue id:   {record.QueueId} (Relay, 1234 bytes)", run.Output, StringComparison.Ordinal);
        Assert.Contains("envelope:   RET=HDRS ENVID=env+1=x BODY=8BITMIME SIZE=1234 SMTPUTF8", run.Output, StringComparison.Ordinal);
        Assert.Contains("  <user1@example.test> Pending  NOTIFY=FAILURE,DELAY ORCPT=rfc822;User1@example.test", run.Output, StringComparison.Ordinal);
        Assert.Contains("    last reply: 451 4.3.0 try later from mx1.example.test", run.Output, StringComparison.Ordinal);
        Assert.Contains("attempts:   2 failed since arrival or the last flush; last 2026-11-27 12:10:00Z: 451 4.3.0 try later", run.Output, StringComparison.Ordinal);
        Assert.Contains(
            "history:    (latest attempts, oldest first)\n"
                + "  2026-11-27 12:05:00Z  (no host)  421 4.4.0 connection refused  (0 delivered, 0 failed, 2 deferred)\n"
                + "  2026-11-27 12:10:00Z  mx1.example.test  451 4.3.0 try later  (0 delivered, 0 failed, 2 deferred)\n",
            run.Output,
            StringComparison.Ordinal);
        Assert.Contains("hold:       not held", run.Output, StringComparison.Ordinal);
        Assert.Contains("next:       2026-11-27 12:00:00Z", run.Output, StringComparison.Ordinal);
        Assert.Contains("Subject: stuck one\n", run.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("the body line", run.Output, StringComparison.Ordinal);

        var body = await RunAsync(["show", record.QueueId, "--body"]);
        Assert.True(body.ExitCode == 0, body.Error);
        Assert.Contains("the body line", body.Output, StringComparison.Ordinal);

        var json = await RunAsync(["show", record.QueueId, "--json"]);
        Assert.True(json.ExitCode == 0, json.Error);
        using var doc = JsonDocument.Parse(json.Output);
        Assert.Equal(1, doc.RootElement.GetProperty("schema").GetInt32());
        var message = doc.RootElement.GetProperty("message");
        Assert.Equal(record.QueueId, message.GetProperty("queueId").GetString());
        Assert.Equal("HDRS", message.GetProperty("envelope").GetProperty("ret").GetString());
        Assert.Equal("env+1=x", message.GetProperty("envelope").GetProperty("envelopeId").GetString());
        var first = message.GetProperty("recipients")[0];
        Assert.Equal("Pending", first.GetProperty("status").GetString());
        Assert.Equal("rfc822;User1@example.test", first.GetProperty("originalRecipient").GetString());
        Assert.Equal("451 4.3.0 try later", first.GetProperty("lastReply").GetString());
        Assert.False(message.GetProperty("hold").GetProperty("held").GetBoolean());
        Assert.StartsWith("From: alice@sender.test\n", message.GetProperty("headers").GetString(), StringComparison.Ordinal);
        var history = message.GetProperty("attemptHistory");
        Assert.Equal(2, history.GetArrayLength());
        Assert.Equal(JsonValueKind.Null, history[0].GetProperty("host").ValueKind);
        Assert.Equal("mx1.example.test", history[1].GetProperty("host").GetString());
        Assert.Equal("451 4.3.0 try later", history[1].GetProperty("reply").GetString());
        Assert.Equal(SpoolRecords.T0.AddMinutes(10), history[1].GetProperty("at").GetDateTimeOffset());
        Assert.Equal(2, history[1].GetProperty("deferred").GetInt32());
    }

    [Fact]
    public async Task Show_RunningRelay_MessageThatFailedTwiceAgainstA451Primary_PrintsBothAttempts()
    {
        await using var primary = new FakePrimary { DataReply = new FakeReply(451, "4.3.0 mailbox busy, try later") };
        await primary.StartAsync();
        var now = DateTimeOffset.UtcNow;
        var record = SpoolRecords.Sample() with { QueueId = QueueId.New(now), ReceivedAt = now, ExpiresAt = now.AddDays(5), NextAttemptAt = now };
        await AddAsync(record);

        // The first retry a second later, the next one an hour after that: two attempts, then a wait.
        var smtpPort = FreePort.Next();
        await using var relay = new ServerProcess(
            Path.Combine(_spool.Path, "relay.log"),
            [.. Settings(_spool.Path, primary.Port), $"--BackupMx:Smtp:Endpoints:0=127.0.0.1:{smtpPort}", "--BackupMx:Delivery:RetryIntervals:0=00:00:01", "--BackupMx:Delivery:RetryIntervals:1=01:00:00"]);
        await relay.StartAsync(smtpPort, TimeSpan.FromSeconds(90));

        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (primary.Commands.Count(c => c.StartsWith("DATA", StringComparison.OrdinalIgnoreCase)) < 2)
        {
            Assert.True(DateTime.UtcNow < deadline, "the relay did not try the primary twice within 60 s");
            await Task.Delay(200);
        }

        (int ExitCode, string Output, string Error) shown;
        do
        {
            shown = await RunAsync(["show", record.QueueId]);
            Assert.True(shown.ExitCode == 0, shown.Error);
        }
        while (!shown.Output.Contains("2 failed since arrival", StringComparison.Ordinal) && DateTime.UtcNow < deadline);

        var attempts = System.Text.RegularExpressions.Regex.Matches(
            shown.Output,
            @"^  \S+ \S+Z  127\.0\.0\.1  451 4\.3\.0 mailbox busy, try later  \(0 delivered, 0 failed, 2 deferred\)$",
            System.Text.RegularExpressions.RegexOptions.Multiline);
        // Every attempt the primary saw is in the history. The relay's first probe finds the primary up
        // and flushes the domain; if that lands during or after the first attempt, it is tried once more
        // with its retry count reset, so the primary may have seen three.
        var seen = primary.Commands.Count(c => c.StartsWith("DATA", StringComparison.OrdinalIgnoreCase));
        Assert.True(attempts.Count == seen && seen >= 2, $"{seen} attempts seen by the primary\n{shown.Output}");
        Assert.Contains("attempts:   2 failed since arrival or the last flush", shown.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Commands_UnknownIdUsageAndNoSpool_ExitWithTheirCodes()
    {
        await AddAsync(SpoolRecords.Sample());
        foreach (var command in new[] { "show", "hold", "release", "delete" })
        {
            var missing = await RunAsync([command, "0000000000NOSUCHID"]);
            Assert.Equal(1, missing.ExitCode);
            Assert.Contains("no message 0000000000NOSUCHID in the spool", missing.Error, StringComparison.Ordinal);

            var usage = await RunAsync([command]);
            Assert.Equal(64, usage.ExitCode);
            Assert.StartsWith("usage: ", usage.Error, StringComparison.Ordinal);

            using var empty = new TempFolder();
            var noSpool = await RunAsync([command, "0000000000NOSUCHID"], empty.Path);
            Assert.Equal(66, noSpool.ExitCode);
            Assert.Empty(Directory.EnumerateFileSystemEntries(empty.Path));
        }

        Assert.Equal(64, (await RunAsync(["show", "example.test"])).ExitCode);
        Assert.Equal(64, (await RunAsync(["hold", "x", "--bounce"])).ExitCode);
        Assert.Equal(64, (await RunAsync(["delete", "x", "--wait=soon"])).ExitCode);
        Assert.Equal(67, (await RunAsync(["hold", "nosuch.test"])).ExitCode);
    }

    [Fact]
    public async Task HoldAndRelease_PastExpiry_HoldsThenReleasesWithOneMoreDay()
    {
        // The sample expired long ago: held, it is kept; released, it gets one more day.
        var record = SpoolRecords.Sample();
        await AddAsync(record);

        var hold = await RunAsync(["hold", record.QueueId, "--json"]);
        Assert.True(hold.ExitCode == 0, hold.Error);
        using (var doc = JsonDocument.Parse(hold.Output))
        {
            Assert.Equal("held", doc.RootElement.GetProperty("outcome").GetString());
            Assert.True(doc.RootElement.GetProperty("held").GetBoolean());
        }

        var again = await RunAsync(["hold", record.QueueId]);
        Assert.Equal((0, $"{record.QueueId} was already held"), (again.ExitCode, again.Output.Trim()));

        var shown = await RunAsync(["show", record.QueueId]);
        Assert.Matches(@"hold:       held since \S+ \S+Z; its expiry has passed, a release gives it one more day", shown.Output);
        Assert.Contains("next:       - (held)", shown.Output, StringComparison.Ordinal);

        var release = await RunAsync(["release", record.QueueId]);
        Assert.True(release.ExitCode == 0, release.Error);
        Assert.Matches($@"^{record.QueueId} released: due now, expires \S+ \S+Z \(released after expiry: one more day\)$", release.Output.Trim());

        var after = await RunAsync(["show", record.QueueId, "--json"]);
        using (var doc = JsonDocument.Parse(after.Output))
        {
            var message = doc.RootElement.GetProperty("message");
            Assert.True(message.GetProperty("hold").GetProperty("extendedOnRelease").GetBoolean());
            Assert.InRange(message.GetProperty("expiresAt").GetDateTimeOffset(), DateTimeOffset.UtcNow.AddHours(23), DateTimeOffset.UtcNow.AddHours(25));
        }

        Assert.Contains("(released after expiry: one more day)", (await RunAsync(["show", record.QueueId])).Output, StringComparison.Ordinal);
        var notHeld = await RunAsync(["release", record.QueueId]);
        Assert.Equal((0, $"{record.QueueId} was not held"), (notHeld.ExitCode, notHeld.Output.Trim()));
    }

    [Fact]
    public async Task HoldAndRelease_Domain_ChangeEveryMessageOfIt()
    {
        var a = SpoolRecords.Sample();
        var b = SpoolRecords.Sample();
        var other = SpoolRecords.Sample(domain: "other.test");
        await AddAsync(a);
        await AddAsync(b);
        await AddAsync(other);

        var hold = await RunAsync(["hold", "example.test"]);
        Assert.Equal((0, "2 of 2 message(s) of example.test held"), (hold.ExitCode, hold.Output.Trim()));
        using (var store = OpenStore())
        {
            Assert.NotNull((await store.GetAsync("example.test", a.QueueId, CancellationToken.None))!.HeldAt);
            Assert.Null((await store.GetAsync("other.test", other.QueueId, CancellationToken.None))!.HeldAt);
        }

        var release = await RunAsync(["release", "example.test", "--json"]);
        Assert.True(release.ExitCode == 0, release.Error);
        using var doc = JsonDocument.Parse(release.Output);
        Assert.Equal(["released", "released"], doc.RootElement.GetProperty("messages").EnumerateArray().Select(m => m.GetProperty("outcome").GetString()));
    }

    [Fact]
    public async Task Delete_StoppedRelay_RemovesRecordAndBody()
    {
        var record = SpoolRecords.Sample();
        await AddAsync(record);

        var run = await RunAsync(["delete", record.QueueId, "--json"]);

        Assert.True(run.ExitCode == 0, run.Error);
        using var doc = JsonDocument.Parse(run.Output);
        Assert.Equal("deleted", doc.RootElement.GetProperty("outcome").GetString());
        Assert.Equal(JsonValueKind.Null, doc.RootElement.GetProperty("dsnQueueId").ValueKind);
        using var store = OpenStore();
        Assert.Null(await store.GetAsync(record.Domain, record.QueueId, CancellationToken.None));
        await Assert.ThrowsAsync<BodyNotFoundException>(() => OpenBodies().OpenReadAsync(record.QueueId, CancellationToken.None));
        Assert.Equal(1, (await RunAsync(["show", record.QueueId])).ExitCode);
    }

    [Fact]
    public async Task Delete_LeasedMessage_RefusesAfterTheWaitAndWaitsOutAShortLease()
    {
        var busy = SpoolRecords.Sample() with { LeaseOwner = "relay-1", LeaseExpiresAt = DateTimeOffset.UtcNow.AddMinutes(15) };
        await AddAsync(busy);

        var refused = await RunAsync(["delete", busy.QueueId, "--bounce", "--wait=1"]);

        Assert.Equal(75, refused.ExitCode);
        Assert.Contains($"{busy.QueueId} is being delivered right now and its attempt did not end within 1 s: nothing was changed", refused.Error, StringComparison.Ordinal);
        using (var store = OpenStore())
        {
            var kept = await store.GetAsync(busy.Domain, busy.QueueId, CancellationToken.None);
            Assert.NotNull(kept);
            Assert.Null(kept.HeldAt);
        }

        Assert.Equal(75, (await RunAsync(["hold", busy.QueueId, "--wait=0"])).ExitCode);

        // A lease that ends while the command waits: the delete goes ahead once it has.
        var ending = SpoolRecords.Sample() with { LeaseOwner = "relay-1", LeaseExpiresAt = DateTimeOffset.UtcNow.AddSeconds(4) };
        await AddAsync(ending);
        var waited = await RunAsync(["delete", ending.QueueId, "--wait=60"]);
        Assert.True(waited.ExitCode == 0, waited.Error);
        Assert.True(DateTimeOffset.UtcNow >= ending.LeaseExpiresAt, "deleted before the lease ended");
        using (var store = OpenStore())
        {
            Assert.Null(await store.GetAsync(ending.Domain, ending.QueueId, CancellationToken.None));
        }
    }

    [Fact]
    public async Task Commands_RunningRelay_HoldKeepsADueMessageReleaseDeliversItDeleteBounceSendsADsn()
    {
        await using var primary = new FakePrimary();
        await primary.StartAsync();
        await using var senderMx = new FakePrimary();
        await senderMx.StartAsync();

        // Three due messages written before the relay starts: one held, one to delete with a
        // notice, one left alone to show that the relay delivers while the others wait.
        var now = DateTimeOffset.UtcNow;
        SpoolRecord Due() => SpoolRecords.Sample() with { QueueId = QueueId.New(now), ReceivedAt = now, ExpiresAt = now.AddDays(5), NextAttemptAt = now };
        var held = Due();
        var doomed = Due();
        var free = Due();
        foreach (var r in new[] { held, doomed, free })
        {
            await AddAsync(r);
        }

        Assert.Equal(0, (await RunAsync(["hold", held.QueueId])).ExitCode);
        Assert.Equal(0, (await RunAsync(["hold", doomed.QueueId])).ExitCode);

        var smtpPort = FreePort.Next();
        await using var relay = new ServerProcess(Path.Combine(_spool.Path, "relay.log"), [.. Settings(_spool.Path, primary.Port), $"--BackupMx:Smtp:Endpoints:0=127.0.0.1:{smtpPort}", $"--BackupMx:Bounce:SmartHost=127.0.0.1:{senderMx.Port}"]);
        await relay.StartAsync(smtpPort, TimeSpan.FromSeconds(90));

        await primary.WaitForMessagesAsync(1, TimeSpan.FromSeconds(60));
        await Task.Delay(TimeSpan.FromSeconds(3));
        Assert.Single(primary.Messages);
        Assert.Contains("held since", (await RunAsync(["show", held.QueueId])).Output, StringComparison.Ordinal);

        var release = await RunAsync(["release", held.QueueId]);
        Assert.True(release.ExitCode == 0, release.Error);
        await primary.WaitForMessagesAsync(2, TimeSpan.FromSeconds(60));
        Assert.Equal(1, await WaitGoneAsync(held.QueueId));

        var delete = await RunAsync(["delete", doomed.QueueId, "--bounce"]);
        Assert.True(delete.ExitCode == 0, delete.Error);
        Assert.Matches($@"^{doomed.QueueId} deleted; DSN {doomed.QueueId}-d\S+ to <alice@sender\.test> says an administrator removed it$", delete.Output.Trim());
        var dsn = (await senderMx.WaitForMessagesAsync(1, TimeSpan.FromSeconds(60)))[0];
        Assert.Equal(string.Empty, dsn.MailFrom);
        Assert.Equal(["alice@sender.test"], dsn.AcceptedRecipients);
        var text = Encoding.UTF8.GetString(dsn.Data);
        Assert.Contains("Status: 5.0.0", text, StringComparison.Ordinal);
        Assert.Contains("removed from the backup MX's queue by an administrator", text, StringComparison.Ordinal);
        Assert.Equal(2, primary.Messages.Count);
        Assert.DoesNotContain(File.ReadAllText(Path.Combine(_spool.Path, "relay.log")), "Unhandled", StringComparison.Ordinal);
    }

    private async Task<int> WaitGoneAsync(string queueId)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            var run = await RunAsync(["show", queueId]);
            if (run.ExitCode != 0 || DateTime.UtcNow > deadline)
            {
                return run.ExitCode;
            }

            await Task.Delay(300);
        }
    }

    // The stores do no I/O until opened, as the relay's start-up and the commands open them.
    private SqliteSpoolStore OpenStore()
    {
        var store = new SqliteSpoolStore(_spool.Path);
        store.Open();
        return store;
    }

    private FileBodyStore OpenBodies()
    {
        var bodies = new FileBodyStore(_spool.Path);
        bodies.Open();
        return bodies;
    }

    private async Task AddAsync(SpoolRecord record)
    {
        await OpenBodies().WriteAsync(record.QueueId, new MemoryStream(Encoding.ASCII.GetBytes(Headers + "\r\n" + Text)), CancellationToken.None);
        using var store = OpenStore();
        await store.CreateAsync(record, CancellationToken.None);
    }

    private static string[] Settings(string spool, int primaryPort) =>
    [
        "--BackupMx:HostName=backup.test",
        "--BackupMx:Domains:0:Name=example.test",
        $"--BackupMx:Domains:0:Primary=127.0.0.1:{primaryPort}",
        $"--BackupMx:Spool:Path={spool}",
    ];

    private async Task<(int ExitCode, string Output, string Error)> RunAsync(string[] args, string? spool = null)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(ServerProcess.LocateServerDll());
        foreach (var arg in args.Concat(Settings(spool ?? _spool.Path, 2)))
        {
            start.ArgumentList.Add(arg);
        }

        start.ArgumentList.Add("--BackupMx:Admin:Endpoint=");
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        await process.WaitForExitAsync(cts.Token);
        return (process.ExitCode, await output, await error);
    }
}
