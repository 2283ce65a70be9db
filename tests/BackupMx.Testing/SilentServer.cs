// A primary that accepts TCP connections and never says a word: a mail server
// still starting up, a load balancer with no healthy backend, a firewall that
// accepts and blackholes. Only a timeout on our side ends such a session, so it
// shows which timeout a probe or a delivery used.
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace BackupMx.Testing;

public sealed class SilentServer : IDisposable
{
    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentQueue<Socket> _held = new();
    private readonly Task _acceptLoop;
    private int _connections;
    private bool _disposed;

    /// <param name="address">Default 127.0.0.1. Another loopback address (127.0.0.2) lets a second server share a port, as MX hosts do.</param>
    /// <param name="port">Default 0, a port of the kernel's choice: nothing restarts on it.</param>
    public SilentServer(IPAddress? address = null, int port = 0)
    {
        _listener = new TcpListener(address ?? IPAddress.Loopback, port);

        // A port a fake primary just let go of must be taken over at once, as FakePrimary takes it back.
        _listener.Server.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        _listener.Start();
        Address = ((IPEndPoint)_listener.LocalEndpoint).Address;
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _acceptLoop = AcceptLoopAsync(_stopping.Token);
    }

    public IPAddress Address { get; }

    public int Port { get; }

    /// <summary>"address:port", the form a Primary setting takes.</summary>
    public string HostPort => $"{Address}:{Port}";

    /// <summary>Connections accepted (and held open, unanswered) so far.</summary>
    public int ConnectionCount => Volatile.Read(ref _connections);

    /// <summary>Stops listening and closes every held connection; the port is free again.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _stopping.Cancel();
        _listener.Stop();
        try
        {
            _acceptLoop.GetAwaiter().GetResult();
        }
        catch (Exception)
        {
            // The loop ends with whatever the stopped listener threw.
        }

        while (_held.TryDequeue(out var socket))
        {
            socket.Dispose();
        }

        _stopping.Dispose();
    }

    private async Task AcceptLoopAsync(CancellationToken stopping)
    {
        while (!stopping.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptSocketAsync(stopping).ConfigureAwait(false);
            }
            catch (Exception)
            {
                return;
            }

            // Held, not closed: a close would tell the client at once that nobody is there.
            _held.Enqueue(socket);
            Interlocked.Increment(ref _connections);
        }
    }
}
