using System.Net;
using System.Net.Sockets;
using BackupMx.Core.Hosting;

namespace BackupMx.Smtp.Connection;

/// <summary>
/// Opens the listening socket of one endpoint, and turns a failure to do so into a
/// <see cref="StartupException"/> whose message tells the operator what to change.
/// </summary>
internal static class ListenerBinding
{
    /// <exception cref="StartupException">The endpoint cannot be listened on.</exception>
    public static TcpListener Bind(IPEndPoint endpoint)
    {
        var tcp = new TcpListener(endpoint);
        if (endpoint.AddressFamily == AddressFamily.InterNetworkV6 && endpoint.Address.Equals(IPAddress.IPv6Any))
        {
            tcp.Server.DualMode = true;
        }

        try
        {
            tcp.Start();
            return tcp;
        }
        catch (SocketException ex)
        {
            tcp.Dispose();
            throw new StartupException(CannotListen(endpoint, ex), ex);
        }
    }

    /// <summary>An error message on one line, as the exit line and single-line logs want it.</summary>
    public static string Reason(Exception exception) => exception.Message.ReplaceLineEndings(" ");

    private static string CannotListen(IPEndPoint endpoint, SocketException ex) => ex.SocketErrorCode switch
    {
        SocketError.AddressAlreadyInUse => $"{endpoint} is already in use (another program listens there: stop it or change BackupMx:Smtp:Endpoints).",
        SocketError.AccessDenied => $"{endpoint} cannot be listened on ({ex.Message}); ports below 1024 need root or CAP_NET_BIND_SERVICE. See BackupMx:Smtp:Endpoints.",
        SocketError.AddressNotAvailable => $"{endpoint} cannot be listened on ({ex.Message}); the address is not one of this machine's. See BackupMx:Smtp:Endpoints.",
        _ => $"{endpoint} cannot be listened on ({ex.Message}). See BackupMx:Smtp:Endpoints.",
    };
}
