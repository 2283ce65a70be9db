using System.Diagnostics;
using BackupMx.Server;
using BackupMx.Smtp;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace BackupMx.EndToEnd.Tests;

/// <summary>deploy/systemd/backupmx.service: accepted by systemd, and saying what docs/install.md says it does.</summary>
public sealed class SystemdUnitTests
{
    private static readonly string UnitPath = Path.Combine(RepositoryRoot(), "deploy", "systemd", "backupmx.service");

    [Fact]
    public async Task Unit_SystemdAnalyzeVerify_ReportsNothing()
    {
        // test.sh installs systemd where it is missing; without it this test cannot check the unit.
        var analyze = new[] { "/usr/bin/systemd-analyze", "/bin/systemd-analyze" }.FirstOrDefault(File.Exists);
        Assert.True(analyze is not null, "systemd-analyze is not installed (apt-get install systemd; test.sh does it)");

        // Verified as installed, with ExecStart pointing at this machine's dotnet (verify checks
        // that the command exists) and under its own name (verify checks the file name too).
        using var folder = new TempFolder();
        var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "/usr/bin/dotnet";
        var unit = (await File.ReadAllTextAsync(UnitPath)).Replace("ExecStart=/usr/bin/dotnet ", $"ExecStart={dotnet} ", StringComparison.Ordinal);
        var copy = Path.Combine(folder.Path, "backupmx.service");
        await File.WriteAllTextAsync(copy, unit);

        var start = new ProcessStartInfo(analyze!) { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add("verify");
        start.ArgumentList.Add(copy);
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();

        // A directive systemd cannot parse is only a warning on stderr, with exit code 0.
        Assert.True(process.ExitCode == 0, await error);
        Assert.Equal(string.Empty, (await error).Trim());
        Assert.Equal(string.Empty, (await output).Trim());
    }

    [Fact]
    public void Unit_KeyDirectives_RunUnprivilegedWithSpoolInStateDirectory()
    {
        var directives = Directives();

        Assert.Equal("backupmx", directives["User"].Single());
        Assert.Equal("backupmx", directives["StateDirectory"].Single());
        Assert.Equal("BackupMx__Spool__Path=/var/lib/backupmx/spool", directives["Environment"].Single(e => e.StartsWith("BackupMx__Spool__Path=", StringComparison.Ordinal)));
        Assert.Equal("CAP_NET_BIND_SERVICE", directives["AmbientCapabilities"].Single());
        Assert.Equal("CAP_NET_BIND_SERVICE", directives["CapabilityBoundingSet"].Single());
        Assert.Equal("on-failure", directives["Restart"].Single());
        Assert.Equal("2", directives["RestartPreventExitStatus"].Single());
        Assert.Equal("/usr/bin/dotnet /opt/backupmx/BackupMx.Server.dll", directives["ExecStart"].Single());

        // SIGHUP reloads the relay's settings (ReloadProcessTests), so systemctl reload sends it.
        Assert.Equal("/bin/kill -HUP $MAINPID", directives["ExecReload"].Single());
    }

    [Fact]
    public void Unit_TimeoutStopSec_LongerThanTheSmtpGracePeriodAndTheHostsShutdown()
    {
        var stop = TimeSpan.FromSeconds(int.Parse(Directives()["TimeoutStopSec"].Single(), System.Globalization.CultureInfo.InvariantCulture));
        var services = new ServiceCollection();
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["BackupMx:HostName"] = "backup.test",
            ["BackupMx:Domains:0:Name"] = "example.test",
        }).Build();
        services.AddLogging();
        services.AddBackupMxEmbedded(configuration);
        using var provider = services.BuildServiceProvider();

        var grace = provider.GetRequiredService<IOptions<SmtpReceiverOptions>>().Value.ShutdownGracePeriod;
        var hostShutdown = provider.GetRequiredService<IOptions<HostOptions>>().Value.ShutdownTimeout;
        Assert.True(stop > grace && stop > hostShutdown, $"TimeoutStopSec {stop} must exceed the grace period {grace} and the host's shutdown {hostShutdown}");
    }

    private static ILookup<string, string> Directives() => File.ReadAllLines(UnitPath)
        .Select(l => l.Trim())
        .Where(l => l.Length > 0 && l[0] is not ('#' or ';' or '[') && l.Contains('='))
        .ToLookup(l => l[..l.IndexOf('=')], l => l[(l.IndexOf('=') + 1)..]);

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "BackupMx.Functions.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("the repository root (BackupMx.Functions.sln) is not above " + AppContext.BaseDirectory);
    }
}
