using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging;

namespace BackupMx.Smtp.Connection;

/// <summary>
/// Counts the open connections, in total and per client address, refuses one too many with
/// 421 4.7.0 before SmtpServer ever sees it, and tells a graceful stop when none is open any more.
/// The limits are read at each new connection: lowered by a reload, they refuse new connections
/// until enough open ones have ended, and close none.
/// </summary>
internal sealed class ConnectionGate(Func<ConnectionLimits> limits, ILogger logger)
{
    private static readonly TimeSpan RefusalWriteTimeout = TimeSpan.FromSeconds(5);

    private readonly Lock _lock = new();
    private readonly Dictionary<IPAddress, int> _perClient = [];
    private TaskCompletionSource _idle = CompletedIdle();
    private int _open;

    public int OpenSessions => Volatile.Read(ref _open);

    /// <summary>Takes a place for a connection from <paramref name="client"/>; false when a limit is reached.</summary>
    public bool TryOpen(IPAddress client)
    {
        var current = limits();
        lock (_lock)
        {
            var fromClient = _perClient.GetValueOrDefault(client);
            if (_open >= current.MaxConnections || fromClient >= current.MaxConnectionsPerIp)
            {
                return false;
            }

            _perClient[client] = fromClient + 1;
            if (_open++ == 0)
            {
                _idle = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }

            return true;
        }
    }

    /// <summary>Gives back the place <see cref="TryOpen"/> took.</summary>
    public void Close(IPAddress client)
    {
        lock (_lock)
        {
            if (_perClient.TryGetValue(client, out var count) && count > 1)
            {
                _perClient[client] = count - 1;
            }
            else
            {
                _perClient.Remove(client);
            }

            if (--_open == 0)
            {
                _idle.TrySetResult();
            }
        }
    }

    /// <summary>Completes when no accepted connection is open any more.</summary>
    public Task WhenIdleAsync()
    {
        lock (_lock)
        {
            return _idle.Task;
        }
    }

    // Off the accept loop, so that a client that does not read cannot stall accepting others.
    public Task RefuseAsync(TcpClient client, IPAddress address)
    {
        var current = limits();
        Log.ConnectionRefused(logger, address.ToString(), current.MaxConnections, current.MaxConnectionsPerIp);
        return SendAndCloseAsync(client, Encoding.ASCII.GetBytes("421 4.7.0 " + current.HostName + " Too many connections, try again later\r\n"));
    }

    /// <summary>Sends one reply to a connection that gets no session, and closes it.</summary>
    public static async Task SendAndCloseAsync(TcpClient client, byte[] reply)
    {
        try
        {
            using var timeout = new CancellationTokenSource(RefusalWriteTimeout);
            var stream = client.GetStream();
            await stream.WriteAsync(reply, timeout.Token).ConfigureAwait(false);
            client.Client.Shutdown(SocketShutdown.Send);
        }
        catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The client went away first; there is nobody left to tell.
        }
        finally
        {
            client.Dispose();
        }
    }

    private static TaskCompletionSource CompletedIdle()
    {
        var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        tcs.SetResult();
        return tcs;
    }
}

/// <summary>How many connections are served at once, in total and per client address.</summary>
internal sealed record ConnectionLimits(string HostName, int MaxConnections, int MaxConnectionsPerIp);
