// A message far larger than the receiver's in-memory buffer goes through the temporary file in
// the spool's incoming folder, lands in the spool and reaches the primary byte for byte, and
// leaves no temporary file behind.
using BackupMx.Local;
using BackupMx.Testing;

namespace BackupMx.EndToEnd.Tests;

[Collection(EndToEndCollection.Name)]
public sealed class LargeMessageTests
{
    [Fact]
    public async Task Message20MiB_SpooledByteIdentical_DeliveredUnchanged_NoTemporaryFileLeft()
    {
        await using var rig = await FaultRig.StartAsync();
        await rig.Primary.StopAsync();
        var bodies = Path.Combine(rig.Spool.Path, FileBodyStore.FolderName);
        var incoming = Path.Combine(rig.Spool.Path, "incoming");
        var message = Messages.MakeLarge(1, 20 * 1024 * 1024);

        var sent = await SmtpSender.SendAsync(rig.Relay.SmtpPort, "alice@sender.test", ["bob@example.test"], message);

        Assert.True(sent.Accepted, sent.DataReply);
        Assert.Single(await rig.QueueAsync());
        var stored = await File.ReadAllBytesAsync(Directory.GetFiles(bodies, "*", SearchOption.AllDirectories).Single());
        var (received, original) = Messages.SplitReceived(stored);
        Assert.Contains("(BackupMx)", received, StringComparison.Ordinal);
        Assert.True(original.AsSpan().SequenceEqual(message), "the spooled body must be the message exactly as sent, after our Received header");
        Assert.True(Directory.Exists(incoming));
        Assert.Empty(Directory.GetFileSystemEntries(incoming));

        await rig.Primary.StartAsync();
        rig.Time.Advance(TimeSpan.FromMinutes(5));
        var delivered = Assert.Single(await rig.Primary.WaitForMessagesAsync(1, TimeSpan.FromSeconds(60)));
        Assert.True(delivered.Data.AsSpan().SequenceEqual(stored), "the primary must get the spooled bytes unchanged");
        await rig.WaitForEmptySpoolAsync();
        Assert.Empty(rig.Logs.AtLeast(Microsoft.Extensions.Logging.LogLevel.Error));
    }
}
