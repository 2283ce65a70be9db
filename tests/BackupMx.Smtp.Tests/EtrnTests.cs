using System.Runtime.CompilerServices;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using BackupMx.Testing.Fakes;
using BackupMx.Testing.Contracts;
using Microsoft.Extensions.DependencyInjection;

namespace BackupMx.Smtp.Tests;

public sealed class EtrnTests
{
    private static readonly CancellationToken None = CancellationToken.None;

    /// <summary>example.test's primary is 127.0.0.1 (where the tests connect from); other.test has none.</summary>
    private static Task<ReceiverHost> StartAsync(Dictionary<string, string?>? settings = null, Action<IServiceCollection>? configureServices = null)
    {
        var values = new Dictionary<string, string?>
        {
            ["BackupMx:Domains:0:Primary"] = "127.0.0.1:2525",

            // The tests expect the flush's own reply (253 with its count), not the "started" one that a
            // flush slower than the wait gets; a busy machine must not turn one into the other.
            ["BackupMx:Smtp:EtrnReplyWait"] = "00:00:30",
        };
        foreach (var (key, value) in settings ?? [])
        {
            values[key] = value;
        }

        return ReceiverHost.StartAsync(values, configureServices: configureServices);
    }

    /// <summary>Spools a message and makes it look like one that failed and waits for its next retry.</summary>
    private static async Task<SpoolRecord> SpoolDeferredAsync(ReceiverHost host, string to = "user@example.test")
    {
        await using (var client = await host.ConnectAsync())
        {
            await client.BeginAsync(to: to);
            Assert.StartsWith("250", await client.DataAsync("Subject: x\r\n\r\nx\r\n.\r\n"));
        }

        var record = (await host.RecordsAsync()).Single(r => r.Recipients[0].Address == to);
        record = await host.Spool.UpdateAsync(record! with { Attempts = 3, NextAttemptAt = DateTimeOffset.UtcNow.AddHours(1) }, None);
        return record;
    }

    [Fact]
    public async Task Ehlo_AdvertisesEtrn()
    {
        await using var host = await StartAsync();
        await using var client = await host.ConnectAsync();

        Assert.Contains("ETRN", (await client.CommandAsync("EHLO client.test")).Split('\n').Select(l => l[4..]));
    }

    [Fact]
    public async Task Etrn_FromPrimaryWithDeferredMail_FlushesAndReportsCount()
    {
        await using var host = await StartAsync();
        var deferred = await SpoolDeferredAsync(host);
        await using var client = await host.ConnectAsync();
        await client.CommandAsync("EHLO primary.example.test");

        Assert.Equal("253 2.0.0 OK, 1 pending messages for node example.test started", await client.CommandAsync("ETRN example.test"));

        var record = await host.Spool.GetAsync("example.test", deferred.QueueId, None);
        Assert.Equal(0, record!.Attempts);
        Assert.True(record.NextAttemptAt <= DateTimeOffset.UtcNow);
        Assert.StartsWith("250", await client.CommandAsync("NOOP"));
    }

    [Fact]
    public async Task Etrn_SpoolWithFlushEpochs_MessageDueWithoutRewriteAndPumpWoken()
    {
        var pump = new BackupMx.Core.Forwarding.WakeUpSignal();
        await using var host = await StartAsync(configureServices: s =>
        {
            s.AddSingleton<IFlushEpochStore>(sp => sp.GetRequiredService<InMemorySpoolStore>());
            s.AddSingleton(pump);
        });
        var deferred = await SpoolDeferredAsync(host);
        pump.Reset();
        await using var client = await host.ConnectAsync();
        await client.CommandAsync("EHLO primary.example.test");

        Assert.Equal("253 2.0.0 OK, 1 pending messages for node example.test started", await client.CommandAsync("ETRN example.test"));

        Assert.True(pump.WaitAsync().IsCompleted);
        var record = await host.Spool.GetAsync("example.test", deferred.QueueId, None);
        Assert.Equal(0, record!.Attempts);
        Assert.True(record.NextAttemptAt <= DateTimeOffset.UtcNow);
        Assert.Equal(deferred.ETag, record.ETag);
    }

    [Fact]
    public async Task Etrn_NothingWaiting_251()
    {
        await using var host = await StartAsync();
        await using var client = await host.ConnectAsync();
        await client.CommandAsync("EHLO primary.example.test");

        Assert.Equal("251 2.0.0 OK, no messages waiting for node EXAMPLE.test", await client.CommandAsync("ETRN EXAMPLE.test."));
    }

    [Fact]
    public async Task Etrn_AtForm_FlushesDomainAndConfiguredSubdomains()
    {
        await using var host = await StartAsync(new()
        {
            ["BackupMx:Domains:2:Name"] = "sub.example.test",
            ["BackupMx:Domains:2:EtrnClients:0"] = "127.0.0.0/8",
        });
        await SpoolDeferredAsync(host);
        await SpoolDeferredAsync(host, "user@sub.example.test");
        await using var client = await host.ConnectAsync();
        await client.CommandAsync("EHLO primary.example.test");

        Assert.StartsWith("253 2.0.0 OK, 2 pending messages for node @example.test", await client.CommandAsync("ETRN @example.test"));
    }

    [Theory]
    [InlineData("ETRN #queue1", "459 ")]
    [InlineData("ETRN elsewhere.test", "459 ")]
    [InlineData("ETRN other.test", "459 ")]
    [InlineData("ETRN", "501 ")]
    [InlineData("ETRN example.test extra", "501 ")]
    [InlineData("ETRN exa<mple>.test", "501 ")]
    public async Task Etrn_NotAllowedOrBadSyntax_Refused(string command, string expected)
    {
        await using var host = await StartAsync();
        var deferred = await SpoolDeferredAsync(host, "user@other.test");
        await using var client = await host.ConnectAsync();
        await client.CommandAsync("EHLO client.test");

        Assert.StartsWith(expected, await client.CommandAsync(command));

        Assert.Equal(3, (await host.Spool.GetAsync("other.test", deferred.QueueId, None))!.Attempts);
        Assert.StartsWith("250", await client.CommandAsync("NOOP"));
    }

    [Fact]
    public async Task Etrn_ClientNotInEtrnClients_459()
    {
        await using var host = await StartAsync(new() { ["BackupMx:Domains:0:EtrnClients:0"] = "192.0.2.0/24" });
        await using var client = await host.ConnectAsync();
        await client.CommandAsync("EHLO client.test");

        Assert.StartsWith("459 4.7.1 Node example.test not allowed", await client.CommandAsync("ETRN example.test"));
    }

    [Fact]
    public async Task Etrn_ClientInEtrnClients_Allowed()
    {
        await using var host = await StartAsync(new() { ["BackupMx:Domains:1:EtrnClients:0"] = "127.0.0.1" });
        await using var client = await host.ConnectAsync();
        await client.CommandAsync("EHLO client.test");

        Assert.StartsWith("251 ", await client.CommandAsync("ETRN other.test"));
    }

    [Fact]
    public async Task Etrn_PrimaryGivenByName_ItsAddressesAllowed()
    {
        await using var host = await StartAsync(new() { ["BackupMx:Domains:0:Primary"] = "localhost:2525" });
        await using var client = await host.ConnectAsync();
        await client.CommandAsync("EHLO client.test");

        Assert.StartsWith("251 ", await client.CommandAsync("ETRN example.test"));
    }

    [Fact]
    public async Task Etrn_BeforeEhlo_503()
    {
        await using var host = await StartAsync();
        await using var client = await host.ConnectAsync();

        Assert.StartsWith("503 5.5.1 ", await client.CommandAsync("ETRN example.test"));
    }

    [Fact]
    public async Task Etrn_Pipelined_RepliesInOrder()
    {
        await using var host = await StartAsync();
        await using var client = await host.ConnectAsync();

        await client.SendRawAsync("EHLO primary.example.test\r\nETRN example.test\r\nMAIL FROM:<a@remote.test>\r\netrn other.test\r\nRCPT TO:<user@example.test>\r\n");

        Assert.StartsWith("250", await client.ReadReplyAsync());
        Assert.StartsWith("251 ", await client.ReadReplyAsync());
        Assert.StartsWith("250", await client.ReadReplyAsync());
        Assert.StartsWith("459 ", await client.ReadReplyAsync());
        Assert.StartsWith("250", await client.ReadReplyAsync());
    }

    [Fact]
    public async Task Etrn_FlushAlreadyRunning_458ThenAllowedAgain()
    {
        var gate = new TaskCompletionSource();
        await using var host = await StartAsync(
            new() { ["BackupMx:Smtp:EtrnReplyWait"] = "00:00:00.200" },
            configureServices: s => s.AddSingleton<ISpoolStore>(sp => new GatedListing(sp.GetRequiredService<InMemorySpoolStore>(), gate.Task)));
        await SpoolDeferredAsync(host);
        await using var client = await host.ConnectAsync();
        await client.CommandAsync("EHLO primary.example.test");

        Assert.Equal("250 2.0.0 OK, queuing for node example.test started", await client.CommandAsync("ETRN example.test"));
        Assert.StartsWith("458 ", await client.CommandAsync("ETRN example.test"));

        gate.SetResult();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        string reply;
        do
        {
            await Task.Delay(50);
            reply = await client.CommandAsync("ETRN example.test");
        }
        while (reply.StartsWith("458", StringComparison.Ordinal) && DateTime.UtcNow < deadline);

        // The first flush made the message due; there is nothing left to start.
        Assert.StartsWith("251 ", reply);
    }

    /// <summary>A spool whose domain listing waits for a gate, so that a flush stays running.</summary>
    private sealed class GatedListing(InMemorySpoolStore inner, Task gate) : ISpoolStore
    {
        public Task<SpoolRecord> CreateAsync(SpoolRecord record, CancellationToken cancellationToken) => inner.CreateAsync(record, cancellationToken);

        public Task<SpoolRecord?> GetAsync(string domain, string queueId, CancellationToken cancellationToken) => inner.GetAsync(domain, queueId, cancellationToken);

        public Task<SpoolRecord?> TryUpdateAsync(SpoolRecord record, CancellationToken cancellationToken) => inner.TryUpdateAsync(record, cancellationToken);

        public Task<bool> TryDeleteAsync(SpoolRecord record, CancellationToken cancellationToken) => inner.TryDeleteAsync(record, cancellationToken);

        public async IAsyncEnumerable<SpoolRecord> ListDomainAsync(string domain, [EnumeratorCancellation] CancellationToken cancellationToken)
        {
            await gate.WaitAsync(cancellationToken);
            await foreach (var record in inner.ListDomainAsync(domain, cancellationToken))
            {
                yield return record;
            }
        }

        public IAsyncEnumerable<SpoolRecord> ListDueAsync(DateTimeOffset dueBy, int max, CancellationToken cancellationToken) => inner.ListDueAsync(dueBy, max, cancellationToken);

        public IAsyncEnumerable<SpoolRecord> ListAllAsync(CancellationToken cancellationToken) => inner.ListAllAsync(cancellationToken);

        public IAsyncEnumerable<QuarantinedRecord> ListQuarantinedAsync(CancellationToken cancellationToken) => inner.ListQuarantinedAsync(cancellationToken);
    }
}
