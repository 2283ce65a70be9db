using System.Net;
using System.Net.Sockets;

namespace BackupMx.Testing;

/// <summary>Free loopback TCP ports for servers under test.</summary>
public static class FreePort
{
    /// <summary>Binds 127.0.0.1:0, reads the port the OS chose and releases it again.</summary>
    public static int Next()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        try
        {
            return ((IPEndPoint)listener.LocalEndpoint).Port;
        }
        finally
        {
            listener.Stop();
        }
    }
}
