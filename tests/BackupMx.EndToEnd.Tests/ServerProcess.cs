using System.Diagnostics;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;

namespace BackupMx.EndToEnd.Tests;

/// <summary>
/// The built embedded server (<c>dotnet BackupMx.Server.dll</c>) as a child process, so a test
/// can kill it with SIGKILL, which no in-process host can simulate: no finally block, no
/// flush, no graceful shutdown runs.
/// </summary>
internal sealed class ServerProcess : IAsyncDisposable
{
    private readonly string[] _args;
    private readonly string _logPath;
    private Process? _process;

    public ServerProcess(string logPath, IEnumerable<string> args)
    {
        _logPath = logPath;
        _args = args.ToArray();
    }

    public int Starts { get; private set; }

    /// <summary>The server to run; default <see cref="LocateServerDll"/>. A copy lets a test edit its appsettings.json.</summary>
    public string? ServerDll { get; init; }

    public bool IsRunning => _process is { HasExited: false };

    /// <summary>src/BackupMx.Server/bin/&lt;configuration&gt;/net10.0/BackupMx.Server.dll, built with this test project.</summary>
    public static string LocateServerDll()
    {
        var testBin = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var configuration = testBin.Parent!.Name;
        for (var dir = testBin; dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "BackupMx.Functions.sln")))
            {
                var dll = Path.Combine(dir.FullName, "src", "BackupMx.Server", "bin", configuration, testBin.Name, "BackupMx.Server.dll");
                if (File.Exists(dll))
                {
                    return dll;
                }

                break;
            }
        }

        // The project reference also copies the server next to the tests.
        return Path.Combine(AppContext.BaseDirectory, "BackupMx.Server.dll");
    }

    /// <summary>Starts the server and waits until its listener greets on <paramref name="smtpPort"/>.</summary>
    public async Task StartAsync(int smtpPort, TimeSpan timeout)
    {
        var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";
        var start = new ProcessStartInfo(dotnet)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(ServerDll ?? LocateServerDll());
        foreach (var arg in _args)
        {
            start.ArgumentList.Add(arg);
        }

        // Off: tests run side by side, and the admin endpoint's default port is fixed.
        start.ArgumentList.Add("--BackupMx:Admin:Endpoint=");

        var process = Process.Start(start) ?? throw new InvalidOperationException("dotnet did not start");
        _process = process;
        Starts++;
        var log = TextWriter.Synchronized(new StreamWriter(_logPath, append: true, Encoding.UTF8) { AutoFlush = true });
        await log.WriteLineAsync($"===== start {Starts} pid {process.Id} =====");
        process.OutputDataReceived += (_, e) => Write(log, e.Data);
        process.ErrorDataReceived += (_, e) => Write(log, e.Data);
        process.Exited += (_, _) => log.Dispose();
        process.EnableRaisingEvents = true;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        var deadline = DateTime.UtcNow + timeout;
        while (!await GreetsAsync(smtpPort))
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"The server exited with {process.ExitCode} during start-up; see {_logPath}.");
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"The server did not greet on port {smtpPort} within {timeout}; see {_logPath}.");
            }

            await Task.Delay(50);
        }
    }

    /// <summary>Sends a POSIX signal (SIGHUP is 1) to the running server.</summary>
    public void Signal(int signal)
    {
        var process = _process ?? throw new InvalidOperationException("The server is not running.");
        if (Kill(process.Id, signal) != 0)
        {
            throw new InvalidOperationException($"kill({process.Id}, {signal}) failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    /// <summary>SIGKILL: the process dies at once, whatever it was doing.</summary>
    public async Task KillAsync()
    {
        var process = _process;
        if (process is null || process.HasExited)
        {
            return;
        }

        process.Kill(entireProcessTree: false);
        await process.WaitForExitAsync();
        process.Dispose();
        _process = null;
    }

    public string LogTail(int lines)
    {
        try
        {
            using var stream = new FileStream(_logPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            var all = new StreamReader(stream).ReadToEnd().Split('\n');
            return string.Join('\n', all.TakeLast(lines));
        }
        catch (IOException)
        {
            return string.Empty;
        }
    }

    public async ValueTask DisposeAsync() => await KillAsync();

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);

    private static void Write(TextWriter log, string? line)
    {
        if (line is null)
        {
            return;
        }

        try
        {
            log.WriteLine(line);
        }
        catch (ObjectDisposedException)
        {
            // Output after the exit event: nothing more to keep.
        }
    }

    private static async Task<bool> GreetsAsync(int port)
    {
        try
        {
            using var client = new TcpClient();
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            await client.ConnectAsync("127.0.0.1", port, cts.Token);
            var buffer = new byte[64];
            var read = await client.GetStream().ReadAsync(buffer, cts.Token);
            return read >= 3 && buffer[0] == (byte)'2' && buffer[1] == (byte)'2' && buffer[2] == (byte)'0';
        }
        catch (Exception ex) when (ex is SocketException or IOException or OperationCanceledException)
        {
            return false;
        }
    }
}
