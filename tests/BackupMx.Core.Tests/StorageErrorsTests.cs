using BackupMx.Core.Intake;
using BackupMx.Testing;
using BackupMx.Testing.Fakes;

namespace BackupMx.Core.Tests;

public sealed class StorageErrorsTests
{
    [Fact]
    public void IsOutOfSpace_RealEnospcFromDevFull_True()
    {
        // /dev/full answers every write with ENOSPC: the real exception .NET raises, without filling a disk.
        if (!File.Exists("/dev/full"))
        {
            Assert.Fail("/dev/full is needed for this test (Linux); on another OS replace it by a platform check.");
        }

        var ex = Assert.ThrowsAny<IOException>(() =>
        {
            using var file = new FileStream("/dev/full", FileMode.Open, FileAccess.Write, FileShare.ReadWrite, 1);
            file.Write(new byte[4096]);
            file.Flush();
        });

        Assert.True(StorageErrors.IsOutOfSpace(ex), $"HResult {ex.HResult}: {ex.Message}");
    }

    [Fact]
    public void IsOutOfSpace_WrappedOrOther_OnlyEnospcCounts()
    {
        Assert.True(StorageErrors.IsOutOfSpace(new InvalidOperationException("wrapped", new IOException("full", 28))));
        Assert.False(StorageErrors.IsOutOfSpace(new IOException("read-only file system", 30)));
        Assert.False(StorageErrors.IsOutOfSpace(new UnauthorizedAccessException()));
    }

    [Fact]
    public async Task AcceptAsync_BodyStoreOutOfSpace_FailedWithInsufficientStorageAndNothingKept()
    {
        var bodies = new InMemoryBodyStore { FailWritesWith = new IOException("No space left on device", 28) };
        using var h = new CoreHarness(bodies: bodies);

        var result = await h.Intake.AcceptAsync(TestMessages.Make(), CancellationToken.None);

        Assert.True(Assert.IsType<IntakeResult.Failed>(result).InsufficientStorage);
        Assert.Equal(0, ((InMemorySpoolStore)h.Spool).Count);
        Assert.Equal(0, bodies.Count);
    }

    [Fact]
    public async Task AcceptAsync_OtherSpoolFailure_NotInsufficientStorage()
    {
        using var h = new CoreHarness(spool: new InMemorySpoolStore { FailWith = new IOException("I/O error", 5) });

        var result = await h.Intake.AcceptAsync(TestMessages.Make(), CancellationToken.None);

        Assert.False(Assert.IsType<IntakeResult.Failed>(result).InsufficientStorage);
    }
}
