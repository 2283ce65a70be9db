using System.Diagnostics;
using System.Text.Json;
using BackupMx.Testing;
using BackupMx.Testing.Contracts;

namespace BackupMx.EndToEnd.Tests;

/// <summary><c>queue --json</c> and <c>queue --ages</c> as processes over a spool with known records.</summary>
[Collection(EndToEndCollection.Name)]
public sealed class QueueReportProcessTests : IAsyncLifetime
{
    private readonly TempFolder _spool = new();
    private readonly List<string> _queueIds = [];

    public async Task InitializeAsync()
    {
        using var store = new BackupMx.Local.SqliteSpoolStore(_spool.Path);
        store.Open();
        foreach (var record in new[] { SpoolRecords.Sample(), SpoolRecords.Sample(), SpoolRecords.Sample(domain: "other.test", recipients: 1) })
        {
            await store.CreateAsync(record, CancellationToken.None);
            _queueIds.Add(record.QueueId);
        }
    }

    public Task DisposeAsync()
    {
        _spool.Dispose();
        return Task.CompletedTask;
    }

    [Fact]
    public async Task QueueJson_Summary_ListsDomainsWithCounts()
    {
        var run = await RunAsync(["queue", "--json"]);

        Assert.True(run.ExitCode == 0, run.Error);
        using var json = JsonDocument.Parse(run.Output);
        Assert.Equal(1, json.RootElement.GetProperty("schema").GetInt32());
        Assert.Equal(_spool.Path, json.RootElement.GetProperty("spool").GetString());
        var domains = json.RootElement.GetProperty("domains").EnumerateArray().ToDictionary(d => d.GetProperty("domain").GetString()!);
        Assert.Equal((2, 4), (domains["example.test"].GetProperty("messages").GetInt32(), domains["example.test"].GetProperty("recipients").GetInt32()));
        Assert.Equal(1, domains["other.test"].GetProperty("messages").GetInt32());
        Assert.True(domains["example.test"].GetProperty("oldestAgeSeconds").GetInt64() > 86_400);
        Assert.Equal("Unknown", domains["example.test"].GetProperty("primaryState").GetString());
        Assert.Empty(json.RootElement.GetProperty("quarantined").EnumerateArray());
    }

    [Fact]
    public async Task QueueJson_Domain_ListsEachMessage()
    {
        var run = await RunAsync(["queue", "example.test", "--json"]);

        Assert.True(run.ExitCode == 0, run.Error);
        using var json = JsonDocument.Parse(run.Output);
        var messages = json.RootElement.GetProperty("messages").EnumerateArray().ToList();
        Assert.Equal(_queueIds.Take(2).Order(), messages.Select(m => m.GetProperty("queueId").GetString()).Order());
        var first = messages[0];
        Assert.Equal("Relay", first.GetProperty("kind").GetString());
        Assert.Equal("alice@sender.test", first.GetProperty("sender").GetString());
        Assert.Equal(["user1@example.test", "user2@example.test"], first.GetProperty("pendingRecipients").EnumerateArray().Select(r => r.GetString()));
        Assert.Equal(SpoolRecords.T0, first.GetProperty("receivedAt").GetDateTimeOffset());
        Assert.Equal(1234, first.GetProperty("bytes").GetInt64());
    }

    [Fact]
    public async Task QueueJson_UnknownDomain_ExitsSixtySeven()
    {
        var run = await RunAsync(["queue", "nosuch.test", "--json"]);

        Assert.Equal(67, run.ExitCode);
        Assert.Equal(string.Empty, run.Output);
    }

    [Fact]
    public async Task QueueAges_Table_CountsMessagesPerDomainInTheOldestBucket()
    {
        var run = await RunAsync(["queue", "--ages"]);

        Assert.True(run.ExitCode == 0, run.Error);
        var lines = run.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)).ToList();
        Assert.Equal(["T", "5", "10", "20", "40", "80", "160", "320", "640", "1280", "1280+"], lines[0]);
        Assert.Equal(["TOTAL", "3", "0", "0", "0", "0", "0", "0", "0", "0", "0", "3"], lines[1]);
        Assert.Equal(["example.test", "2", "0", "0", "0", "0", "0", "0", "0", "0", "0", "2"], lines[2]);
        Assert.Equal(["other.test", "1", "0", "0", "0", "0", "0", "0", "0", "0", "0", "1"], lines[3]);
        Assert.Equal(4, lines.Count);
    }

    [Fact]
    public async Task QueueAgesJson_CountsPerBucket()
    {
        var run = await RunAsync(["queue", "--ages", "--json"]);

        Assert.True(run.ExitCode == 0, run.Error);
        using var json = JsonDocument.Parse(run.Output);
        Assert.Equal([5, 10, 20, 40, 80, 160, 320, 640, 1280], json.RootElement.GetProperty("bucketMinutes").EnumerateArray().Select(b => b.GetInt32()));
        Assert.Equal(3, json.RootElement.GetProperty("total").GetProperty("messages").GetInt32());
        var other = json.RootElement.GetProperty("domains").EnumerateArray().Single(d => d.GetProperty("domain").GetString() == "other.test");
        Assert.Equal([0, 0, 0, 0, 0, 0, 0, 0, 0, 1], other.GetProperty("counts").EnumerateArray().Select(c => c.GetInt32()));
    }

    [Fact]
    public async Task FlushJson_StoppedRelay_CountsWhatItMadeDueAndWhatIsQueued()
    {
        // The seeded two are due already; this one waits for a retry an hour away. The flush makes all
        // three due now with their retry counts reset.
        var waiting = SpoolRecords.Sample() with { NextAttemptAt = DateTimeOffset.UtcNow.AddHours(1) };
        using (var store = new BackupMx.Local.SqliteSpoolStore(_spool.Path))
        {
            store.Open();
            waiting = await store.CreateAsync(waiting, CancellationToken.None);
        }

        var run = await RunAsync(["flush", "example.test", "--json"]);

        Assert.True(run.ExitCode == 0, run.Error);
        using var json = JsonDocument.Parse(run.Output);
        var root = json.RootElement;
        Assert.Equal(1, root.GetProperty("schema").GetInt32());
        Assert.Equal(_spool.Path, root.GetProperty("spool").GetString());
        Assert.Equal(("flush", "example.test"), (root.GetProperty("command").GetString(), root.GetProperty("domain").GetString()));
        Assert.Equal((3, 3), (root.GetProperty("queued").GetInt32(), root.GetProperty("flushed").GetInt32()));
        Assert.Equal(30, root.GetProperty("pickupSeconds").GetInt32());
        Assert.Empty(root.GetProperty("quarantined").EnumerateArray());

        // No relay has tried them since, so a second flush finds the same three waiting, due now.
        var again = await RunAsync(["flush", "example.test", "--json"]);
        Assert.True(again.ExitCode == 0, again.Error);
        using var second = JsonDocument.Parse(again.Output);
        Assert.Equal((3, 3), (second.RootElement.GetProperty("queued").GetInt32(), second.RootElement.GetProperty("flushed").GetInt32()));

        var unknown = await RunAsync(["flush", "nosuch.test", "--json"]);
        Assert.Equal((67, string.Empty), (unknown.ExitCode, unknown.Output));
        Assert.Equal("nosuch.test is not a configured domain and nothing is queued for it", unknown.Error.Trim());

        using var empty = new TempFolder();
        var noSpool = await RunAsync(["flush", "example.test", "--json"], empty.Path);
        Assert.Equal((66, string.Empty), (noSpool.ExitCode, noSpool.Output));
        Assert.Empty(Directory.EnumerateFileSystemEntries(empty.Path));
    }

    [Theory]
    [InlineData("flush", "example.test", "--ages")]
    [InlineData("queue", "example.test", "--ages")]
    public async Task QueueFlags_WhereTheyDoNotApply_AreUsageErrors(string command, string domain, string flag)
    {
        var run = await RunAsync([command, domain, flag]);

        Assert.Equal(64, run.ExitCode);
        Assert.StartsWith("usage: ", run.Error, StringComparison.Ordinal);
    }

    private async Task<(int ExitCode, string Output, string Error)> RunAsync(string[] args, string? spoolPath = null)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(typeof(BackupMx.Server.EmbeddedHost).Assembly.Location);
        foreach (var arg in args.Concat(["--BackupMx:HostName=backup.test", "--BackupMx:Domains:0:Name=example.test", "--BackupMx:Domains:0:Primary=127.0.0.1:2", $"--BackupMx:Spool:Path={spoolPath ?? _spool.Path}"]))
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        await process.WaitForExitAsync(cts.Token);
        return (process.ExitCode, await output, await error);
    }
}
