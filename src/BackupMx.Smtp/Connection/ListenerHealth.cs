using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;

namespace BackupMx.Smtp.Connection;

/// <summary>
/// Reports a listening socket that cannot go on, so that the receiver stops the relay (and its
/// supervisor starts it afresh) instead of leaving an MX that runs and accepts nothing.
/// </summary>
internal sealed class ListenerHealth(Func<bool> stopping, ILogger logger)
{
    private readonly TaskCompletionSource<Exception> _failure = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>
    /// Completes, with the error to report, when a listener stopped accepting connections for good
    /// without being asked to. Never completes otherwise.
    /// </summary>
    public Task<Exception> Failure => _failure.Task;

    /// <summary>
    /// Errors after which accepting again would fail the same way at once, for ever: the listening
    /// socket closed or disposed by something other than a stop (which marks the stop first), no
    /// longer listening (EINVAL, or TcpListener's "not listening"), or not a socket. And anything
    /// that is not a socket error at all, which would be a fault of ours. Every other socket error
    /// concerns the connection being accepted or a resource that comes back (EMFILE/ENFILE,
    /// ENOBUFS/ENOMEM, EPERM from a firewall, and the network errors Linux passes on from the new
    /// connection) and is retried.
    /// </summary>
    public static bool IsHopeless(Exception ex) => ex is not SocketException socket
        || socket.SocketErrorCode is SocketError.OperationAborted or SocketError.InvalidArgument or SocketError.NotSocket;

    // A listener failing while the receiver stops is part of the stop, not a failure to report.
    public void ListenerFailed(IPEndPoint endpoint, Exception error)
    {
        if (stopping())
        {
            return;
        }

        Log.ListenerFailed(logger, error, endpoint.ToString());
        _failure.TrySetResult(new InvalidOperationException($"the SMTP listener on {endpoint} stopped accepting connections: {ListenerBinding.Reason(error)}", error));
    }
}
