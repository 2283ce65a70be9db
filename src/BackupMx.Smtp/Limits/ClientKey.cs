using System.Net;
using System.Net.Sockets;
using BackupMx.Core.Net;

namespace BackupMx.Smtp.Limits;

/// <summary>What the per-client limits count by.</summary>
internal static class ClientKey
{
    /// <summary>
    /// The IPv4 address, or the IPv6 /64 the address is in: one host or site usually holds a whole
    /// /64, and counting single IPv6 addresses would let it rotate around any per-client limit.
    /// </summary>
    public static IPAddress Of(IPAddress address)
    {
        address = address.Unmapped();
        if (address.AddressFamily != AddressFamily.InterNetworkV6)
        {
            return address;
        }

        var bytes = address.GetAddressBytes();
        Array.Clear(bytes, 8, 8);
        return new IPAddress(bytes);
    }
}
