// Azurite (the Azure Storage emulator) for tests, one process per test assembly.
//
// The pinned Azurite lives in tools/azurite at the repository root (package.json and
// package-lock.json; node_modules is not committed). If it is not installed yet the
// fixture runs `npm ci` there once, then starts Azurite in memory on three free
// loopback ports. It deliberately has no Azure SDK dependency: tests get a connection
// string and endpoints and build their own clients. Failure to start is an error, not
// a skip, so a broken emulator can never turn the Azure suites silently green.
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Xunit;

namespace BackupMx.Testing.Azurite;

/// <summary>
/// Starts Azurite for the tests of one assembly. Use it as an xunit collection fixture:
/// <code>
/// [CollectionDefinition(AzuriteFixture.CollectionName)]
/// public sealed class AzuriteCollection : ICollectionFixture&lt;AzuriteFixture&gt;;
/// </code>
/// (xunit wants the definition in the test assembly itself).
/// </summary>
public sealed class AzuriteFixture : IAsyncLifetime
{
    public const string CollectionName = "Azurite";

    /// <summary>The emulator's well-known development account.</summary>
    public const string AccountName = "devstoreaccount1";

    /// <summary>The emulator's well-known (public) development key.</summary>
    public const string AccountKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    /// <summary>Overrides the folder holding Azurite's package.json (default: tools/azurite under the repository root).</summary>
    public const string DirectoryVariable = "BACKUPMX_AZURITE_DIR";

    // Node loads Azurite in a few seconds, but a CI machine busy building and running other test
    // assemblies can take far longer; the deadline only exists to turn a hang into a message.
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(180);
    private static readonly TimeSpan InstallTimeout = TimeSpan.FromMinutes(5);

    private readonly StringBuilder _output = new();
    private string? _directory;
    private Process? _process;
    private string? _workDirectory;

    /// <summary>A fixture that runs the Azurite installed in <paramref name="azuriteDirectory"/> (the folder with its package.json).</summary>
    public static AzuriteFixture ForDirectory(string azuriteDirectory) => new() { _directory = azuriteDirectory };

    public int BlobPort { get; private set; }

    public int QueuePort { get; private set; }

    public int TablePort { get; private set; }

    public Uri BlobEndpoint => new($"http://127.0.0.1:{BlobPort}/{AccountName}");

    public Uri QueueEndpoint => new($"http://127.0.0.1:{QueuePort}/{AccountName}");

    public Uri TableEndpoint => new($"http://127.0.0.1:{TablePort}/{AccountName}");

    /// <summary>A storage connection string for Blob, Queue and Table on this instance.</summary>
    public string ConnectionString =>
        $"DefaultEndpointsProtocol=http;AccountName={AccountName};AccountKey={AccountKey};BlobEndpoint={BlobEndpoint};QueueEndpoint={QueueEndpoint};TableEndpoint={TableEndpoint};";

    /// <summary>Everything Azurite printed so far (for diagnosing a failing test).</summary>
    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    /// <summary>
    /// A fresh name valid both as a table name and a blob container name (lower-case letters and
    /// digits, starting with a letter), so tests sharing one Azurite never see each other's data.
    /// </summary>
    public static string UniqueName(string prefix = "t")
    {
        var clean = new string(prefix.ToLowerInvariant().Where(char.IsAsciiLetterOrDigit).ToArray());
        if (clean.Length == 0 || !char.IsAsciiLetter(clean[0]))
        {
            clean = "t" + clean;
        }

        var name = clean[..Math.Min(clean.Length, 30)] + Guid.NewGuid().ToString("N");
        return name[..Math.Min(name.Length, 63)];
    }

    public async Task InitializeAsync()
    {
        var directory = _directory ?? FindAzuriteDirectory();
        var entryPoint = Path.Combine(directory, "node_modules", "azurite", "dist", "src", "azurite.js");
        if (!File.Exists(entryPoint))
        {
            await InstallAsync(directory, entryPoint).ConfigureAwait(false);
        }

        _workDirectory = Path.Combine(Path.GetTempPath(), "backupmx-azurite-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_workDirectory);

        // Another process can still bind a port FreePort found free before Azurite does, so a
        // start that fails on an address in use is tried again with new ports.
        for (var attempt = 1; ; attempt++)
        {
            var ports = new[] { FreePort.Next(), FreePort.Next(), FreePort.Next() };
            (BlobPort, QueuePort, TablePort) = (ports[0], ports[1], ports[2]);
            try
            {
                await StartAsync(entryPoint).ConfigureAwait(false);
                return;
            }
            catch (InvalidOperationException) when (attempt < 3 && Output.Contains("EADDRINUSE", StringComparison.Ordinal))
            {
                Stop();
                lock (_output)
                {
                    _output.Clear();
                }
            }
        }
    }

    public Task DisposeAsync()
    {
        Stop();
        if (_workDirectory is not null)
        {
            try
            {
                Directory.Delete(_workDirectory, recursive: true);
            }
            catch (IOException)
            {
            }
            catch (UnauthorizedAccessException)
            {
            }
        }

        return Task.CompletedTask;
    }

    private async Task StartAsync(string entryPoint)
    {
        // In memory, so nothing is written; the empty working folder only keeps stray files out of the tree.
        var start = new ProcessStartInfo("node")
        {
            WorkingDirectory = _workDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[]
        {
            entryPoint,
            "--silent", "--skipApiVersionCheck", "--disableTelemetry", "--inMemoryPersistence",
            "--blobHost", "127.0.0.1", "--blobPort", BlobPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--queueHost", "127.0.0.1", "--queuePort", QueuePort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--tableHost", "127.0.0.1", "--tablePort", TablePort.ToString(System.Globalization.CultureInfo.InvariantCulture),
        })
        {
            start.ArgumentList.Add(argument);
        }

        try
        {
            _process = Process.Start(start) ?? throw new InvalidOperationException("Process.Start returned no process for node.");
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new InvalidOperationException("Could not start Azurite: 'node' was not found on PATH. Install Node.js 20 or later.", ex);
        }

        _process.OutputDataReceived += (_, e) => Append(e.Data);
        _process.ErrorDataReceived += (_, e) => Append(e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        AppDomain.CurrentDomain.ProcessExit += OnProcessExit;

        var deadline = DateTime.UtcNow + StartTimeout;
        var pending = new List<int> { BlobPort, QueuePort, TablePort };
        while (pending.Count > 0)
        {
            if (_process.HasExited)
            {
                _process.WaitForExit();
                throw new InvalidOperationException($"Azurite exited with code {_process.ExitCode} before listening on ports {BlobPort}/{QueuePort}/{TablePort}. Its output:\n{Output}");
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new InvalidOperationException($"Azurite did not listen on ports {string.Join("/", pending)} within {StartTimeout.TotalSeconds:0} s. Its output:\n{Output}");
            }

            foreach (var port in pending.ToList())
            {
                if (await AcceptsAsync(port).ConfigureAwait(false))
                {
                    pending.Remove(port);
                }
            }

            if (pending.Count > 0)
            {
                await Task.Delay(100).ConfigureAwait(false);
            }
        }
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            // Bounded: only start-up diagnostics matter, and --silent keeps the access log off anyway.
            if (_output.Length < 64 * 1024)
            {
                _output.AppendLine(line);
            }
        }
    }

    private void OnProcessExit(object? sender, EventArgs e) => Stop();

    private void Stop()
    {
        AppDomain.CurrentDomain.ProcessExit -= OnProcessExit;
        var process = _process;
        _process = null;
        if (process is null)
        {
            return;
        }

        try
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit(5000);
            }
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
        finally
        {
            process.Dispose();
        }
    }

    private static async Task<bool> AcceptsAsync(int port)
    {
        using var client = new TcpClient();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(1));
        try
        {
            await client.ConnectAsync(IPAddress.Loopback, port, timeout.Token).ConfigureAwait(false);
            return true;
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException)
        {
            return false;
        }
    }

    private static string FindAzuriteDirectory()
    {
        if (Environment.GetEnvironmentVariable(DirectoryVariable) is { Length: > 0 } configured)
        {
            return File.Exists(Path.Combine(configured, "package.json"))
                ? configured
                : throw new InvalidOperationException($"{DirectoryVariable}={configured} has no package.json.");
        }

        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "tools", "azurite");
            if (File.Exists(Path.Combine(candidate, "package.json")))
            {
                return candidate;
            }
        }

        throw new InvalidOperationException($"Could not find tools/azurite/package.json above {AppContext.BaseDirectory}; set {DirectoryVariable}.");
    }

    /// <summary>Runs npm ci once; a machine-wide lock file keeps parallel test assemblies from installing over each other.</summary>
    private static async Task InstallAsync(string directory, string entryPoint)
    {
        var lockPath = Path.Combine(Path.GetTempPath(), "backupmx-azurite-install.lock");
        var deadline = DateTime.UtcNow + InstallTimeout;
        FileStream? held = null;
        while (held is null)
        {
            try
            {
                held = new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(500).ConfigureAwait(false);
            }
        }

        await using (held)
        {
            if (File.Exists(entryPoint))
            {
                return;
            }

            var start = new ProcessStartInfo("npm")
            {
                WorkingDirectory = directory,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            foreach (var argument in new[] { "ci", "--no-audit", "--no-fund" })
            {
                start.ArgumentList.Add(argument);
            }

            using var npm = Process.Start(start) ?? throw new InvalidOperationException("Could not start npm.");
            var stdout = npm.StandardOutput.ReadToEndAsync();
            var stderr = npm.StandardError.ReadToEndAsync();
            using var timeout = new CancellationTokenSource(InstallTimeout);
            try
            {
                await npm.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                npm.Kill(entireProcessTree: true);
                throw new InvalidOperationException($"npm ci in {directory} did not finish within {InstallTimeout.TotalMinutes:0} minutes.");
            }

            if (npm.ExitCode != 0 || !File.Exists(entryPoint))
            {
                throw new InvalidOperationException($"npm ci in {directory} failed with exit code {npm.ExitCode}:\n{await stdout.ConfigureAwait(false)}\n{await stderr.ConfigureAwait(false)}");
            }
        }
    }
}
