using System.Net.Sockets;

namespace BackupMx.Smtp.Connection;

/// <summary>
/// The socket calls the listener makes for each connection: taking it off the listening socket and
/// readying it for a session. A seam, so that tests can make them fail as an overloaded host (out of
/// file descriptors) or a client gone in between does; the receiver uses this default.
/// </summary>
internal class ConnectionAcceptor
{
    public virtual ValueTask<TcpClient> AcceptAsync(TcpListener listener, CancellationToken cancellationToken) =>
        listener.AcceptTcpClientAsync(cancellationToken);

    // Replies go out whole, each in one write: Nagle would only hold them back.
    public virtual void Prepare(TcpClient client) => client.NoDelay = true;
}
