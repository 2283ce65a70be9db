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
/// For the same reason an error must not leave <c>GetPipeAsync</c>: SmtpServer would report it as
/// a failed session and ask again at once, thousands of times a second while the error lasts. A
/// failed accept is therefore retried here after a pause, a connection whose set-up fails is
/// closed alone, and a listening socket that cannot go on is reported through <see cref="Failure"/>
/// for the receiver to stop the relay.
/// </remarks>
internal sealed class ReceiverListenerFactory(ConnectionLimits limits, InputLimits inputLimits, ConnectionAcceptor acceptor, TimeProvider time, ILogger logger) : IEndpointListenerFactory
{
    public const string SessionPipeKey = "BackupMx:SessionPipe";

    private static readonly TimeSpan RefusalWriteTimeout = TimeSpan.FromSeconds(5);

    private readonly InputLimits _inputLimits = inputLimits;
    private readonly ILogger _logger = logger;
    private readonly ConnectionAcceptor _acceptor = acceptor;
    private readonly TimeProvider _time = time;
    private readonly Lock _lock = new();
    private readonly List<Listener> _listeners = [];
    private readonly Dictionary<IPAddress, int> _perClient = [];
    private readonly HashSet<SessionPipe> _pipes = [];
    private readonly TaskCompletionSource<Exception> _failure = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TaskCompletionSource _idle = CompletedIdle();
    private StartupException? _startFailure;
    private int _open;
    private bool _stopped;
    private bool _cutOff;

    /// <summary>The reply to every session cut off at shutdown (RFC 5321 §3.8: transient, try again later).</summary>
    private byte[] ShutdownReply => Encoding.ASCII.GetBytes("421 4.3.2 " + limits.HostName + " Service shutting down, try again later\r\n");

    public int OpenSessions => Volatile.Read(ref _open);

    /// <summary>
    /// Completes, with the error to report, when a listener stopped accepting connections for good
    /// without being asked to. Never completes otherwise.
    /// </summary>
    public Task<Exception> Failure => _failure.Task;

    /// <summary>
    /// The first endpoint that could not be listened on. SmtpServer fails its start task only once
    /// every endpoint's loop has ended, so with several endpoints this is where a bind failure shows.
    /// </summary>
    public StartupException? StartFailure
    {
        get
        {
            lock (_lock)
            {
                return _startFailure;
            }
        }
    }

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
            var failure = new StartupException(CannotListen(endpointDefinition.Endpoint, ex), ex);
            lock (_lock)
            {
                _startFailure ??= failure;
            }

            throw failure;
        }

        var listener = new Listener(this, endpointDefinition.Endpoint, tcp);
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

    /// <summary>An error message on one line, as the exit line and single-line logs want it.</summary>
    internal static string Reason(Exception exception) => exception.Message.ReplaceLineEndings(" ");

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

    // A listener failing while the receiver stops is part of the stop, not a failure to report.
    private void ListenerFailed(IPEndPoint endpoint, Exception error)
    {
        lock (_lock)
        {
            if (_stopped)
            {
                return;
            }
        }

        Log.ListenerFailed(_logger, error, endpoint.ToString());
        _failure.TrySetResult(new InvalidOperationException($"the SMTP listener on {endpoint} stopped accepting connections: {Reason(error)}", error));
    }

    /// <summary>Gives back the place <see cref="TryOpen"/> took; <paramref name="pipe"/> is null when the session never started.</summary>
    private void Closed(IPAddress client, SessionPipe? pipe)
    {
        lock (_lock)
        {
            if (pipe is not null)
            {
                _pipes.Remove(pipe);
            }

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
        Log.ConnectionRefused(_logger, address.ToString(), limits.MaxConnections, limits.MaxConnectionsPerIp);
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

    private static TaskCompletionSource CompletedIdle()
    {
        var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        tcs.SetResult();
        return tcs;
    }

    private sealed class Listener(ReceiverListenerFactory owner, IPEndPoint endpoint, TcpListener tcp) : IEndpointListener
    {
        // After a failed accept: 50 ms, doubling up to 1 s, back to 50 ms once one succeeds. Short
        // enough that mail flows again soon after descriptors are freed, long enough that a lasting
        // error costs one attempt a second rather than a spinning core.
        private static readonly TimeSpan FirstPause = TimeSpan.FromMilliseconds(50);
        private static readonly TimeSpan LongestPause = TimeSpan.FromSeconds(1);

        // A lasting error is warned about when it starts and then once a minute, not per attempt.
        private static readonly TimeSpan WarningInterval = TimeSpan.FromMinutes(1);

        private volatile bool _stopped;
        private volatile bool _failed;

        // The current run of failed accepts. Only GetPipeAsync uses these, and SmtpServer calls it
        // for one endpoint only after the previous call has ended.
        private int _failures;
        private int _failuresSinceWarning;
        private long _firstFailure;
        private long _lastWarning;
        private TimeSpan _pause;

        public void Stop()
        {
            _stopped = true;
            tcp.Stop();
        }

        public async Task<ISecurableDuplexPipe> GetPipeAsync(ISessionContext context, CancellationToken cancellationToken)
        {
            while (true)
            {
                if (_stopped || _failed)
                {
                    // Stopped: nothing more to accept until SmtpServer's shutdown cancels. Failed:
                    // the receiver has been told and stops the relay.
                    await Task.Delay(Timeout.Infinite, cancellationToken).ConfigureAwait(false);
                }

                TcpClient client;
                try
                {
                    client = await owner._acceptor.AcceptAsync(tcp, cancellationToken).ConfigureAwait(false);
                }
                catch (Exception ex) when (cancellationToken.IsCancellationRequested)
                {
                    // SmtpServer's shutdown, whatever the socket made of it: SmtpServer takes this
                    // exception type quietly and would report any other as a failed session.
                    throw ex as OperationCanceledException ?? new OperationCanceledException(cancellationToken);
                }
                catch (Exception) when (_stopped)
                {
                    // The listening socket was closed by StopAccepting: wait for the shutdown.
                    continue;
                }
                catch (SocketException ex) when (ex.SocketErrorCode is SocketError.ConnectionAborted or SocketError.ConnectionReset)
                {
                    // A client that gave up between connecting and our accept (BSD, Windows): its
                    // doing, and the listening socket is fine. The next one at once.
                    Log.AcceptAborted(owner._logger, endpoint.ToString(), Reason(ex));
                    continue;
                }
                catch (Exception ex) when (IsHopeless(ex))
                {
                    _failed = true;
                    owner.ListenerFailed(endpoint, ex);
                    continue;
                }
                catch (Exception ex)
                {
                    await PauseAsync(ex, cancellationToken).ConfigureAwait(false);
                    continue;
                }

                AcceptingAgain();
                if (_stopped)
                {
                    // Accepted just as the stop closed the listening socket: no greeting, but 421.
                    _ = SendAndCloseAsync(client, owner.ShutdownReply);
                    continue;
                }

                if (SetUp(client, context) is { } pipe)
                {
                    return pipe;
                }
            }
        }

        public void Dispose() => Stop();

        /// <summary>
        /// Errors after which accepting again would fail the same way at once, for ever: the listening
        /// socket closed or disposed by something other than <see cref="Stop"/> (which marks the stop
        /// first), no longer listening (EINVAL, or TcpListener's "not listening"), or not a socket. And
        /// anything that is not a socket error at all, which would be a fault of ours. Retrying those
        /// would leave an MX that runs and accepts nothing; they stop the relay instead, and its
        /// supervisor starts it afresh. Every other socket error concerns the connection being
        /// accepted or a resource that comes back (EMFILE/ENFILE, ENOBUFS/ENOMEM, EPERM from a
        /// firewall, and the network errors Linux passes on from the new connection) and is retried.
        /// </summary>
        private static bool IsHopeless(Exception ex) => ex is not SocketException socket
            || socket.SocketErrorCode is SocketError.OperationAborted or SocketError.InvalidArgument or SocketError.NotSocket;

        private async Task PauseAsync(Exception error, CancellationToken cancellationToken)
        {
            var time = owner._time;
            var now = time.GetTimestamp();
            _failuresSinceWarning++;
            if (_failures++ == 0)
            {
                _firstFailure = now;
                _lastWarning = now;
                _failuresSinceWarning = 0;
                _pause = FirstPause;
                Log.AcceptFailed(owner._logger, endpoint.ToString(), Reason(error));
            }
            else if (time.GetElapsedTime(_lastWarning, now) >= WarningInterval)
            {
                Log.AcceptStillFailing(owner._logger, endpoint.ToString(), time.GetElapsedTime(_firstFailure, now), _failuresSinceWarning, Reason(error));
                _lastWarning = now;
                _failuresSinceWarning = 0;
            }

            var pause = _pause;
            _pause = pause * 2 < LongestPause ? pause * 2 : LongestPause;
            await Task.Delay(pause, time, cancellationToken).ConfigureAwait(false);
        }

        private void AcceptingAgain()
        {
            if (_failures > 0)
            {
                Log.AcceptingAgain(owner._logger, endpoint.ToString(), _failures, owner._time.GetElapsedTime(_firstFailure));
                _failures = 0;
            }
        }

        /// <summary>
        /// The session's pipe for an accepted connection, or null when the connection was refused or
        /// could not be set up: either way it is closed and the listener goes on with the next one.
        /// </summary>
        private SessionPipe? SetUp(TcpClient client, ISessionContext context)
        {
            EndPoint? remote = null;
            IPAddress? address = null;
            SessionPipe? pipe = null;
            try
            {
                remote = client.Client.RemoteEndPoint;
                address = ClientKey.Of((remote as IPEndPoint)?.Address ?? IPAddress.None);
                if (!owner.TryOpen(address))
                {
                    _ = owner.RefuseAsync(client, address);
                    return null;
                }

                owner._acceptor.Prepare(client);
                context.Properties[EndpointListener.LocalEndPointKey] = tcp.LocalEndpoint;
                context.Properties[EndpointListener.RemoteEndPointKey] = remote!;
                pipe = new SessionPipe(client, owner._inputLimits, () => owner.Closed(address, pipe!));
                owner.Opened(pipe);
                context.Properties[SessionPipeKey] = pipe;
                return pipe;
            }
            catch (Exception ex)
            {
                if (pipe is not null)
                {
                    // Gives the place back through the pipe's own close.
                    pipe.Dispose();
                }
                else if (address is not null)
                {
                    owner.Closed(address, null);
                }

                client.Dispose();
                var from = (remote as IPEndPoint)?.Address.ToString() ?? "an unknown address";
                if (ex is SocketException or IOException or ObjectDisposedException or InvalidOperationException)
                {
                    // The client reset or went away between the accept and now: its doing.
                    Log.ConnectionSetUpFailed(owner._logger, from, Reason(ex));
                }
                else
                {
                    Log.ConnectionSetUpError(owner._logger, ex, from);
                }

                return null;
            }
        }
    }
}

/// <summary>How many connections are served at once, in total and per client address.</summary>
internal sealed record ConnectionLimits(string HostName, int MaxConnections, int MaxConnectionsPerIp);
