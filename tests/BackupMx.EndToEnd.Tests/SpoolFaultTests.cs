// Rule 1 under storage faults: a client is told 250 only for mail that is durably spooled;
// otherwise it gets a 4xx, nothing half-written stays behind, and service resumes by itself
// once the cause is gone.
//
// Tests run as root, and root ignores permission bits, so "read-only" cannot be made with
// chmod. Instead the bodies folder is replaced by a regular file of the same name: every
// directory operation under it then fails (ENOTDIR/EEXIST) for root as for anyone, with no
// mount privileges needed. A full disk is injected below FileBodyStore, as an ENOSPC
// IOException raised while the body streams in, so FileBodyStore's own clean-up runs; and
// below the SQLite store, after the body is already on disk, so intake's undo runs. Bodies of up
// to 64 KiB are kept in the spool database with their record; the tests about body files send
// larger messages.
using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using BackupMx.Local;
using BackupMx.Testing;
using BackupMx.Testing.Fakes;
using Microsoft.Extensions.DependencyInjection;

namespace BackupMx.EndToEnd.Tests;

[Collection(EndToEndCollection.Name)]
public sealed class SpoolFaultTests
{
    [Fact]
    public async Task BodiesFolderUnusable_451AndNothingKept_ResumesWhenRestored()
    {
        await using var rig = await FaultRig.StartAsync();
        await rig.Primary.StopAsync();
        var bodies = Path.Combine(rig.Spool.Path, FileBodyStore.FolderName);

        // Large messages: only a body too large for the spool database is a file. One message
        // first, so the store has shard folders cached that are about to vanish. Its first attempt
        // comes at once or, once the start-up probe has found the primary down, at its first retry.
        Assert.True((await rig.SendLargeAsync(1)).Accepted);
        await rig.WaitForFirstAttemptAsync(TimeSpan.FromMinutes(5));
        var survivor = Assert.Single(await rig.QueueAsync());
        var survivorBody = Directory.GetFiles(bodies, "*", SearchOption.AllDirectories).Single();
        var kept = await File.ReadAllBytesAsync(survivorBody);
        Directory.Delete(bodies, recursive: true);
        await File.WriteAllBytesAsync(bodies, []);

        var refused = await rig.SendLargeAsync(2);

        Assert.False(refused.Accepted);
        Assert.StartsWith("451 4.3.0", refused.DataReply, StringComparison.Ordinal);
        Assert.Equal([survivor.QueueId], (await rig.QueueAsync()).Select(v => v.QueueId));
        Assert.Equal(0, new FileInfo(bodies).Length);

        // A small message, kept in the spool database with its record, needs no folder.
        Assert.True((await rig.SendAsync(5)).Accepted);

        // The operator restores the folder (and the body that was in it).
        File.Delete(bodies);
        Directory.CreateDirectory(Path.GetDirectoryName(survivorBody)!);
        await File.WriteAllBytesAsync(survivorBody, kept);

        Assert.True((await rig.SendLargeAsync(3)).Accepted);
        Assert.True((await rig.SendLargeAsync(4)).Accepted);
        await rig.Primary.StartAsync();
        rig.Time.Advance(TimeSpan.FromMinutes(5));
        await rig.WaitForEmptySpoolAsync();
        var subjects = rig.Primary.Messages.Select(m => Subject(m.Data)).Order().ToList();
        Assert.Equal(["backlog message 1", "backlog message 3", "backlog message 4", "backlog message 5"], subjects);

        // A finished record is deleted before its body, so the last bodies may lag the empty spool by a moment.
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (Directory.GetFiles(bodies, "*", SearchOption.AllDirectories).Length > 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
        }

        Assert.Empty(Directory.GetFiles(bodies, "*", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task DiskFullWhileTheBodyStreamsIn_Transient4_3_NoRecordNoBodyNoTempFile_ResumesAfterward()
    {
        var full = new FaultSwitch();
        await using var rig = await FaultRig.StartAsync(configure: b => b.Services.AddSingleton<IBodyStore>(sp => new FillingBodyStore(sp.GetRequiredService<FileBodyStore>(), full)));
        var bodies = Path.Combine(rig.Spool.Path, FileBodyStore.FolderName);

        // A body file: a small body goes into the spool database, whose full disk the SQLite tests cover.
        full.On = true;
        var refused = await rig.SendLargeAsync(1);

        AssertStorageRefusal(refused.DataReply);
        Assert.Empty(await rig.QueueAsync());
        Assert.Empty(Directory.GetFiles(bodies, "*", SearchOption.AllDirectories));

        full.On = false;
        Assert.True((await rig.SendLargeAsync(2)).Accepted);
        await rig.Primary.WaitForMessagesAsync(1, TimeSpan.FromSeconds(30));
        await rig.WaitForEmptySpoolAsync();
    }

    [Fact]
    public async Task DiskFullHalfwayThroughALargeBody_Transient4_3_NoRecordNoBodyNoTempFile_ResumesAfterward()
    {
        var full = new FaultSwitch();
        await using var rig = await FaultRig.StartAsync(configure: b => b.Services.AddSingleton<IBodyStore>(sp => new FillingBodyStore(sp.GetRequiredService<FileBodyStore>(), full, 2 * 1024 * 1024)));
        var bodies = Path.Combine(rig.Spool.Path, FileBodyStore.FolderName);
        var incoming = Path.Combine(rig.Spool.Path, "incoming");
        var message = Messages.MakeLarge(1, 4 * 1024 * 1024);

        full.On = true;
        var refused = await SmtpSender.SendAsync(rig.Relay.SmtpPort, "alice@sender.test", ["bob@example.test"], message);

        AssertStorageRefusal(refused.DataReply);
        Assert.Empty(await rig.QueueAsync());
        Assert.Empty(Directory.GetFiles(bodies, "*", SearchOption.AllDirectories));
        Assert.Empty(Directory.GetFileSystemEntries(incoming));

        full.On = false;
        Assert.True((await SmtpSender.SendAsync(rig.Relay.SmtpPort, "alice@sender.test", ["bob@example.test"], message)).Accepted);
        var delivered = Assert.Single(await rig.Primary.WaitForMessagesAsync(1, TimeSpan.FromSeconds(30)));
        Assert.True(Messages.SplitReceived(delivered.Data).Original.AsSpan().SequenceEqual(message));
        await rig.WaitForEmptySpoolAsync();
    }

    [Fact]
    public async Task IncomingFolderUnusable_LargeMessage451_NothingKept_SmallOnesStillAccepted_ResumesWhenRestored()
    {
        await using var rig = await FaultRig.StartAsync();
        await rig.Primary.StopAsync();
        var bodies = Path.Combine(rig.Spool.Path, FileBodyStore.FolderName);
        var incoming = Path.Combine(rig.Spool.Path, "incoming");
        var large = Messages.MakeLarge(1, 1024 * 1024);
        Directory.Delete(incoming);
        await File.WriteAllBytesAsync(incoming, []);

        var refused = await SmtpSender.SendAsync(rig.Relay.SmtpPort, "alice@sender.test", ["bob@example.test"], large);

        Assert.StartsWith("451 4.3.0", refused.DataReply, StringComparison.Ordinal);
        Assert.Empty(await rig.QueueAsync());
        Assert.Empty(Directory.GetFiles(bodies, "*", SearchOption.AllDirectories));
        Assert.Equal(0, new FileInfo(incoming).Length);

        // A message that fits the receiver's memory buffer never needs the folder.
        Assert.True((await rig.SendAsync(2)).Accepted);

        File.Delete(incoming);
        Directory.CreateDirectory(incoming);
        Assert.True((await SmtpSender.SendAsync(rig.Relay.SmtpPort, "alice@sender.test", ["bob@example.test"], large)).Accepted);
        Assert.Equal(2, (await rig.QueueAsync()).Count);
        Assert.Empty(Directory.GetFileSystemEntries(incoming));
    }

    [Fact]
    public async Task DiskFullWhenTheRecordIsWritten_Transient4_3_BodyRemovedAgain_ResumesAfterward()
    {
        var full = new FaultSwitch();
        await using var rig = await FaultRig.StartAsync(configure: b => b.Services.AddSingleton<ISpoolStore>(sp => new FullSpoolStore(sp.GetRequiredService<SqliteSpoolStore>(), full)));
        var bodies = Path.Combine(rig.Spool.Path, FileBodyStore.FolderName);

        full.On = true;
        var refused = await rig.SendAsync(1);

        AssertStorageRefusal(refused.DataReply);
        Assert.Empty(await rig.QueueAsync());
        Assert.Empty(Directory.GetFiles(bodies, "*", SearchOption.AllDirectories));

        full.On = false;
        Assert.True((await rig.SendAsync(2)).Accepted);
        Assert.Single(await rig.Primary.WaitForMessagesAsync(1, TimeSpan.FromSeconds(30)));
        await rig.WaitForEmptySpoolAsync();
    }

    private static void AssertStorageRefusal(string? reply)
    {
        // A full disk is "insufficient system storage" (RFC 3463 4.3.1), still a temporary failure.
        Assert.NotNull(reply);
        Assert.StartsWith("452 4.3.1", reply, StringComparison.Ordinal);
    }

    private static string Subject(byte[] data)
    {
        var text = System.Text.Encoding.Latin1.GetString(data);
        var start = text.IndexOf("Subject: ", StringComparison.Ordinal) + "Subject: ".Length;
        return text[start..text.IndexOf("\r\n", start, StringComparison.Ordinal)];
    }

    private sealed class FaultSwitch
    {
        public volatile bool On;
    }

    private static IOException NoSpace() => new("No space left on device", 28);

    /// <summary>The real file store, fed a body that runs out of disk after its first bytes (or more).</summary>
    private sealed class FillingBodyStore(IBodyStore inner, FaultSwitch full, int failAfter = 64) : IBodyStore
    {
        public Task<long> WriteAsync(string queueId, Stream content, CancellationToken cancellationToken) =>
            inner.WriteAsync(queueId, full.On ? new FailingAfterStream(content, failAfter) : content, cancellationToken);

        public Task<Stream> OpenReadAsync(string queueId, CancellationToken cancellationToken) => inner.OpenReadAsync(queueId, cancellationToken);

        public Task DeleteAsync(string queueId, CancellationToken cancellationToken) => inner.DeleteAsync(queueId, cancellationToken);
    }

    private sealed class FailingAfterStream(Stream inner, int limit) : Stream
    {
        private int _read;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => _read; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count)
        {
            if (_read >= limit)
            {
                throw NoSpace();
            }

            var n = inner.Read(buffer, offset, Math.Min(count, limit - _read));
            _read += n;
            return n;
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (_read >= limit)
            {
                throw NoSpace();
            }

            var n = inner.Read(buffer.Span[..Math.Min(buffer.Length, limit - _read)]);
            _read += n;
            return ValueTask.FromResult(n);
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    /// <summary>The real SQLite store, whose inserts fail as on a full disk.</summary>
    private sealed class FullSpoolStore(ISpoolStore inner, FaultSwitch full) : DelegatingSpoolStore(inner)
    {
        public override Task<SpoolRecord> CreateAsync(SpoolRecord record, CancellationToken cancellationToken) =>
            full.On ? Task.FromException<SpoolRecord>(new InvalidOperationException("database or disk is full", NoSpace())) : base.CreateAsync(record, cancellationToken);
    }
}
