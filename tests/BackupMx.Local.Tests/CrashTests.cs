using System.Diagnostics;
using BackupMx.Testing.Contracts;
using Microsoft.Data.Sqlite;
using Xunit.Abstractions;

namespace BackupMx.Local.Tests;

/// <summary>
/// Kills a child process that writes to the spool with SIGKILL and checks that every message
/// it reported committed is intact. This covers a crashed process, not a power cut (the page
/// cache survives SIGKILL); power loss rests on the fsyncs described in SqliteSpoolStore.
/// </summary>
public sealed class CrashTests(ITestOutputHelper output) : IDisposable
{
    private static readonly CancellationToken None = CancellationToken.None;
    private readonly TempSpool _spool = new();

    public void Dispose() => _spool.Dispose();

    [Fact]
    public async Task SigKill_AfterCommit_EveryCommittedMessageSurvives()
    {
        var committed = await RunHelperUntilKilledAsync(lease: false, count: 40);

        var spool = _spool.OpenSpool();
        var bodies = _spool.OpenBodies();
        foreach (var id in committed)
        {
            var record = await spool.GetAsync("example.test", id, None);
            Assert.NotNull(record);
            await using var body = await bodies.OpenReadAsync(id, None);
            Assert.Equal(record.BodyLength, body.Length);
        }

        Assert.Empty(Directory.GetFiles(bodies.Root, "*.tmp", SearchOption.AllDirectories));
        Assert.Equal("ok", IntegrityCheck());
    }

    [Fact]
    public async Task SigKill_AfterCommitWithTheBodyInTheDatabase_EveryCommittedMessageAndEveryByteOfItsBodySurvive()
    {
        // Intake's path for small mail: "committed" is printed where intake would answer 250.
        var committed = await RunHelperUntilKilledAsync(lease: false, count: 40, inline: true);

        var spool = _spool.OpenSpool();
        var bodies = new LocalBodyStore(_spool.OpenBodies(), spool);
        foreach (var id in committed)
        {
            var record = await spool.GetAsync("example.test", id, None);
            Assert.NotNull(record);
            await using var body = await bodies.OpenReadAsync(id, None);
            using var copy = new MemoryStream();
            await body.CopyToAsync(copy);
            Assert.Equal(InlineBody(id), copy.ToArray());
            Assert.Equal(record.BodyLength, copy.Length);
        }

        // No body file was involved at all.
        Assert.Empty(Directory.GetFiles(_spool.OpenBodies().Root, "*", SearchOption.AllDirectories));
        Assert.Equal("ok", IntegrityCheck());
    }

    [Fact]
    public async Task SigKill_WhileLeased_RecoveryMakesMessagesDueAtOnce()
    {
        var committed = await RunHelperUntilKilledAsync(lease: true, count: 10);

        var spool = _spool.OpenSpool();
        var now = DateTimeOffset.UtcNow;
        var dueBefore = new List<string>();
        await foreach (var record in spool.ListDueAsync(now, 1000, None))
        {
            dueBefore.Add(record.QueueId);
        }

        Assert.DoesNotContain(committed[0], dueBefore);
        Assert.True(await spool.RecoverAsync(now, None) >= committed.Count);

        var due = new HashSet<string>();
        await foreach (var record in spool.ListDueAsync(now, 1000, None))
        {
            Assert.Null(record.LeaseOwner);
            due.Add(record.QueueId);
        }

        Assert.Superset(committed.ToHashSet(), due);
    }

    // Kept in step with the helper's InlineBody.
    private static byte[] InlineBody(string id) => System.Text.Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat(id + "\r\n", 400)));

    private async Task<List<string>> RunHelperUntilKilledAsync(bool lease, int count, bool inline = false)
    {
        var helper = Path.Combine(AppContext.BaseDirectory, "BackupMx.Local.CrashHelper.dll");
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(helper);
        start.ArgumentList.Add(_spool.Path);
        if (lease)
        {
            start.ArgumentList.Add("lease");
        }
        else if (inline)
        {
            start.ArgumentList.Add("inline");
        }

        var stopwatch = Stopwatch.StartNew();
        using var process = Process.Start(start)!;
        var committed = new List<string>();
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            while (committed.Count < count)
            {
                var line = await process.StandardOutput.ReadLineAsync(timeout.Token);
                if (line is null)
                {
                    Assert.Fail("helper exited: " + await process.StandardError.ReadToEndAsync(timeout.Token));
                }

                if (line.StartsWith("committed ", StringComparison.Ordinal))
                {
                    committed.Add(line["committed ".Length..]);
                }
            }
        }
        finally
        {
            // Process.Kill is SIGKILL on Unix: no finalizers, no disposal, no flush.
            process.Kill();
            await process.WaitForExitAsync(None);
        }

        output.WriteLine($"helper committed {committed.Count} message(s) and was killed after {stopwatch.ElapsedMilliseconds} ms");
        return committed;
    }

    private string IntegrityCheck()
    {
        using var connection = new SqliteConnection($"Data Source={Path.Combine(_spool.Path, SqliteSpoolStore.FileName)};Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA integrity_check";
        return (string)command.ExecuteScalar()!;
    }
}
