using BackupMx.Server;
using BackupMx.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace BackupMx.EndToEnd.Tests;

/// <summary>
/// The embedded server exactly as <c>dotnet run</c> composes it, on loopback ports and a
/// temporary spool, with a <see cref="FakeTimeProvider"/> driving every schedule.
/// </summary>
internal sealed class RelayHost : IAsyncDisposable
{
    private readonly IHost _host;

    private RelayHost(IHost host, int smtpPort)
    {
        _host = host;
        SmtpPort = smtpPort;
    }

    public int SmtpPort { get; }

    public IServiceProvider Services => _host.Services;

    public static Task<RelayHost> StartAsync(string spoolPath, int primaryPort, FakeTimeProvider time, int? bounceSmartHostPort = null, int? smtpPort = null, params string[] extraArgs) =>
        StartAsync(spoolPath, primaryPort, time, configure: null, bounceSmartHostPort, smtpPort, extraArgs);

    /// <param name="configure">Runs after the embedded composition: replace a service, add a logger provider.</param>
    public static async Task<RelayHost> StartAsync(string spoolPath, int primaryPort, FakeTimeProvider time, Action<HostApplicationBuilder>? configure, int? bounceSmartHostPort = null, int? smtpPort = null, params string[] extraArgs)
    {
        var port = smtpPort ?? FreePort.Next();
        var args = new List<string>
        {
            "--BackupMx:HostName=backup.test",
            $"--BackupMx:Smtp:Endpoints:0=127.0.0.1:{port}",
            "--BackupMx:Domains:0:Name=example.test",
            $"--BackupMx:Domains:0:Primary=127.0.0.1:{primaryPort}",
            $"--BackupMx:Spool:Path={spoolPath}",
            "--BackupMx:Delivery:Timeout=00:00:10",

            // Off: tests run side by side, and the admin endpoint's default port is fixed.
            "--BackupMx:Admin:Endpoint=",
        };
        if (bounceSmartHostPort is { } bounce)
        {
            args.Add($"--BackupMx:Bounce:SmartHost=127.0.0.1:{bounce}");
        }

        args.AddRange(extraArgs);
        var builder = EmbeddedHost.CreateBuilder(args.ToArray());
        builder.Services.AddSingleton<TimeProvider>(time);
        // BACKUPMX_TEST_LOGS=1 shows the relay's own log, down to Debug, when a test needs explaining.
        builder.Logging.AddFilter((category, level) => Environment.GetEnvironmentVariable("BACKUPMX_TEST_LOGS") == "1"
            ? level >= LogLevel.Debug
            : level >= LogLevel.Warning);
        configure?.Invoke(builder);
        var host = builder.Build();
        await host.StartAsync();
        return new RelayHost(host, port);
    }

    public async Task StopAsync()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        await _host.StopAsync(cts.Token);
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await StopAsync();
        }
        finally
        {
            _host.Dispose();
        }
    }
}

/// <summary>A temporary spool folder, removed afterwards.</summary>
internal sealed class TempFolder : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("backupmx-e2e-").FullName;

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
