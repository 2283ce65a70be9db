using System.Text;
using BackupMx.Core.Ports;
using Microsoft.Extensions.DependencyInjection;

namespace BackupMx.Smtp.Tests;

/// <summary>
/// Bodies past the receiver's in-memory buffer, over real SMTP on loopback: they go through the
/// temporary file, come out unchanged, and every refusal leaves nothing behind.
/// </summary>
public sealed class LargeMessageTests : IDisposable
{
    private readonly string _spill = Directory.CreateTempSubdirectory("backupmx-spill-test-").FullName;

    public void Dispose()
    {
        if (Directory.Exists(_spill))
        {
            Directory.Delete(_spill, recursive: true);
        }
        else
        {
            File.Delete(_spill);
        }
    }

    [Fact]
    public async Task Data_LargeMessageSentInOddPieces_StoredUnstuffedByteIdentical()
    {
        await using var host = await StartAsync();
        await using var client = await host.ConnectAsync();
        await client.BeginAsync();
        var (sent, content) = IncomingBodyTests.LargeMessage(6 * 1024 * 1024);

        Assert.StartsWith("250", await DataInPiecesAsync(client, sent));

        var stored = host.Bodies.Get(Assert.Single(await host.RecordsAsync()).QueueId);
        Assert.True(stored.AsSpan().EndsWith(content), "the stored body must end with the message exactly as sent, unstuffed");
        Assert.StartsWith("Received: ", Encoding.Latin1.GetString(stored, 0, stored.Length - content.Length));
        Assert.Empty(Directory.GetFileSystemEntries(_spill));
        Assert.StartsWith("250", await client.CommandAsync("NOOP"));
    }

    [Fact]
    public async Task Data_OverLimitPastTheMemoryBuffer_552_SessionContinues_NothingKept()
    {
        await using var host = await StartAsync(new() { ["BackupMx:Smtp:MaxMessageBytes"] = (1024 * 1024).ToString() });
        await using var client = await host.ConnectAsync();
        await client.BeginAsync();
        var (sent, _) = IncomingBodyTests.LargeMessage(3 * 1024 * 1024);

        Assert.StartsWith("552 5.3.4", await DataInPiecesAsync(client, sent));
        await AssertNothingKeptAsync(host);

        await AssertSmallMessageAcceptedAsync(client);
    }

    [Fact]
    public async Task Data_BareCrLateInLargeMessage_550_NothingKept()
    {
        await using var host = await StartAsync();
        await using var client = await host.ConnectAsync();
        await client.BeginAsync();
        var (sent, _) = IncomingBodyTests.LargeMessage(2 * 1024 * 1024, tail: "first body\r.\rMAIL FROM:<evil@remote.test>\r\n");

        Assert.StartsWith("550 5.6.0", await DataInPiecesAsync(client, sent));
        await AssertNothingKeptAsync(host);
        Assert.StartsWith("250", await client.CommandAsync("NOOP"));
    }

    [Fact]
    public async Task Data_TemporaryFolderUnusable_451_SessionContinues_NothingKept()
    {
        await using var host = await StartAsync();
        Directory.Delete(_spill);
        await File.WriteAllBytesAsync(_spill, []);
        await using var client = await host.ConnectAsync();
        await client.BeginAsync();
        var (sent, _) = IncomingBodyTests.LargeMessage(2 * 1024 * 1024);

        Assert.StartsWith("451 4.3.0", await DataInPiecesAsync(client, sent));
        await AssertNothingKeptAsync(host);

        // A message that fits the memory buffer needs no file.
        await AssertSmallMessageAcceptedAsync(client);
    }

    [Fact]
    public async Task Data_BodyStoreFailsHalfwayThroughLargeBody_451_NothingKept()
    {
        await using var host = await StartAsync(configureServices: services => services.AddSingleton<IBodyStore>(
            sp => new FailingMidStreamBodyStore(sp.GetRequiredService<Testing.Fakes.InMemoryBodyStore>())));
        await using var client = await host.ConnectAsync();
        await client.BeginAsync();
        var (sent, _) = IncomingBodyTests.LargeMessage(2 * 1024 * 1024);

        Assert.StartsWith("451 4.3.0", await DataInPiecesAsync(client, sent));
        await AssertNothingKeptAsync(host);
    }

    private Task<ReceiverHost> StartAsync(Dictionary<string, string?>? settings = null, Action<IServiceCollection>? configureServices = null)
    {
        settings ??= [];
        settings["BackupMx:Smtp:SpillPath"] = _spill;
        return ReceiverHost.StartAsync(settings, configureServices: configureServices);
    }

    /// <summary>
    /// DATA, then the bytes in pieces of odd, varying sizes, so that dots and line ends fall across
    /// the server's reads; returns the reply to the final dot.
    /// </summary>
    private static async Task<string> DataInPiecesAsync(RawSmtpClient client, byte[] bytes)
    {
        Assert.StartsWith("354", await client.CommandAsync("DATA"));
        var random = new Random(11);
        for (var position = 0; position < bytes.Length;)
        {
            var length = Math.Min(bytes.Length - position, random.Next(1, 9000));
            await client.SendRawAsync(bytes[position..(position + length)]);
            position += length;
        }

        return await client.ReadReplyAsync();
    }

    /// <summary>The session goes on: the next transaction, small enough for the memory buffer, is accepted.</summary>
    private static async Task AssertSmallMessageAcceptedAsync(RawSmtpClient client)
    {
        Assert.StartsWith("250", await client.CommandAsync("MAIL FROM:<a@remote.test>"));
        Assert.StartsWith("250", await client.CommandAsync("RCPT TO:<user@example.test>"));
        Assert.StartsWith("250", await client.DataAsync("Subject: small\r\n\r\nok\r\n.\r\n"));
    }

    /// <summary>No record, no body, and no temporary file (where the temporary folder is usable).</summary>
    private async Task AssertNothingKeptAsync(ReceiverHost host)
    {
        Assert.Empty(await host.RecordsAsync());
        Assert.Equal(0, host.Bodies.Count);
        if (Directory.Exists(_spill))
        {
            Assert.Empty(Directory.GetFileSystemEntries(_spill));
        }
    }

    /// <summary>Stores half a megabyte of a body, then fails as a full disk would, leaving the partial body to be cleaned up.</summary>
    private sealed class FailingMidStreamBodyStore(Testing.Fakes.InMemoryBodyStore inner) : IBodyStore
    {
        public async Task<long> WriteAsync(string queueId, Stream content, CancellationToken cancellationToken)
        {
            var buffer = new byte[512 * 1024];
            await content.ReadExactlyAsync(buffer, cancellationToken);
            await inner.WriteAsync(queueId, new MemoryStream(buffer), cancellationToken);
            throw new IOException("device error");
        }

        public Task<Stream> OpenReadAsync(string queueId, CancellationToken cancellationToken) => inner.OpenReadAsync(queueId, cancellationToken);

        public Task DeleteAsync(string queueId, CancellationToken cancellationToken) => inner.DeleteAsync(queueId, cancellationToken);
    }
}
