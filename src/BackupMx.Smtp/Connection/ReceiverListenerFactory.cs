using System.Net.Sockets;
using BackupMx.Core.Hosting;
using BackupMx.Smtp.Limits;
using Microsoft.Extensions.Logging;
using SmtpServer;
using SmtpServer.Net;

namespace BackupMx.Smtp.Connection;

/// <summary>
/// SmtpServer's source of connections: one <see cref="ReceiverListener"/> per endpoint, sharing
/// the connection limits (<see cref="ConnectionGate"/>), the open sessions
/// (<see cref="SessionRegistry"/>) and the dead-listener report (<see cref="ListenerHealth"/>),
/// so that a graceful stop can refuse new connections, wait for the open ones, and at the end
/// cut off the ones still open with 421 4.3.2.
/// </summary>
/// <remarks>
/// SmtpServer's listen loop asks for the next connection again as soon as one is handed over or
/// fails, so after <see cref="StopAccepting"/> the listeners just wait for the final cancellation.
/// </remarks>
internal sealed class ReceiverListenerFactory : IEndpointListenerFactory
{
    public const string SessionPipeKey = "BackupMx:SessionPipe";

    private readonly ReceiverLimits _limits;
    private readonly ConnectionAcceptor _acceptor;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly ConnectionGate _gate;
    private readonly SessionRegistry _sessions;
    private readonly ListenerHealth _health;
    private readonly Lock _lock = new();
    private readonly List<ReceiverListener> _listeners = [];
    private StartupException? _startFailure;
    private bool _stopped;

    /// <param name="limits">Read at each new connection, so that a reload applies to the sessions that follow.</param>
    public ReceiverListenerFactory(string hostName, ReceiverLimits limits, ConnectionAcceptor acceptor, TimeProvider time, ILogger logger)
    {
        _limits = limits;
        _acceptor = acceptor;
        _time = time;
        _logger = logger;
        _gate = new ConnectionGate(() => limits.Connections, logger);
        _sessions = new SessionRegistry(hostName);
        _health = new ListenerHealth(IsStopped, logger);
    }

    public int OpenSessions => _gate.OpenSessions;

    /// <inheritdoc cref="ListenerHealth.Failure"/>
    public Task<Exception> Failure => _health.Failure;

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
        TcpListener tcp;
        try
        {
            tcp = ListenerBinding.Bind(endpointDefinition.Endpoint);
        }
        catch (StartupException failure)
        {
            lock (_lock)
            {
                _startFailure ??= failure;
            }

            throw;
        }

        var listener = new ReceiverListener(endpointDefinition.Endpoint, tcp, _acceptor, _gate, _sessions, _health, () => _limits.Input, _time, _logger);
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

    /// <inheritdoc cref="ListenerBinding.Reason"/>
    internal static string Reason(Exception exception) => ListenerBinding.Reason(exception);

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
    public int CutOffOpenSessions() => _sessions.CutOff();

    /// <summary>Completes when no accepted connection is open any more.</summary>
    public Task WhenIdleAsync() => _gate.WhenIdleAsync();

    private bool IsStopped()
    {
        lock (_lock)
        {
            return _stopped;
        }
    }
}
