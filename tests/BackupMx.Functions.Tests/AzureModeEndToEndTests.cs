using System.Net.Sockets;
using System.Text;
using BackupMx.Core.Ports;
using BackupMx.Receiver;
using BackupMx.Testing;
using BackupMx.Testing.Azurite;
using BackupMx.Testing.Fakes;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;

namespace BackupMx.Functions.Tests;

[CollectionDefinition(AzuriteFixture.CollectionName)]
public sealed class AzuriteCollection : ICollectionFixture<AzuriteFixture>;

/// <summary>
/// Azure mode end to end, as far as this machine allows: the receiver's composition on
/// loopback SMTP, over Blob and Table storage in Azurite; the in-memory queue in place of
/// Service Bus (there is no emulator); the function app's composition running the Forward
/// function; the real MailKit transport to an in-process fake primary. The two hosts are
/// separate service providers sharing only storage and the queue, as in Azure.
/// </summary>
[Collection(AzuriteFixture.CollectionName)]
public sealed class AzureModeEndToEndTests(AzuriteFixture azurite) : IAsyncLifetime
{
    private const string Original =
        "From: Alice <alice@sender.test>\r\n" +
        "To: bob@example.test\r\n" +
        "Subject: end to end\r\n" +
        "DKIM-Signature: v=1; a=rsa-sha256; d=sender.test; s=s1;\r\n" +
        "\tbh=abc=; b=def=\r\n" +
        "\r\n" +
        ".A line that starts with a dot.\r\n" +
        "Trailing spaces stay   \r\n" +
        "Bytes are opaque: caf\u00e9.\r\n";

    private readonly FakePrimary _primary = new();
    private RecordingWakeUpQueue _queue = null!;
    private IHost _receiver = null!;
    private ServiceProvider _functions = null!;
    private int _smtpPort;

    public async Task InitializeAsync()
    {
        await _primary.StartAsync();
        _queue = new RecordingWakeUpQueue(TimeProvider.System);
        _smtpPort = FreePort.Next();
        var settings = AzureModeSettings.Create(azurite, "example.test", _primary.HostPort, _smtpPort);

        // As arguments, so they are there when the services are registered (like appsettings
        // and environment variables in a real start): the storage connection string decides
        // whether the container and tables get created.
        var receiverBuilder = ReceiverHost.CreateBuilder(settings.Select(s => $"--{s.Key}={s.Value}").ToArray());
        UseInMemoryWakeUps(receiverBuilder.Services);
        _receiver = receiverBuilder.Build();
        await _receiver.StartAsync();

        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        var functions = new ServiceCollection();
        functions.AddLogging();
        functions.AddBackupMxFunctions(configuration);
        UseInMemoryWakeUps(functions);
        functions.AddSingleton<ForwardFunction>();
        _functions = functions.BuildServiceProvider();
    }

    public async Task DisposeAsync()
    {
        await _receiver.StopAsync();
        _receiver.Dispose();
        await _functions.DisposeAsync();
        await _primary.DisposeAsync();
    }

    [Fact]
    public async Task Message_ReceivedSpooledAndForwarded_ArrivesOnceByteForByteWithOneReceivedHeader()
    {
        var reply = await SendAsync("alice@sender.test", "bob@example.test", Original);
        Assert.StartsWith("250", reply, StringComparison.Ordinal);

        var forward = _functions.GetRequiredService<ForwardFunction>();
        var first = await forward.ForwardDueAsync(CancellationToken.None);
        var second = await forward.ForwardDueAsync(CancellationToken.None);

        Assert.Equal(1, first.Completed);
        Assert.Equal(0, second.Received);
        var delivered = Assert.Single(_primary.Messages);
        Assert.Equal("alice@sender.test", delivered.MailFrom);
        Assert.Equal(["bob@example.test"], delivered.AcceptedRecipients);

        var original = Encoding.UTF8.GetBytes(Original);
        var data = delivered.Data;
        Assert.True(data.Length > original.Length);
        Assert.Equal(original, data[(data.Length - original.Length)..]);
        var added = Encoding.ASCII.GetString(data[..(data.Length - original.Length)]);
        Assert.StartsWith("Received: from mail.sender.test", added, StringComparison.Ordinal);
        Assert.EndsWith("\r\n", added, StringComparison.Ordinal);

        // One header: every line after the first is a continuation (starts with white space).
        Assert.All(added.TrimEnd('\r', '\n').Split("\r\n").Skip(1), line => Assert.True(line.StartsWith(' ') || line.StartsWith('\t'), line));

        // Finished: the record and the body are gone from Azure storage.
        var spool = _functions.GetRequiredService<ISpoolStore>();
        await foreach (var left in spool.ListAllAsync(CancellationToken.None))
        {
            Assert.Fail("left in the spool: " + left.QueueId);
        }
    }

    private void UseInMemoryWakeUps(IServiceCollection services)
    {
        services.Replace(ServiceDescriptor.Singleton<IWakeUpQueue>(_queue));
        services.Replace(ServiceDescriptor.Singleton<IWakeUpSource>(_queue));
    }

    /// <summary>A plain SMTP client that sends the body bytes exactly as given (dot-stuffed, nothing else).</summary>
    private async Task<string> SendAsync(string from, string to, string body)
    {
        using var client = new TcpClient();
        await client.ConnectAsync("127.0.0.1", _smtpPort);
        await using var stream = client.GetStream();
        using var reader = new StreamReader(stream, Encoding.ASCII, false, 1024, leaveOpen: true);

        await ExpectAsync(reader, "220");
        await WriteAsync(stream, "EHLO mail.sender.test\r\n");
        await ExpectAsync(reader, "250");
        await WriteAsync(stream, $"MAIL FROM:<{from}> BODY=8BITMIME\r\n");
        await ExpectAsync(reader, "250");
        await WriteAsync(stream, $"RCPT TO:<{to}>\r\n");
        await ExpectAsync(reader, "250");
        await WriteAsync(stream, "DATA\r\n");
        await ExpectAsync(reader, "354");

        var stuffed = string.Join("\r\n", body.Split("\r\n").Select(l => l.StartsWith('.') ? "." + l : l));
        await stream.WriteAsync(Encoding.UTF8.GetBytes(stuffed));
        await WriteAsync(stream, ".\r\n");
        var reply = await ReadReplyAsync(reader);
        await WriteAsync(stream, "QUIT\r\n");
        return reply;
    }

    private static Task WriteAsync(NetworkStream stream, string text) => stream.WriteAsync(Encoding.ASCII.GetBytes(text)).AsTask();

    private static async Task ExpectAsync(StreamReader reader, string code)
    {
        var reply = await ReadReplyAsync(reader);
        Assert.True(reply.StartsWith(code, StringComparison.Ordinal), reply);
    }

    private static async Task<string> ReadReplyAsync(StreamReader reader)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var all = new StringBuilder();
        while (true)
        {
            var line = await reader.ReadLineAsync(timeout.Token) ?? throw new IOException("connection closed; so far: " + all);
            all.AppendLine(line);
            if (line.Length < 4 || line[3] != '-')
            {
                return all.ToString();
            }
        }
    }
}
