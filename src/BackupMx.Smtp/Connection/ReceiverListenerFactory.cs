using System.Net;
using System.Net.Sockets;
using SmtpServer;
using SmtpServer.IO;
using SmtpServer.Net;

namespace BackupMx.Smtp.Connection;

/// <summary>
/// Accepts connections for SmtpServer, wraps each in a <see cref="SessionPipe"/> and counts the
/// open ones, so that a graceful stop can refuse new connections and wait for the open ones.
/// </summary>
/// <remarks>
/// SmtpServer's listen loop asks for the next connection again as soon as one is handed over or
/// fails, so after <see cref="StopAccepting"/> the listeners just wait for the final cancellation.
/// </remarks>
internal sealed class ReceiverListenerFactory(long maxContentBytes) : IEndpointListenerFactory
{
    public const string SessionPipeKey = "BackupMx:SessionPipe";

    private readonly long _maxContentBytes = maxContentBytes;
    private readonly Lock _lock = new();
    private readonly List<Listener> _listeners = [];
    private TaskCompletionSource _idle = CompletedIdle();
    private int _open;
    private bool _stopped;

    public int OpenSessions => Volatile.Read(ref _open);

    public IEndpointListener CreateListener(IEndpointDefinition endpointDefinition)
    {
        var tcp = new TcpListener(endpointDefinition.Endpoint);
        if (endpointDefinition.Endpoint.AddressFamily == AddressFamily.InterNetworkV6 && endpointDefinition.Endpoint.Address.Equals(IPAddress.IPv6Any))
        {
            tcp.Server.DualMode = true;
        }

        tcp.Start();
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

    /// <summary>Completes when no accepted connection is open any more.</summary>
    public Task WhenIdleAsync()
    {
        lock (_lock)
        {
            return _idle.Task;
        }
    }

    private void Opened()
    {
        lock (_lock)
        {
            if (_open++ == 0)
            {
                _idle = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }
        }
    }

    private void Closed()
    {
        lock (_lock)
        {
            if (--_open == 0)
            {
                _idle.TrySetResult();
            }
        }
    }

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
            TcpClient client;
            while (true)
            {
                if (_stopped)
                {
                    await Task.Delay(Timeout.Infinite, cancellationToken).ConfigureAwait(false);
                }

                try
                {
                    client = await tcp.AcceptTcpClientAsync(cancellationToken).ConfigureAwait(false);
                    break;
                }
                catch (Exception ex) when ((ex is SocketException or ObjectDisposedException or InvalidOperationException) && _stopped)
                {
                    // The listening socket was closed by StopAccepting: wait for the shutdown.
                }
            }

            if (_stopped)
            {
                client.Dispose();
                await Task.Delay(Timeout.Infinite, cancellationToken).ConfigureAwait(false);
            }

            client.NoDelay = true;
            context.Properties[EndpointListener.LocalEndPointKey] = tcp.LocalEndpoint;
            context.Properties[EndpointListener.RemoteEndPointKey] = client.Client.RemoteEndPoint!;
            owner.Opened();
            var pipe = new SessionPipe(client, owner._maxContentBytes, owner.Closed);
            context.Properties[SessionPipeKey] = pipe;
            return pipe;
        }

        public void Dispose() => Stop();
    }
}
