using BackupMx.Azure;
using BackupMx.Azure.Tests;
using BackupMx.Core.Expiry;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using BackupMx.Testing.Azurite;
using BackupMx.Testing.Contracts;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace BackupMx.Functions.Tests;

/// <summary>
/// Body blobs that no spool record refers to (a receiver killed between the upload and the record
/// commit) are deleted by the function app's sweep once older than the configured age, on Azurite.
/// </summary>
[Collection(AzuriteFixture.CollectionName)]
public sealed class OrphanBodyTests(AzuriteFixture azurite) : IAsyncLifetime
{
    private static readonly CancellationToken None = CancellationToken.None;
    private static readonly TimeSpan Age = TimeSpan.FromHours(1);

    // Blob times come from Azurite's clock, the real one; the sweep's from this one, started at it.
    private readonly FakeTimeProvider _time = new(DateTimeOffset.UtcNow);
    private ServiceProvider _services = null!;

    private BlobBodyStore Bodies => _services.GetRequiredService<BlobBodyStore>();

    private ISpoolStore Spool => _services.GetRequiredService<ISpoolStore>();

    private OrphanBodySweeper Sweeper => _services.GetRequiredService<OrphanBodySweeper>();

    public async Task InitializeAsync()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(AzureModeSettings.Create(azurite, "example.test", "127.0.0.1:2")).Build();
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddSingleton<TimeProvider>(_time);
        services.AddSingleton(new ServiceBusWakeUpQueue(new FakeSender(), new FakeReceiver()));
        services.AddBackupMxFunctions(configuration);
        _services = services.BuildServiceProvider();
        await _services.GetRequiredService<AzureStorageInitializer>().EnsureCreatedAsync(None);
    }

    public async Task DisposeAsync() => await _services.DisposeAsync();

    [Fact]
    public async Task Sweep_OrphanOlderThanTheAge_DeletedWhileYoungOrphanAndBodiesWithRecordsStay()
    {
        var orphan = await WriteBodyAsync();
        var live = await WriteBodyAsync();
        await Spool.CreateAsync(SpoolRecords.Sample(queueId: live), None);

        // Half an hour on, the orphan is still young: an intake might be committing its record.
        _time.Advance(TimeSpan.FromMinutes(30));
        Assert.Equal(0, await Sweeper.SweepAsync(Age, 100, None));
        Assert.NotNull(await Bodies.GetInfoAsync(orphan, None));

        _time.Advance(TimeSpan.FromMinutes(60));
        Assert.Equal(1, await Sweeper.SweepAsync(Age, 100, None));
        Assert.Null(await Bodies.GetInfoAsync(orphan, None));
        Assert.NotNull(await Bodies.GetInfoAsync(live, None));
        Assert.NotNull(await Spool.GetAsync("example.test", live, None));
    }

    [Fact]
    public async Task Sweep_ManyOrphans_AtMostTheLimitPerRunAndTheRestNextRun()
    {
        var orphans = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            orphans.Add(await WriteBodyAsync());
        }

        _time.Advance(TimeSpan.FromHours(2));
        Assert.Equal(2, await Sweeper.SweepAsync(Age, 2, None));
        Assert.Equal(1, await Sweeper.SweepAsync(Age, 2, None));
        Assert.Equal(0, await Sweeper.SweepAsync(Age, 2, None));
        foreach (var id in orphans)
        {
            Assert.Null(await Bodies.GetInfoAsync(id, None));
        }
    }

    [Fact]
    public async Task ExpireRun_SweepsOrphansOncePerInterval()
    {
        var first = await WriteBodyAsync();
        var expire = ActivatorExpire();
        _time.Advance(TimeSpan.FromHours(2));

        await expire.SweepAsync(None);
        Assert.Null(await Bodies.GetInfoAsync(first, None));

        // A second orphan, old by now, waits for the next interval (1 hour by default).
        var second = await WriteBodyAsync();
        _time.Advance(TimeSpan.FromMinutes(59));
        await expire.SweepAsync(None);
        Assert.NotNull(await Bodies.GetInfoAsync(second, None));

        _time.Advance(TimeSpan.FromMinutes(2));
        await expire.SweepAsync(None);
        Assert.Null(await Bodies.GetInfoAsync(second, None));
    }

    private ExpireFunction ActivatorExpire() => ActivatorUtilities.CreateInstance<ExpireFunction>(_services);

    private async Task<string> WriteBodyAsync()
    {
        var id = QueueId.New(_time.GetUtcNow());
        using var content = new MemoryStream("Subject: x\r\n\r\nbody\r\n"u8.ToArray());
        await Bodies.WriteAsync(id, content, None);
        return id;
    }
}
