using System.Net;
using System.Net.Sockets;
using System.Text;
using BackupMx.Core.Hosting;
using BackupMx.Smtp.Limits;
using Microsoft.Extensions.Logging;
using SmtpServer;
using SmtpServer.IO;
using SmtpServer.Net;

namespace BackupMx.Smtp.Connection;

/// <summary>
/// Accepts connections for SmtpServer, wraps each in a <see cref="SessionPipe"/> and counts the
/// open ones: in total and per client address, refusing one too many with 421 4.7.0 before
/// SmtpServer ever sees it, and so that a graceful stop can refuse new connections and wait
/// for the open ones, and at the end cut off the ones still open with 421 4.3.2.
/// </summary>
/// <remarks>
/// SmtpServer's listen loop asks for the next connection again as soon as one is handed over or
/// fails, so after <see cref="StopAccepting"/> the listeners just wait for the final cancellation.
/// </remarks>
internal sealed class ReceiverListenerFactory(ConnectionLimits limits, InputLimits inputLimits, ILogger logger) : IEndpointListenerFactory
{
    public const string SessionPipeKey = "BackupMx:SessionPipe";

    private static readonly TimeSpan RefusalWriteTimeout = TimeSpan.FromSeconds(5);

    private readonly InputLimits _inputLimits = inputLimits;
    private readonly Lock _lock = new();
    private readonly List<Listener> _listeners = [];
    private readonly Dictionary<IPAddress, int> _perClient = [];
    private readonly HashSet<SessionPipe> _pipes = [];
    private TaskCompletionSource _idle = CompletedIdle();
    private int _open;
    private bool _stopped;
    private bool _cutOff;

    /// <summary>The reply to every session cut off at shutdown (RFC 5321 §3.8: transient, try again later).</summary>
    private byte[] ShutdownReply => Encoding.ASCII.GetBytes("421 4.3.2 " + limits.HostName + " Service shutting down, try again later\r\n");

    public int OpenSessions => Volatile.Read(ref _open);

    public IEndpointListener CreateListener(IEndpointDefinition endpointDefinition)
    {
        var tcp = new TcpListener(endpointDefinition.Endpoint);
        if (endpointDefinition.Endpoint.AddressFamily == AddressFamily.InterNetworkV6 && endpointDefinition.Endpoint.Address.Equals(IPAddress.IPv6Any))
        {
            tcp.Server.DualMode = true;
        }

        try
        {
            tcp.Start();
        }
        catch (SocketException ex)
        {
            tcp.Dispose();
            throw new StartupException(CannotListen(endpointDefinition.Endpoint, ex), ex);
        }

        var listener = new Listener(this, tcp);
        lock (_lock)
        {
            _listeners.Add(listener);
            if (_stopped)
            {
                listener.Stop();
            }
        }

        return listener;
    }

    private static string CannotListen(IPEndPoint endpoint, SocketException ex) => ex.SocketErrorCode switch
    {
        SocketError.AddressAlreadyInUse => $"{endpoint} is already in use (another program listens there: stop it or change BackupMx:Smtp:Endpoints).",
        SocketError.AccessDenied => $"{endpoint} cannot be listened on ({ex.Message}); ports below 1024 need root or CAP_NET_BIND_SERVICE. See BackupMx:Smtp:Endpoints.",
        SocketError.AddressNotAvailable => $"{endpoint} cannot be listened on ({ex.Message}); the address is not one of this machine's. See BackupMx:Smtp:Endpoints.",
        _ => $"{endpoint} cannot be listened on ({ex.Message}). See BackupMx:Smtp:Endpoints.",
    };

    /// <summary>Closes every listening socket; new connection attempts are refused from now on.</summary>
    public void StopAccepting()
    {
        lock (_lock)
        {
            _stopped = true;
            foreach (var listener in _listeners)
            {
                listener.Stop();
            }
        }
    }

    /// <summary>
    /// Makes every session still open answer 421 4.3.2 in place of its next reply (a 25x still goes
    /// out first) and close, before SmtpServer cancels them; a message whose body was still arriving
    /// is not accepted (and not kept): the 421 tells the sender to try again later. Returns how many
    /// sessions were open.
    /// </summary>
    public int CutOffOpenSessions()
    {
        var reply = ShutdownReply;
        lock (_lock)
        {
            _cutOff = true;
            foreach (var pipe in _pipes)
            {
                pipe.BeginShutdown(reply);
            }

            return _pipes.Count;
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

    private bool TryOpen(IPAddress client)
    {
        lock (_lock)
        {
            var fromClient = _perClient.GetValueOrDefault(client);
            if (_open >= limits.MaxConnections || fromClient >= limits.MaxConnectionsPerIp)
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

    private void Opened(SessionPipe pipe)
    {
        lock (_lock)
        {
            _pipes.Add(pipe);
            if (_cutOff)
            {
                pipe.BeginShutdown(ShutdownReply);
            }
        }
    }

    private void Closed(IPAddress client, SessionPipe pipe)
    {
        lock (_lock)
        {
            _pipes.Remove(pipe);
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

    // Off the accept loop, so that a client that does not read cannot stall accepting others.
    private Task RefuseAsync(TcpClient client, IPAddress address)
    {
        Log.ConnectionRefused(logger, address.ToString(), limits.MaxConnections, limits.MaxConnectionsPerIp);
        return SendAndCloseAsync(client, Encoding.ASCII.GetBytes("421 4.7.0 " + limits.HostName + " Too many connections, try again later\r\n"));
    }

    private static async Task SendAndCloseAsync(TcpClient client, byte[] reply)
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

    private static IPAddress ClientAddress(TcpClient client) =>
        ClientKey.Of((client.Client.RemoteEndPoint as IPEndPoint)?.Address ?? IPAddress.None);

    private static TaskCompletionSource CompletedIdle()
    {
        var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        tcs.SetResult();
        return tcs;
    }

    private sealed class Listener(ReceiverListenerFactory owner, TcpListener tcp) : IEndpointListener
    {
        private volatile bool _stopped;

        public void Stop()
        {
            _stopped = true;
            tcp.Stop();
        }

        public async Task<ISecurableDuplexPipe> GetPipeAsync(ISessionContext context, CancellationToken cancellationToken)
        {
            while (true)
            {
                TcpClient client;
                try
                {
                    if (_stopped)
                    {
                        await Task.Delay(Timeout.Infinite, cancellationToken).ConfigureAwait(false);
                    }

                    client = await tcp.AcceptTcpClientAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (Exception ex) when ((ex is SocketException or ObjectDisposedException or InvalidOperationException) && _stopped)
                {
                    // The listening socket was closed by StopAccepting: wait for the shutdown.
                    continue;
                }

                if (_stopped)
                {
                    // Accepted just as the stop closed the listening socket: no greeting, but 421.
                    _ = SendAndCloseAsync(client, owner.ShutdownReply);
                    continue;
                }

                var address = ClientAddress(client);
                if (!owner.TryOpen(address))
                {
                    _ = owner.RefuseAsync(client, address);
                    continue;
                }

                client.NoDelay = true;
                context.Properties[EndpointListener.LocalEndPointKey] = tcp.LocalEndpoint;
                context.Properties[EndpointListener.RemoteEndPointKey] = client.Client.RemoteEndPoint!;
                SessionPipe? pipe = null;
                pipe = new SessionPipe(client, owner._inputLimits, () => owner.Closed(address, pipe!));
                owner.Opened(pipe);
                context.Properties[SessionPipeKey] = pipe;
                return pipe;
            }
        }

        public void Dispose() => Stop();
    }
}

/// <summary>How many connections are served at once, in total and per client address.</summary>
internal sealed record ConnectionLimits(string HostName, int MaxConnections, int MaxConnectionsPerIp);
