using System.Security.Cryptography;
using BackupMx.Core.Ports;
using Microsoft.Extensions.DependencyInjection;

namespace BackupMx.Smtp.Tests;

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class MemoryBoundCollection
{
    /// <summary>Alone, so that no other test's allocations are counted.</summary>
    public const string Name = "Memory bound";
}

[Collection(MemoryBoundCollection.Name)]
public sealed class MemoryBoundTests
{
    [Fact]
    public async Task Data_32MiBMessage_ReceiverAllocatesAFractionOfIt()
    {
        const int Lines = 32 * 1024 * 1024 / 1024;
        var spill = Directory.CreateTempSubdirectory("backupmx-spill-test-").FullName;
        var store = new HashingBodyStore();
        try
        {
            await using var host = await ReceiverHost.StartAsync(
                new() { ["BackupMx:Smtp:SpillPath"] = spill },
                configureServices: services => services.AddSingleton<IBodyStore>(store));
            await using var client = await host.ConnectAsync();
            await client.BeginAsync();
            var line = new byte[1024];
            Array.Fill(line, (byte)'m');
            line[0] = (byte)'.';
            line[1] = (byte)'.';
            line[^2] = (byte)'\r';
            line[^1] = (byte)'\n';
            Assert.StartsWith("354", await client.CommandAsync("DATA"));
            await client.SendRawAsync("Subject: big\r\n\r\n");

            var before = GC.GetTotalAllocatedBytes(precise: true);
            for (var i = 0; i < Lines; i++)
            {
                await client.SendRawAsync(line);
            }

            await client.SendRawAsync(".\r\n"u8.ToArray());
            Assert.StartsWith("250", await client.ReadReplyAsync());
            var allocated = GC.GetTotalAllocatedBytes(precise: true) - before;

            // Stored: our Received header, the Subject, then every line with one dot unstuffed.
            var head = store.Head.ToArray();
            var received = head.AsSpan().IndexOf("\r\nSubject: big\r\n\r\n"u8) + 18;
            Assert.StartsWith("Received: ", System.Text.Encoding.ASCII.GetString(head, 0, received));
            using var expected = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            expected.AppendData(head, 0, received);
            for (var i = 0; i < Lines; i++)
            {
                expected.AppendData(line, 1, line.Length - 1);
            }

            Assert.Equal(Convert.ToHexString(expected.GetHashAndReset()), store.Hash);
            Assert.True(allocated < 8 * 1024 * 1024, $"{allocated / 1024} KiB allocated to receive 32 MiB");
        }
        finally
        {
            Directory.Delete(spill, recursive: true);
        }
    }

    /// <summary>Keeps only the first bytes of a body and a hash of all of it.</summary>
    private sealed class HashingBodyStore : IBodyStore
    {
        public MemoryStream Head { get; } = new();

        public string? Hash { get; private set; }

        public async Task<long> WriteAsync(string queueId, Stream content, CancellationToken cancellationToken)
        {
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var buffer = new byte[64 * 1024];
            long length = 0;
            int n;
            while ((n = await content.ReadAsync(buffer, cancellationToken)) > 0)
            {
                Head.Write(buffer, 0, (int)Math.Min(n, Math.Max(0, 4096 - Head.Length)));
                hash.AppendData(buffer, 0, n);
                length += n;
            }

            Hash = Convert.ToHexString(hash.GetHashAndReset());
            return length;
        }

        public Task<Stream> OpenReadAsync(string queueId, CancellationToken cancellationToken) => throw new BodyNotFoundException(queueId);

        public Task DeleteAsync(string queueId, CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
