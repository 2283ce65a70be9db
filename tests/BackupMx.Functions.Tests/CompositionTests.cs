using System.Diagnostics;
using System.Text.RegularExpressions;
using BackupMx.Azure;
using BackupMx.Core.Hosting;
using BackupMx.Core.Intake;
using BackupMx.Core.Model;
using BackupMx.Core.Monitoring;
using BackupMx.Core.Ports;
using BackupMx.Receiver;
using BackupMx.Telemetry;
using BackupMx.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace BackupMx.Functions.Tests;

/// <summary>The two Azure-mode hosts are composed as intended; nothing here talks to a service.</summary>
public sealed class CompositionTests
{
    private static readonly Dictionary<string, string?> Settings = new()
    {
        ["BackupMx:HostName"] = "mx.backup.test",
        ["BackupMx:Domains:0:Name"] = "example.test",
        ["BackupMx:Azure:BlobServiceUri"] = "https://account.blob.core.windows.net",
        ["BackupMx:Azure:TableServiceUri"] = "https://account.table.core.windows.net",
        ["BackupMx:Azure:ServiceBusNamespace"] = "backupmx.servicebus.windows.net",
        ["BackupMx:Azure:ServiceBusQueue"] = "wakeups",
    };

    [Fact]
    public async Task AddBackupMxFunctions_ResolvesEveryFunctionOverTheAzureAdapters()
    {
        // The Service Bus client only disposes asynchronously.
        await using var provider = FunctionsProvider(Settings);

        provider.GetRequiredService<IStartupValidator>().Validate();
        Assert.IsType<ForwardFunction>(ActivatorUtilities.CreateInstance<ForwardFunction>(provider));
        Assert.IsType<ProbePrimariesFunction>(ActivatorUtilities.CreateInstance<ProbePrimariesFunction>(provider));
        Assert.IsType<ExpireFunction>(ActivatorUtilities.CreateInstance<ExpireFunction>(provider));
        Assert.IsType<QueueAdminFunctions>(ActivatorUtilities.CreateInstance<QueueAdminFunctions>(provider));
        Assert.IsType<ServiceBusWakeUpQueue>(provider.GetRequiredService<IWakeUpSource>());
        Assert.IsType<ServiceBusWakeUpQueue>(provider.GetRequiredService<IWakeUpQueue>());
        Assert.IsType<TableSpoolStore>(provider.GetRequiredService<ISpoolStore>());
        Assert.IsType<TablePrimaryStatusStore>(provider.GetRequiredService<IPrimaryStatusStore>());
        Assert.NotNull(provider.GetRequiredService<SpoolGauges>());
        Assert.Equal(16, provider.GetRequiredService<IOptions<FunctionsOptions>>().Value.MaxConcurrentForwards);

        // The function app runs no in-process scheduling: its timers do that work.
        Assert.DoesNotContain(provider.GetServices<IHostedService>(), s => s is ForwardingService or PrimaryMonitorService or SweepService);
    }

    [Fact]
    public async Task ProbePrimaries_AsComposed_PrimaryThatNeverGreetsIsDownAfterProbeTimeout()
    {
        // The function app's own composition probes with Delivery:ProbeTimeout, not the deliveries'
        // Timeout. Only the status table is swapped for memory; nothing else is contacted.
        using var silent = new SilentServer();
        var settings = new Dictionary<string, string?>(Settings)
        {
            ["BackupMx:Domains:0:Primary"] = silent.HostPort,
            ["BackupMx:Delivery:Timeout"] = "00:00:30",
            ["BackupMx:Delivery:ProbeTimeout"] = "00:00:01",
        };
        await using var provider = FunctionsProvider(settings, s => s.Replace(ServiceDescriptor.Singleton<IPrimaryStatusStore, InMemoryPrimaryStatusStore>()));
        var probe = ActivatorUtilities.CreateInstance<ProbePrimariesFunction>(provider);

        var clock = Stopwatch.StartNew();
        await probe.ProbeAsync(CancellationToken.None);
        clock.Stop();

        var status = (await provider.GetRequiredService<IPrimaryStatusStore>().GetAsync("example.test", CancellationToken.None))?.Status;
        Assert.Equal(PrimaryState.Down, status?.State);
        Assert.Equal("451 4.4.1 127.0.0.1: no greeting within 1 s", status?.LastError);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"took {clock.Elapsed}");
    }

    [Theory]
    [InlineData("BackupMx:Functions:MaxConcurrentForwards", "0")]
    [InlineData("BackupMx:Functions:ForwardTimeBudget", "00:30:00")]
    [InlineData("BackupMx:Functions:MaxFailuresPerRun", "0")]
    public void AddBackupMxFunctions_BadFunctionsSetting_FailsAtStartNamingIt(string key, string value)
    {
        using var provider = FunctionsProvider(new Dictionary<string, string?>(Settings) { [key] = value });

        var error = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IStartupValidator>().Validate());
        Assert.Contains(key.Split(':')[^1], error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("00:04:00", "00:05:01")]
    [InlineData("00:08:00", "00:01:01")]
    public void AddBackupMxFunctions_RunBudgetAndAttemptTimeoutOutlastTheFunctionTimeout_FailsAtStartNamingBoth(string budget, string attempt)
    {
        // A delivery started at the end of a run must end before the host stops the run, or the
        // stopped run's message is delivered again by the next.
        using var provider = FunctionsProvider(new Dictionary<string, string?>(Settings)
        {
            ["BackupMx:Functions:ForwardTimeBudget"] = budget,
            ["BackupMx:Delivery:AttemptTimeout"] = attempt,
            ["BackupMx:Delivery:LeaseDuration"] = "00:15:00",
        });

        var error = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IStartupValidator>().Validate());
        Assert.Contains("BackupMx:Functions:ForwardTimeBudget", error.Message, StringComparison.Ordinal);
        Assert.Contains("BackupMx:Delivery:AttemptTimeout", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ReceiverHost_ComposesSmtpIntakeOverAzureWithoutForwarding()
    {
        var builder = ReceiverHost.CreateBuilder(["--environment", "Development"]);
        builder.Configuration.AddInMemoryCollection(Settings);
        builder.Configuration["BackupMx:Smtp:Endpoints:0"] = "127.0.0.1:2525";
        using var host = builder.Build();

        var hosted = host.Services.GetServices<IHostedService>().Select(s => s.GetType().Name).ToList();
        Assert.Contains("SmtpReceiverHostedService", hosted);
        // Service URIs: the infrastructure created the storage, so nothing tries to create it.
        Assert.DoesNotContain(nameof(AzureStorageInitializer), hosted);
        Assert.DoesNotContain(nameof(ForwardingService), hosted);
        Assert.DoesNotContain(nameof(PrimaryMonitorService), hosted);
        Assert.DoesNotContain(nameof(SweepService), hosted);
        Assert.NotNull(host.Services.GetRequiredService<IntakeService>());
        Assert.IsType<ServiceBusWakeUpQueue>(host.Services.GetRequiredService<IWakeUpQueue>());
        Assert.IsType<BlobBodyStore>(host.Services.GetRequiredService<IBodyStore>());
        Assert.Null(host.Services.GetService<IMessageTransport>());

        // Callouts at RCPT time, answers shared through the verifications table.
        var verifier = Assert.IsType<TableCachedRecipientVerifier>(host.Services.GetRequiredService<IRecipientVerifier>());
        Assert.Equal("verifications", verifier.Table.Name);
    }

    [Fact]
    public void Dockerfile_PublishesTheReceiverAndRunsItAsNonRootOnPort2525()
    {
        var root = FindRepoRoot();
        var dockerfile = File.ReadAllText(Path.Combine(root, "src", "BackupMx.Receiver", "Dockerfile"));

        Assert.Contains("ARG SDK_IMAGE=mcr.microsoft.com/dotnet/sdk:10.0", dockerfile, StringComparison.Ordinal);
        Assert.Contains("FROM ${SDK_IMAGE} AS build", dockerfile, StringComparison.Ordinal);
        Assert.Contains("ARG RUNTIME_IMAGE=mcr.microsoft.com/dotnet/runtime:10.0", dockerfile, StringComparison.Ordinal);
        Assert.Contains("FROM ${RUNTIME_IMAGE} AS runtime", dockerfile, StringComparison.Ordinal);
        Assert.Contains("dotnet publish src/BackupMx.Receiver/BackupMx.Receiver.csproj -c Release -o /app", dockerfile, StringComparison.Ordinal);
        Assert.Contains("EXPOSE 2525", dockerfile, StringComparison.Ordinal);
        Assert.Contains("BackupMx__Smtp__Endpoints__0=0.0.0.0:2525", dockerfile, StringComparison.Ordinal);
        Assert.Contains("USER $APP_UID", dockerfile, StringComparison.Ordinal);
        Assert.Contains("ENTRYPOINT [\"dotnet\", \"BackupMx.Receiver.dll\"]", dockerfile, StringComparison.Ordinal);

        // Every project the receiver builds from must have its project file copied before the restore.
        foreach (var project in new[] { "BackupMx.Core", "BackupMx.Smtp", "BackupMx.Azure", "BackupMx.Delivery", "BackupMx.Telemetry", "BackupMx.Receiver" })
        {
            Assert.Contains($"COPY src/{project}/{project}.csproj src/{project}/", dockerfile, StringComparison.Ordinal);
        }

        var references = ProjectClosure(root, Path.Combine(root, "src", "BackupMx.Receiver", "BackupMx.Receiver.csproj"));
        Assert.Equal(
            ["BackupMx.Azure", "BackupMx.Core", "BackupMx.Delivery", "BackupMx.Receiver", "BackupMx.Smtp", "BackupMx.Telemetry"],
            references.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Dockerfile_CopiesOnlyWhatDockerignoreKeeps()
    {
        var root = FindRepoRoot();
        var ignore = Dockerignore.Load(Path.Combine(root, ".dockerignore"));
        var dockerfile = File.ReadAllLines(Path.Combine(root, "src", "BackupMx.Receiver", "Dockerfile"));

        var sources = dockerfile
            .Select(l => l.Trim())
            .Where(l => l.StartsWith("COPY ", StringComparison.Ordinal) && !l.Contains("--from=", StringComparison.Ordinal))
            .SelectMany(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1..^1])
            .ToList();
        Assert.Contains("src/", sources);
        foreach (var source in sources)
        {
            Assert.True(File.Exists(Path.Combine(root, source)) || Directory.Exists(Path.Combine(root, source)), $"COPY {source}: no such file or folder.");
            Assert.False(ignore.Excludes(source.TrimEnd('/')), $"COPY {source}: excluded by .dockerignore.");
        }

        // Within src/, every source file of the projects the receiver builds from must reach the build.
        foreach (var project in ProjectClosure(root, Path.Combine(root, "src", "BackupMx.Receiver", "BackupMx.Receiver.csproj")))
        {
            var folder = Path.Combine(root, "src", project);
            var files = Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories)
                .Select(f => Path.GetRelativePath(root, f).Replace(Path.DirectorySeparatorChar, '/'))
                .Where(f => !f.Contains("/bin/", StringComparison.Ordinal) && !f.Contains("/obj/", StringComparison.Ordinal))
                .Where(f => f.EndsWith(".cs", StringComparison.Ordinal) || f.EndsWith(".csproj", StringComparison.Ordinal))
                .ToList();
            Assert.Contains($"src/{project}/{project}.csproj", files);
            Assert.All(files, f => Assert.False(ignore.Excludes(f), $"{f} is excluded by .dockerignore but the receiver build needs it."));
        }
    }

    [Theory]
    [InlineData(".tools/nuget/azure.bicep.commandline.linux-x64/0.49.2/tools/bicep")]
    [InlineData("tools/azurite/node_modules/azurite/package.json")]
    [InlineData("bench/out/results.md")]
    [InlineData("tests/BackupMx.Smtp.Tests/TestResults/run.trx")]
    [InlineData("src/BackupMx.Receiver/bin/Debug/net10.0/BackupMx.Receiver.dll")]
    [InlineData("src/BackupMx.Core/obj/project.assets.json")]
    [InlineData("src/BackupMx.Server/spool/spool.db")]
    [InlineData("spool/bodies/00/1234")]
    [InlineData("artifacts/receiver.tar")]
    [InlineData(".git/HEAD")]
    [InlineData("infra/main.bicep")]
    public void Dockerignore_KeepsLocalToolsOutputAndSpoolsOutOfTheBuildContext(string path)
    {
        var ignore = Dockerignore.Load(Path.Combine(FindRepoRoot(), ".dockerignore"));

        Assert.True(ignore.Excludes(path), $"{path} would be uploaded with the build context.");
    }

    private static ServiceProvider FunctionsProvider(Dictionary<string, string?> settings, Action<IServiceCollection>? replace = null)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddBackupMxFunctions(configuration);
        replace?.Invoke(services);
        return services.BuildServiceProvider();
    }

    private static HashSet<string> ProjectClosure(string root, string project)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var pending = new Stack<string>([project]);
        while (pending.TryPop(out var path))
        {
            if (!seen.Add(Path.GetFileNameWithoutExtension(path)))
            {
                continue;
            }

            var xml = System.Xml.Linq.XDocument.Load(path);
            foreach (var reference in xml.Descendants("ProjectReference"))
            {
                var include = ((string)reference.Attribute("Include")!).Replace('\\', Path.DirectorySeparatorChar);
                pending.Push(Path.GetFullPath(Path.Combine(Path.GetDirectoryName(path)!, include)));
            }
        }

        return seen;
    }

    /// <summary>
    /// The .dockerignore rules as Docker and azd's remote build apply them: patterns relative to
    /// the context root, <c>*</c> and <c>?</c> within one path segment, <c>**</c> across segments,
    /// <c>!</c> re-includes, the last matching pattern wins, and a path whose parent folder is
    /// excluded is excluded too.
    /// </summary>
    private sealed class Dockerignore
    {
        private readonly List<(Regex Pattern, bool Exception)> _rules;

        private Dockerignore(List<(Regex Pattern, bool Exception)> rules) => _rules = rules;

        public static Dockerignore Load(string path) => new(File.ReadAllLines(path)
            .Select(l => l.Trim())
            .Where(l => l.Length > 0 && !l.StartsWith('#'))
            .Select(l => l.StartsWith('!') ? (Text: l[1..], Exception: true) : (Text: l, Exception: false))
            .Select(r => (ToRegex(r.Text.Trim('/')), r.Exception))
            .ToList());

        public bool Excludes(string path)
        {
            var segments = path.Split('/');
            var candidates = Enumerable.Range(1, segments.Length).Select(n => string.Join('/', segments[..n])).ToList();
            var excluded = false;
            foreach (var (pattern, exception) in _rules)
            {
                if (candidates.Any(pattern.IsMatch))
                {
                    excluded = !exception;
                }
            }

            return excluded;
        }

        private static Regex ToRegex(string pattern)
        {
            var regex = new System.Text.StringBuilder("^");
            for (var i = 0; i < pattern.Length; i++)
            {
                if (pattern[i] == '*' && i + 1 < pattern.Length && pattern[i + 1] == '*')
                {
                    i++;
                    if (i + 1 < pattern.Length && pattern[i + 1] == '/')
                    {
                        i++;
                        regex.Append("(.*/)?");
                    }
                    else
                    {
                        regex.Append(".*");
                    }
                }
                else
                {
                    regex.Append(pattern[i] switch
                    {
                        '*' => "[^/]*",
                        '?' => "[^/]",
                        var c => Regex.Escape(c.ToString()),
                    });
                }
            }

            return new Regex(regex.Append('$').ToString(), RegexOptions.CultureInvariant);
        }
    }

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "BackupMx.Functions.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("Repository root not found above " + AppContext.BaseDirectory);
    }
}
