using System.Net;

namespace BackupMx.Core.Net;

public static class IPAddressExtensions
{
    /// <summary>
    /// The IPv4 address behind an IPv4-mapped IPv6 address (::ffff:192.0.2.1), which is how a
    /// dual-stack socket reports IPv4 peers; any other address unchanged. Compare, count and log
    /// client addresses only in this form, or one client shows up under two addresses.
    /// </summary>
    public static IPAddress Unmapped(this IPAddress address) =>
        address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
}
