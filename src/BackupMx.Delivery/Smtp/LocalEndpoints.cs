using System.Net;
using System.Net.NetworkInformation;
using BackupMx.Core.Configuration;
using BackupMx.Core.Net;
using Microsoft.Extensions.Options;

namespace BackupMx.Delivery.Smtp;

/// <summary>
/// Knows what "this server" looks like from the outside, so that delivery never talks to
/// itself: the addresses and ports our receiver listens on (<c>BackupMx:Smtp:Endpoints</c>, a
/// wildcard meaning every address of this machine) and our host name in a greeting or EHLO reply.
/// A route to ourselves is a configuration error (a Primary or an MX record pointing at the
/// backup); delivering would re-spool every message once per hop until the Received limit.
/// </summary>
internal sealed class LocalEndpoints(IOptions<BackupMxOptions> options)
{
    // Interface addresses change rarely (DHCP, a new VIP); a minute of staleness only delays detection.
    private const long RefreshMilliseconds = 60_000;

    private readonly Lock _lock = new();
    private HashSet<IPAddress> _interfaceAddresses = [];
    private long _refreshedAt = long.MinValue;

    /// <summary>True when <paramref name="address"/>:<paramref name="port"/> is one of our own SMTP listeners.</summary>
    public bool IsOwnListener(IPAddress address, int port)
    {
        address = Normalize(address);
        foreach (var endpoint in options.Value.Smtp.EffectiveEndpoints)
        {
            if (!HostPort.TryParse(endpoint, 25, out var listen) || listen.Value.Port != port || !IPAddress.TryParse(listen.Value.Host, out var listenAddress))
            {
                continue;
            }

            listenAddress = Normalize(listenAddress);
            if (listenAddress.Equals(IPAddress.Any) || listenAddress.Equals(IPAddress.IPv6Any)
                ? IsLocalAddress(address)
                : listenAddress.Equals(address))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>True when a greeting or EHLO reply names this server.</summary>
    public bool IsOwnName(string? name) =>
        !string.IsNullOrEmpty(name)
        && string.Equals(name.TrimEnd('.'), options.Value.HostName.TrimEnd('.'), StringComparison.OrdinalIgnoreCase);

    private bool IsLocalAddress(IPAddress address)
    {
        if (IPAddress.IsLoopback(address) || address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any))
        {
            return true;
        }

        lock (_lock)
        {
            var now = Environment.TickCount64;
            if (_refreshedAt == long.MinValue || now - _refreshedAt > RefreshMilliseconds)
            {
                _interfaceAddresses = ReadInterfaceAddresses();
                _refreshedAt = now;
            }

            return _interfaceAddresses.Contains(address);
        }
    }

    private static HashSet<IPAddress> ReadInterfaceAddresses()
    {
        var result = new HashSet<IPAddress>();
        try
        {
            foreach (var nic in NetworkInterface.GetAllNetworkInterfaces())
            {
                foreach (var unicast in nic.GetIPProperties().UnicastAddresses)
                {
                    result.Add(Normalize(unicast.Address));
                }
            }
        }
        catch (NetworkInformationException)
        {
            // Without the interface list only loopback and the explicit listen addresses are recognised.
        }

        return result;
    }

    private static IPAddress Normalize(IPAddress address)
    {
        address = address.Unmapped();

        // Scope ids (fe80::1%eth0) would make the same address compare unequal.
        return address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 && address.ScopeId != 0
            ? new IPAddress(address.GetAddressBytes())
            : address;
    }
}
