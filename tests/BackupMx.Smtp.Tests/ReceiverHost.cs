using System.Text;
using BackupMx.Core.Hosting;
using BackupMx.Core.Model;
using BackupMx.Core.Monitoring;
using BackupMx.Core.Ports;
using BackupMx.Testing;
using BackupMx.Testing.Fakes;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace BackupMx.Smtp.Tests;

/// <summary>The receiver with Core's intake over in-memory stores, on a free loopback port.</summary>
internal sealed class ReceiverHost : IAsyncDisposable
{
    private readonly ServiceProvider _provider;
    private readonly List<IHostedService> _hosted;
    private bool _stopped;

    private ReceiverHost(ServiceProvider provider, IConfigurationRoot configuration, int port, int[] ports)
    {
        _provider = provider;
        Configuration = configuration;
        Port = port;
        Ports = ports;
        Spool = provider.GetRequiredService<InMemorySpoolStore>();
        Bodies = provider.GetRequiredService<InMemoryBodyStore>();
        _hosted = provider.GetServices<IHostedService>().ToList();
    }

    public int Port { get; }

    /// <summary>The host's configuration: set values on it and call <see cref="IConfigurationRoot.Reload"/> to reload, as an edited file does.</summary>
    public IConfigurationRoot Configuration { get; }

    public int[] Ports { get; }

    public InMemorySpoolStore Spool { get; }

    public InMemoryBodyStore Bodies { get; }

    public T Get<T>() where T : notnull => _provider.GetRequiredService<T>();

    /// <param name="configureServices">Runs after the default registrations, so it can replace them (fakes, a FakeTimeProvider).</param>
    public static async Task<ReceiverHost> StartAsync(Dictionary<string, string?>? settings = null, int endpointCount = 1, Action<IServiceCollection>? configureServices = null)
    {
        var ports = Enumerable.Range(0, endpointCount).Select(_ => FreePort.Next()).ToArray();
        var services = new ServiceCollection();
        var configuration = AddReceiver(services, ports, settings);
        configureServices?.Invoke(services);

        var host = new ReceiverHost(services.BuildServiceProvider(), configuration, ports[0], ports);
        foreach (var hosted in host._hosted)
        {
            await hosted.StartAsync(CancellationToken.None);
        }

        return host;
    }

    /// <summary>
    /// The same receiver in a generic host, for what the host does around it (<see cref="HostRunner"/>,
    /// stopping on a failed service); not started. Its port is <paramref name="port"/>.
    /// </summary>
    public static IHost BuildGenericHost(out int port, Dictionary<string, string?>? settings = null, Action<IServiceCollection>? configureServices = null)
    {
        int[] ports = [FreePort.Next()];
        port = ports[0];
        return new HostBuilder()
            .ConfigureServices(services =>
            {
                AddReceiver(services, ports, settings);
                configureServices?.Invoke(services);
            })
            .Build();
    }

    private static IConfigurationRoot AddReceiver(IServiceCollection services, int[] ports, Dictionary<string, string?>? settings)
    {
        var values = new Dictionary<string, string?>
        {
            ["BackupMx:HostName"] = "mx.backup.test",
            ["BackupMx:Domains:0:Name"] = "example.test",
            ["BackupMx:Domains:1:Name"] = "other.test",
        };
        for (var i = 0; i < ports.Length; i++)
        {
            values[$"BackupMx:Smtp:Endpoints:{i}"] = $"127.0.0.1:{ports[i]}";
        }

        foreach (var (key, value) in settings ?? [])
        {
            values[key] = value;
        }

        var configuration = new ConfigurationBuilder().AddInMemoryCollection(values).Build();
        services.AddLogging();
        services.AddSingleton(TimeProvider.System);
        services.AddBackupMxCore(configuration);
        services.AddBackupMxConfigurationReload(configuration);
        services.AddSingleton<InMemorySpoolStore>();
        services.AddSingleton<ISpoolStore>(sp => sp.GetRequiredService<InMemorySpoolStore>());
        services.AddSingleton<InMemoryBodyStore>();
        services.AddSingleton<IBodyStore>(sp => sp.GetRequiredService<InMemoryBodyStore>());
        services.AddSingleton<IWakeUpQueue>(sp => new RecordingWakeUpQueue(sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton<IPrimaryStatusStore, InMemoryPrimaryStatusStore>();
        services.AddSingleton<IRecipientVerifier>(new ScriptedRecipientVerifier());
        services.AddBackupMxSmtpReceiver(configuration);
        return configuration;
    }

    public Task<RawSmtpClient> ConnectAsync() => RawSmtpClient.ConnectAsync(Port);

    /// <summary>A connection after a successful EHLO and MAIL FROM, ready for RCPT.</summary>
    public async Task<RawSmtpClient> ConnectInTransactionAsync()
    {
        var client = await ConnectAsync();
        Assert.StartsWith("250", await client.CommandAsync("EHLO client.test"));
        Assert.StartsWith("250", await client.CommandAsync("MAIL FROM:<a@remote.test>"));
        return client;
    }

    public async Task<List<SpoolRecord>> RecordsAsync()
    {
        var list = new List<SpoolRecord>();
        await foreach (var record in Spool.ListAllAsync(CancellationToken.None))
        {
            list.Add(record);
        }

        return list;
    }

    /// <summary>The stored body of a record without the Received header we prepend.</summary>
    public string BodyAfterReceived(string queueId)
    {
        var text = Encoding.Latin1.GetString(Bodies.Get(queueId));
        Assert.StartsWith("Received: ", text);
        var index = text.IndexOf("\r\n", StringComparison.Ordinal);
        while (index >= 0 && index + 2 < text.Length && text[index + 2] == '\t')
        {
            index = text.IndexOf("\r\n", index + 2, StringComparison.Ordinal);
        }

        return text[(index + 2)..];
    }

    public async Task StopAsync()
    {
        _stopped = true;
        foreach (var hosted in _hosted)
        {
            await hosted.StopAsync(CancellationToken.None);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_stopped)
        {
            await StopAsync();
        }

        await _provider.DisposeAsync();
    }
}
