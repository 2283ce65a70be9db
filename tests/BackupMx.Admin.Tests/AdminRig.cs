using System.Net;
using System.Text;
using BackupMx.Core.Inspection;
using BackupMx.Core.Ports;
using BackupMx.Server;
using BackupMx.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

// One relay at a time: the gauges and counters of every host in the process share the meter name
// "BackupMx", so a second relay's values would show in the first one's /metrics.
[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace BackupMx.Admin.Tests;

/// <summary>
/// The embedded server as <c>dotnet run</c> composes it, with its admin endpoint on a free loopback
/// port, a fake primary (stopped or running) and fake time driving every schedule.
/// </summary>
internal sealed class AdminRig : IAsyncDisposable
{
    private readonly IHost _host;

    private AdminRig(IHost host, string domain, int smtpPort, int adminPort, FakePrimary primary, FakeTimeProvider time, TempFolder spool)
    {
        _host = host;
        Domain = domain;
        SmtpPort = smtpPort;
        AdminPort = adminPort;
        Primary = primary;
        Time = time;
        Spool = spool;
        Http = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false, UseCookies = false }) { BaseAddress = AdminUri };
    }

    public string Domain { get; }

    public int SmtpPort { get; }

    public int AdminPort { get; }

    public Uri AdminUri => new($"http://127.0.0.1:{AdminPort}/");

    public FakePrimary Primary { get; }

    public FakeTimeProvider Time { get; }

    public TempFolder Spool { get; }

    public HttpClient Http { get; }

    public IServiceProvider Services => _host.Services;

    public QueueInspector Inspector => Services.GetRequiredService<QueueInspector>();

    /// <summary>Starts the relay; <paramref name="primaryUp"/> false leaves the primary's port closed.</summary>
    public static async Task<AdminRig> StartAsync(string domain, bool primaryUp, params string[] extraArgs)
    {
        var spool = new TempFolder();
        var primary = new FakePrimary(port: FreePort.Next());
        if (primaryUp)
        {
            await primary.StartAsync();
        }

        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var smtpPort = FreePort.Next();
        var adminPort = FreePort.Next();
        var args = new List<string>
        {
            "--BackupMx:HostName=backup.test",
            $"--BackupMx:Smtp:Endpoints:0=127.0.0.1:{smtpPort}",
            $"--BackupMx:Domains:0:Name={domain}",
            $"--BackupMx:Domains:0:Primary=127.0.0.1:{primary.Port}",
            $"--BackupMx:Spool:Path={spool.Path}",
            "--BackupMx:Delivery:Timeout=00:00:10",
            $"--BackupMx:Admin:Endpoint=127.0.0.1:{adminPort}",
        };
        args.AddRange(extraArgs);
        var builder = EmbeddedHost.CreateBuilder(args.ToArray());
        builder.Services.AddSingleton<TimeProvider>(time);
        builder.Logging.AddFilter((_, level) => Environment.GetEnvironmentVariable("BACKUPMX_TEST_LOGS") == "1" ? level >= LogLevel.Debug : level >= LogLevel.Warning);
        var host = builder.Build();
        try
        {
            await host.StartAsync();
        }
        catch
        {
            host.Dispose();
            await primary.DisposeAsync();
            spool.Dispose();
            throw;
        }

        return new AdminRig(host, domain, smtpPort, adminPort, primary, time, spool);
    }

    public Task<SendResult> SendAsync(int n) =>
        SmtpSender.SendAsync(SmtpPort, "alice@sender.test", [$"bob@{Domain}"], Message(n, Domain));

    /// <summary>Sends <paramref name="count"/> messages while the primary is down and waits until the relay knows it is down.</summary>
    public async Task SpoolWithPrimaryDownAsync(int count)
    {
        await WaitUntilAsync(async () => (await Inspector.SummarizeAsync(CancellationToken.None)).Single(s => s.Domain == Domain).PrimaryState == PrimaryState.Down);
        for (var i = 1; i <= count; i++)
        {
            Assert.True((await SendAsync(i)).Accepted);
        }

        await WaitUntilAsync(async () => (await Inspector.ListAsync(Domain, CancellationToken.None)).Count == count);
    }

    public async Task<HttpResponseMessage> GetAsync(string path, string? bearer = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        if (bearer is not null)
        {
            request.Headers.Authorization = new("Bearer", bearer);
        }

        return await Http.SendAsync(request);
    }

    /// <summary>
    /// Moves the fake clock a second on. A flush makes due what was received or last tried before
    /// it; on a clock that nothing moves, the relay's attempt and the operator's flush would fall on
    /// the same instant, which real time never does.
    /// </summary>
    public static void OperatorActsLater(AdminRig rig) => rig.Time.Advance(TimeSpan.FromSeconds(1));

    public static async Task WaitUntilAsync(Func<Task<bool>> condition, int seconds = 30)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"condition not met within {seconds} s");
            }

            await Task.Delay(50);
        }
    }

    public static byte[] Message(int n, string domain) => Encoding.ASCII.GetBytes(
        "From: Alice <alice@sender.test>\r\n" +
        $"To: <bob@{domain}>\r\n" +
        $"Subject: dashboard message {n}\r\n" +
        $"Message-ID: <dash{n}@sender.test>\r\n" +
        "Date: Mon, 07 Dec 2026 05:00:00 +0000\r\n" +
        "\r\n" +
        $"Body of message {n}.\r\n");

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(15));
            await _host.StopAsync(cts.Token);
        }
        finally
        {
            _host.Dispose();
            await Primary.DisposeAsync();
            Spool.Dispose();
        }
    }
}

/// <summary>A temporary spool folder, removed afterwards.</summary>
internal sealed class TempFolder : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("backupmx-admin-").FullName;

    public void Dispose()
    {
        try
        {
            if (File.Exists(System.IO.Path.Combine(Path, "bodies")))
            {
                File.Delete(System.IO.Path.Combine(Path, "bodies"));
            }

            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>Prometheus text exposition format, read into samples: name, labels, value.</summary>
internal sealed record PromSample(string Name, IReadOnlyDictionary<string, string> Labels, double Value)
{
    public static IReadOnlyList<PromSample> Parse(string text)
    {
        var samples = new List<PromSample>();
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.TrimEnd('\r');
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }

            var labels = new Dictionary<string, string>(StringComparer.Ordinal);
            var brace = line.IndexOf('{');
            var space = line.IndexOf(' ');
            string name;
            string rest;
            if (brace >= 0 && brace < space)
            {
                name = line[..brace];
                var i = brace + 1;
                while (line[i] != '}')
                {
                    var eq = line.IndexOf('=', i);
                    var key = line[i..eq].Trim(',', ' ');
                    Assert.Equal('"', line[eq + 1]);
                    var value = new StringBuilder();
                    var j = eq + 2;
                    for (; line[j] != '"'; j++)
                    {
                        if (line[j] == '\\')
                        {
                            j++;
                            value.Append(line[j] == 'n' ? '\n' : line[j]);
                        }
                        else
                        {
                            value.Append(line[j]);
                        }
                    }

                    labels[key] = value.ToString();
                    i = j + 1;
                    if (line[i] == ',')
                    {
                        i++;
                    }
                }

                rest = line[(i + 1)..].Trim();
            }
            else
            {
                name = line[..space];
                rest = line[(space + 1)..].Trim();
            }

            // An optional timestamp follows the value.
            var valueText = rest.Split(' ')[0];
            var parsed = valueText switch
            {
                "+Inf" => double.PositiveInfinity,
                "-Inf" => double.NegativeInfinity,
                "NaN" => double.NaN,
                _ => double.Parse(valueText, System.Globalization.CultureInfo.InvariantCulture),
            };
            samples.Add(new PromSample(name, labels, parsed));
        }

        return samples;
    }
}

internal static class PromSampleExtensions
{
    public static double Single(this IReadOnlyList<PromSample> samples, string name, string? domain = null) =>
        Assert.Single(samples, s => s.Name == name && (domain is null || (s.Labels.TryGetValue("domain", out var d) && d == domain))).Value;

    public static void ShouldBeOk(this HttpResponseMessage response) => Assert.Equal(HttpStatusCode.OK, response.StatusCode);
}
