using System.Net;
using System.Net.Sockets;
using BackupMx.Smtp.Limits;
using Microsoft.Extensions.Logging;
using SmtpServer;
using SmtpServer.IO;
using SmtpServer.Net;

namespace BackupMx.Smtp.Connection;

/// <summary>
/// One endpoint's accept loop for SmtpServer: accepts a connection, takes its place at the
/// <see cref="ConnectionGate"/>, and hands SmtpServer a <see cref="SessionPipe"/> registered in
/// the <see cref="SessionRegistry"/>.
/// </summary>
/// <remarks>
/// An error must not leave <see cref="GetPipeAsync"/>: SmtpServer would report it as a failed
/// session and ask again at once, thousands of times a second while the error lasts. A failed
/// accept is therefore retried after the <see cref="AcceptBackoff"/> pause, a connection whose
/// set-up fails is closed alone, and a listening socket that cannot go on is reported to
/// <see cref="ListenerHealth"/>.
/// </remarks>
internal sealed class ReceiverListener(
    IPEndPoint endpoint,
    TcpListener tcp,
    ConnectionAcceptor acceptor,
    ConnectionGate gate,
    SessionRegistry sessions,
    ListenerHealth health,
    Func<InputLimits> inputLimits,
    TimeProvider time,
    ILogger logger) : IEndpointListener
{
    private readonly AcceptBackoff _backoff = new(endpoint.ToString(), time, logger);
    private volatile bool _stopped;
    private volatile bool _failed;

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
                client = await acceptor.AcceptAsync(tcp, cancellationToken).ConfigureAwait(false);
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
                Log.AcceptAborted(logger, endpoint.ToString(), ListenerBinding.Reason(ex));
                continue;
            }
            catch (Exception ex) when (ListenerHealth.IsHopeless(ex))
            {
                _failed = true;
                health.ListenerFailed(endpoint, ex);
                continue;
            }
            catch (Exception ex)
            {
                await _backoff.PauseAsync(ex, cancellationToken).ConfigureAwait(false);
                continue;
            }

            _backoff.Succeeded();
            if (_stopped)
            {
                // Accepted just as the stop closed the listening socket: no greeting, but 421.
                _ = ConnectionGate.SendAndCloseAsync(client, sessions.ShutdownReply);
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
            if (!gate.TryOpen(address))
            {
                _ = gate.RefuseAsync(client, address);
                return null;
            }

            acceptor.Prepare(client);
            context.Properties[EndpointListener.LocalEndPointKey] = tcp.LocalEndpoint;
            context.Properties[EndpointListener.RemoteEndPointKey] = remote!;
            pipe = new SessionPipe(client, inputLimits(), () => Closed(address, pipe!));
            sessions.Add(pipe);
            context.Properties[ReceiverListenerFactory.SessionPipeKey] = pipe;
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
                gate.Close(address);
            }

            client.Dispose();
            var from = (remote as IPEndPoint)?.Address.ToString() ?? "an unknown address";
            if (ex is SocketException or IOException or ObjectDisposedException or InvalidOperationException)
            {
                // The client reset or went away between the accept and now: its doing.
                Log.ConnectionSetUpFailed(logger, from, ListenerBinding.Reason(ex));
            }
            else
            {
                Log.ConnectionSetUpError(logger, ex, from);
            }

            return null;
        }
    }

    private void Closed(IPAddress client, SessionPipe pipe)
    {
        sessions.Remove(pipe);
        gate.Close(client);
    }
}
