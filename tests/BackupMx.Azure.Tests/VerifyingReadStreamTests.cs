using System.Security.Cryptography;

namespace BackupMx.Azure.Tests;

public sealed class VerifyingReadStreamTests
{
    private static readonly byte[] Data = RandomNumberGenerator.GetBytes(10_000);

    [Fact]
    public async Task Read_MatchingBody_PassesEveryByte()
    {
        await using var stream = new VerifyingReadStream(new MemoryStream(Data), Data.Length, Sha(Data), "Q");
        using var copy = new MemoryStream();
        await stream.CopyToAsync(copy);
        Assert.Equal(Data, copy.ToArray());
    }

    [Fact]
    public async Task Read_WrongHash_ThrowsBeforeTheLastBytesAreHandedOver()
    {
        await using var stream = new VerifyingReadStream(new MemoryStream(Data), Data.Length, Sha([1]), "Q");
        var buffer = new byte[Data.Length];
        await Assert.ThrowsAsync<InvalidDataException>(async () => await stream.ReadExactlyAsync(buffer));
    }

    [Fact]
    public async Task Read_TruncatedBody_ThrowsIOException()
    {
        await using var stream = new VerifyingReadStream(new MemoryStream(Data[..100]), Data.Length, Sha(Data), "Q");
        await Assert.ThrowsAsync<IOException>(() => stream.CopyToAsync(Stream.Null));
    }

    [Fact]
    public void Read_WithoutRecordedHash_OnlyChecksLength()
    {
        using var stream = new VerifyingReadStream(new MemoryStream(Data), Data.Length, null, "Q");
        stream.CopyTo(Stream.Null);
        Assert.Equal(Data.Length, stream.Position);
    }

    private static string Sha(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));
}
