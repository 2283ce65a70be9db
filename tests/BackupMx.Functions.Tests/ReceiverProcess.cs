using System.Diagnostics;
using System.Net.Sockets;
using System.Text;

namespace BackupMx.Functions.Tests;

/// <summary>
/// The Azure-mode receiver (<c>BackupMx.Receiver.CrashHelper.dll</c>: the real ReceiverHost with a
/// durable wake-up fake and optional crash points) as a child process that a test can SIGKILL.
/// </summary>
internal sealed class ReceiverProcess(string logPath, IReadOnlyList<string> args) : IAsyncDisposable
{
    private readonly StringBuilder _tail = new();
    private Process? _process;

    public int Starts { get; private set; }

    public bool HasExited => _process is null || _process.HasExited;

    /// <summary>Starts the receiver with <paramref name="environment"/> and waits until it greets on <paramref name="smtpPort"/>.</summary>
    public async Task StartAsync(int smtpPort, IReadOnlyDictionary<string, string?> environment, TimeSpan timeout)
    {
        var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";
        var start = new ProcessStartInfo(dotnet)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "BackupMx.Receiver.CrashHelper.dll"));
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        foreach (var (name, value) in environment)
        {
            start.Environment[name] = value;
        }

        var process = Process.Start(start) ?? throw new InvalidOperationException("dotnet did not start");
        _process = process;
        Starts++;
        Write($"===== start {Starts} pid {process.Id} {string.Join(' ', environment.Select(e => e.Key + "=" + e.Value))} =====");
        process.OutputDataReceived += (_, e) => Write(e.Data);
        process.ErrorDataReceived += (_, e) => Write(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"the receiver exited with {process.ExitCode} before it listened:\n{Tail()}");
            }

            if (await GreetsAsync(smtpPort))
            {
                return;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"the receiver did not listen on {smtpPort} within {timeout}:\n{Tail()}");
            }

            await Task.Delay(100);
        }
    }

    /// <summary>Waits up to <paramref name="timeout"/> for the process to end by itself; true if it did.</summary>
    public async Task<bool> WaitForExitAsync(TimeSpan timeout)
    {
        if (_process is null)
        {
            return true;
        }

        using var cancel = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cancel.Token);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>SIGKILL (Process.Kill is SIGKILL on Linux), then waits until the process is gone.</summary>
    public async Task KillAsync()
    {
        if (_process is { HasExited: false } process)
        {
            process.Kill();
            await process.WaitForExitAsync();
        }
    }

    public string Tail()
    {
        lock (_tail)
        {
            var text = _tail.ToString();
            return text.Length > 6000 ? text[^6000..] : text;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await KillAsync();
        _process?.Dispose();
    }

    private static async Task<bool> GreetsAsync(int port)
    {
        try
        {
            using var client = new TcpClient();
            using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            await client.ConnectAsync("127.0.0.1", port, cancel.Token);
            var buffer = new byte[3];
            var read = await client.GetStream().ReadAsync(buffer, cancel.Token);
            return read == 3 && buffer.AsSpan().SequenceEqual("220"u8);
        }
        catch (Exception ex) when (ex is SocketException or IOException or OperationCanceledException)
        {
            return false;
        }
    }

    private void Write(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_tail)
        {
            _tail.AppendLine(line);
        }

        File.AppendAllText(logPath, line + "\n");
    }
}
