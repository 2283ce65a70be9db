using BackupMx.Core.Configuration;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using BackupMx.Testing.Contracts;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using BackupMx.Testing;

namespace BackupMx.Local.Tests;

public sealed class LocalSpoolInitializerTests : IDisposable
{
    private static readonly CancellationToken None = CancellationToken.None;
    private readonly TempSpool _spool = new();

    public void Dispose() => _spool.Dispose();

    [Fact]
    public async Task RemoveOrphanedBodiesAsync_RemovesOnlyOldBodiesWithoutRecord()
    {
        var spool = _spool.OpenSpool();
        var bodies = _spool.OpenBodies();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var now = time.GetUtcNow();

        var live = SpoolRecords.Sample();
        await bodies.WriteAsync(live.QueueId, new MemoryStream([1]), None);
        live = await spool.CreateAsync(live, None);
        var orphan = QueueId.New(now);
        await bodies.WriteAsync(orphan, new MemoryStream([2]), None);
        var young = QueueId.New(now);
        await bodies.WriteAsync(young, new MemoryStream([3]), None);
        File.SetLastWriteTimeUtc(bodies.PathOf(live.QueueId), now.UtcDateTime.AddHours(-2));
        File.SetLastWriteTimeUtc(bodies.PathOf(orphan), now.UtcDateTime.AddMinutes(-5));
        File.SetLastWriteTimeUtc(bodies.PathOf(young), now.UtcDateTime.AddSeconds(-10));

        var initializer = new LocalSpoolInitializer(spool, bodies, TempSpool.OpenStatuses(spool), time, NullLogger<LocalSpoolInitializer>.Instance);
        var removed = await initializer.RemoveOrphanedBodiesAsync(now, LocalSpoolInitializer.OrphanGracePeriod, None);

        Assert.Equal(1, removed);
        Assert.False(File.Exists(bodies.PathOf(orphan)));
        Assert.True(File.Exists(bodies.PathOf(young)));
        Assert.True(File.Exists(bodies.PathOf(live.QueueId)));
    }

    [Fact]
    public async Task RunAsync_RemovesTemporaryFilesLeftByACrash_KeepsBodies()
    {
        var spool = _spool.OpenSpool();
        var bodies = _spool.OpenBodies();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var live = SpoolRecords.Sample();
        await bodies.WriteAsync(live.QueueId, new MemoryStream([1]), None);
        live = await spool.CreateAsync(live, None);
        var leftover = Path.Combine(Path.GetDirectoryName(bodies.PathOf(live.QueueId))!, $"{QueueId.New(time.GetUtcNow())}.{Guid.NewGuid():N}.tmp");
        await File.WriteAllBytesAsync(leftover, [1, 2]);

        await new LocalSpoolInitializer(spool, bodies, TempSpool.OpenStatuses(spool), time, NullLogger<LocalSpoolInitializer>.Instance).RunAsync(None);

        Assert.False(File.Exists(leftover));
        Assert.True(File.Exists(bodies.PathOf(live.QueueId)));
    }

    [Fact]
    public async Task RunAsync_ForgetsThePrimaryStatesOfThePreviousRun()
    {
        var spool = _spool.OpenSpool();
        var previousRun = TempSpool.OpenStatuses(spool);
        await previousRun.OverwriteAsync(new PrimaryStatus("example.test", PrimaryState.Up, SpoolRecords.T0, SpoolRecords.T0, null, "mx"), None);
        var statuses = TempSpool.OpenStatuses(spool);

        await new LocalSpoolInitializer(spool, _spool.OpenBodies(), statuses, new FakeTimeProvider(), NullLogger<LocalSpoolInitializer>.Instance).RunAsync(None);

        // Unknown again, so the primary's first answer flushes whatever waits for it.
        Assert.Null(await statuses.GetAsync("example.test", None));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task AddBackupMxLocalSpool_HostStart_RecoversBeforeOtherServicesStart(bool startConcurrently)
    {
        // A previous run left a claimed message and an orphaned body.
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var claimed = SpoolRecords.Sample(nextAttemptAt: time.GetUtcNow());
        string orphan;
        using (var spool = new SqliteSpoolStore(_spool.Path))
        {
            spool.Open();
            var bodies = new FileBodyStore(_spool.Path);
            bodies.Open();
            await bodies.WriteAsync(claimed.QueueId, new MemoryStream([1]), None);
            claimed = await spool.CreateAsync(claimed, None);
            claimed = await spool.UpdateAsync(claimed! with { LeaseOwner = "killed", LeaseExpiresAt = time.GetUtcNow().AddMinutes(15) }, None);
            orphan = QueueId.New(time.GetUtcNow());
            await bodies.WriteAsync(orphan, new MemoryStream([2]), None);
            File.SetLastWriteTimeUtc(bodies.PathOf(orphan), time.GetUtcNow().UtcDateTime.AddMinutes(-10));
        }

        var observer = new DueObserver();
        var builder = Host.CreateApplicationBuilder();
        builder.Services.AddSingleton<TimeProvider>(time);
        builder.Services.AddSingleton(observer);
        builder.Services.Configure<HostOptions>(o => o.ServicesStartConcurrently = startConcurrently);

        // Registered before the spool, as the SMTP listener and the delivery pump may be: the
        // initializer's work must still come first.
        builder.Services.AddHostedService<DueObserverService>();
        builder.Services.Configure<BackupMxOptions>(o => o.Spool.Path = _spool.Path);
        builder.Services.AddBackupMxLocalSpool();
        using var host = builder.Build();

        Assert.IsType<DueObserverService>(host.Services.GetServices<IHostedService>().First());
        Assert.Same(host.Services.GetRequiredService<SqliteSpoolStore>(), host.Services.GetRequiredService<ISpoolStore>());
        Assert.Same(host.Services.GetRequiredService<FileBodyStore>(), Assert.IsType<LocalBodyStore>(host.Services.GetRequiredService<IBodyStore>()).Files);

        await host.StartAsync(None);
        try
        {
            Assert.Equal([claimed.QueueId], observer.DueAtStart);
            Assert.Equal(0, observer.BodiesAtStart);
            Assert.False(File.Exists(host.Services.GetRequiredService<FileBodyStore>().PathOf(orphan)));
            Assert.True(File.Exists(Path.Combine(_spool.Path, SqliteSpoolStore.FileName)));
        }
        finally
        {
            await host.StopAsync(None);
        }
    }

    [Fact]
    public async Task AddBackupMxLocalSpool_RelativePath_ResolvesAgainstCurrentDirectoryAndCreatesItOnlyWhenOpened()
    {
        var relative = Path.GetRelativePath(Environment.CurrentDirectory, Path.Combine(_spool.Path, "nested", "spool"));
        var services = new ServiceCollection();
        services.AddLogging();
        services.Configure<BackupMxOptions>(o => o.Spool.Path = relative);
        services.AddBackupMxLocalSpool();
        services.AddBackupMxLocalSpool();
        using var provider = services.BuildServiceProvider();

        Assert.Single(services, d => d.ImplementationType == typeof(LocalSpoolInitializer));
        var bodies = provider.GetRequiredService<FileBodyStore>();
        var spool = provider.GetRequiredService<SqliteSpoolStore>();
        Assert.Equal(Path.Combine(_spool.Path, "nested", "spool", "bodies"), bodies.Root);
        Assert.Equal(Path.Combine(_spool.Path, "nested", "spool", SqliteSpoolStore.FileName), spool.DatabasePath);

        // Resolving the stores touches nothing on disk (an operator command resolves them before
        // it knows whether the spool exists); opening them creates the spool.
        provider.GetRequiredService<SqlitePrimaryStatusStore>();
        Assert.False(Directory.Exists(Path.Combine(_spool.Path, "nested")));
        Assert.False(spool.IsOpen);
        await Assert.ThrowsAsync<InvalidOperationException>(() => spool.GetQueueIdsAsync(None));
        Assert.False(Directory.Exists(Path.Combine(_spool.Path, "nested")));

        await provider.OpenLocalSpoolAsync(None);
        await provider.OpenLocalSpoolAsync(None);
        Assert.True(spool.IsOpen);
        Assert.True(File.Exists(spool.DatabasePath));
        Assert.True(Directory.Exists(bodies.Root));
        Assert.Empty(await spool.GetQueueIdsAsync(None));
        Assert.Empty(await provider.GetRequiredService<SqlitePrimaryStatusStore>().ListAsync(None));
    }

    [Fact]
    public async Task AddBackupMxLocalSpool_HostStartOnAMissingFolder_CreatesTheSpool()
    {
        var path = Path.Combine(_spool.Path, "first", "start");
        var builder = Host.CreateApplicationBuilder();
        builder.Services.Configure<BackupMxOptions>(o => o.Spool.Path = path);
        builder.Services.AddBackupMxLocalSpool();
        using var host = builder.Build();

        await host.StartAsync(None);
        try
        {
            Assert.True(File.Exists(Path.Combine(path, SqliteSpoolStore.FileName)));
            Assert.True(Directory.Exists(host.Services.GetRequiredService<FileBodyStore>().Root));
            Assert.Empty(await host.Services.GetRequiredService<SqliteSpoolStore>().GetQueueIdsAsync(None));
        }
        finally
        {
            await host.StopAsync(None);
        }
    }

    public sealed class DueObserver
    {
        public List<string>? DueAtStart { get; set; }

        /// <summary>Orphaned bodies still present when the service started.</summary>
        public int? BodiesAtStart { get; set; }
    }

    /// <summary>Stands for the forwarding pump: what does it see when it starts?</summary>
    public sealed class DueObserverService(ISpoolStore spool, FileBodyStore bodies, DueObserver observer, TimeProvider time) : IHostedService
    {
        public async Task StartAsync(CancellationToken cancellationToken)
        {
            var due = new List<string>();
            await foreach (var record in spool.ListDueAsync(time.GetUtcNow(), 100, cancellationToken))
            {
                due.Add(record.QueueId);
            }

            observer.DueAtStart = due;
            var live = due.ToHashSet();
            observer.BodiesAtStart = bodies.EnumerateBodies().Count(b => !live.Contains(b.QueueId));
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
