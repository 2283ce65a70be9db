using System.Text;
using BackupMx.Core.Hosting;
using BackupMx.Core.Intake;
using BackupMx.Core.Monitoring;
using BackupMx.Core.Notifications;
using BackupMx.Core.Ports;
using BackupMx.Delivery;
using BackupMx.Testing;
using BackupMx.Testing.Fakes;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace BackupMx.Functions.Tests;

/// <summary>The Forward and ProbePrimaries functions over the real outbound delivery (MailKit) to an in-process primary.</summary>
public sealed class ForwardOverMailKitTests : IAsyncLifetime
{
    private readonly FakePrimary _primary = new();
    private ServiceProvider _services = null!;
    private RecordingWakeUpQueue _queue = null!;

    public async Task InitializeAsync()
    {
        await _primary.StartAsync();
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["BackupMx:HostName"] = "mx.backup.test",
            ["BackupMx:Domains:0:Name"] = "example.test",
            ["BackupMx:Domains:0:Primary"] = _primary.HostPort,
            ["BackupMx:Delivery:Timeout"] = "00:00:10",
        }).Build();
        _queue = new RecordingWakeUpQueue(TimeProvider.System);
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddBackupMxCore(configuration);
        services.AddBackupMxDelivery();
        services.AddBackupMxFunctionOptions(configuration);
        services.AddSingleton<ISpoolStore, InMemorySpoolStore>();
        services.AddSingleton<IBodyStore, InMemoryBodyStore>();
        services.AddSingleton<IPrimaryStatusStore, InMemoryPrimaryStatusStore>();
        services.AddSingleton<IWakeUpQueue>(_queue);
        services.AddSingleton<IWakeUpSource>(_queue);
        services.AddSingleton<Telemetry.SpoolGauges>();
        services.AddMetrics();
        services.AddSingleton<ForwardFunction>();
        services.AddSingleton<IConfiguration>(configuration);
        services.AddBackupMxNotifications(configuration);
        services.AddSingleton<INoticeStateStore>(new InMemoryNoticeStateStore(shared: true));
        services.AddSingleton<ProbePrimariesFunction>();
        _services = services.BuildServiceProvider(new ServiceProviderOptions { ValidateOnBuild = true });
    }

    public async Task DisposeAsync()
    {
        await _services.DisposeAsync();
        await _primary.DisposeAsync();
    }

    [Fact]
    public async Task Forward_PrimaryDownThenBack_DeliversOnceAfterTheProbeFlushes()
    {
        await _primary.StopAsync();
        await AcceptAsync();
        var forward = _services.GetRequiredService<ForwardFunction>();
        var probe = _services.GetRequiredService<ProbePrimariesFunction>();

        var down = await forward.ForwardDueAsync(CancellationToken.None);
        Assert.Equal(1, down.Completed);
        Assert.Empty(_primary.Messages);

        await _primary.StartAsync();
        await probe.ProbeAsync(CancellationToken.None);
        var up = await forward.ForwardDueAsync(CancellationToken.None);

        Assert.Equal(1, up.Completed);
        var delivered = Assert.Single(_primary.Messages);
        Assert.Equal(["bob@example.test"], delivered.AcceptedRecipients);
        Assert.EndsWith("Subject: hi\r\n\r\nHello.\r\n", Encoding.ASCII.GetString(delivered.Data), StringComparison.Ordinal);
        Assert.Equal(0, (await forward.ForwardDueAsync(CancellationToken.None)).Received);
    }

    private async Task AcceptAsync()
    {
        var result = await _services.GetRequiredService<IntakeService>().AcceptAsync(
            new IncomingMessage
            {
                Sender = "alice@sender.test",
                Recipients = [new IncomingRecipient("bob@example.test")],
                ClientAddress = "192.0.2.10",
                HeloName = "mail.sender.test",
                Content = MessageContent.FromBytes(Encoding.ASCII.GetBytes("From: alice@sender.test\r\nSubject: hi\r\n\r\nHello.\r\n")),
            },
            CancellationToken.None);
        Assert.IsType<IntakeResult.Accepted>(result);
    }
}
