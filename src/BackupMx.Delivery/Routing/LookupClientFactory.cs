using System.Net;
using BackupMx.Core.Configuration;
using BackupMx.Core.Hosting;
using DnsClient;

namespace BackupMx.Delivery.Routing;

/// <summary>
/// DnsClient's <see cref="LookupClient"/> for <c>BackupMx:Dns:Servers</c>: the configured resolvers,
/// or the system's when none are configured.
/// </summary>
public static class LookupClientFactory
{
    /// <param name="cache">
    /// Cache answers (up to 5 minutes): delivery needs fresh answers after a DNS fix, but not a
    /// query per message. A one-shot check asks every time.
    /// </param>
    public static LookupClient Create(DnsOptions options, bool cache)
    {
        var servers = NameServers(options);
        var lookupOptions = servers.Count > 0 ? new LookupClientOptions([.. servers]) : new LookupClientOptions();
        lookupOptions.UseCache = cache;
        lookupOptions.MaximumCacheTimeout = TimeSpan.FromMinutes(5);
        lookupOptions.Timeout = TimeSpan.FromSeconds(5);
        lookupOptions.Retries = 2;
        lookupOptions.ThrowDnsErrors = false;

        // A configured resolver is the operator's choice: never fall back to the system's behind it.
        lookupOptions.AutoResolveNameServers = servers.Count == 0;
        return new LookupClient(lookupOptions);
    }

    /// <summary>
    /// The configured servers as endpoints. A host name is resolved here, once, by the system:
    /// throws <see cref="StartupException"/> naming the key when one does not resolve.
    /// </summary>
    public static IReadOnlyList<IPEndPoint> NameServers(DnsOptions options)
    {
        var endpoints = new List<IPEndPoint>();
        for (var i = 0; i < options.Servers.Count; i++)
        {
            var key = $"{BackupMxOptions.SectionName}:Dns:Servers:{i}";
            if (!HostPort.TryParse(options.Servers[i], DnsOptions.DefaultPort, out var server))
            {
                throw new StartupException($"{key} '{options.Servers[i]}' is not a host[:port].");
            }

            if (IPAddress.TryParse(server.Value.Host, out var literal))
            {
                endpoints.Add(new IPEndPoint(literal, server.Value.Port));
                continue;
            }

            IPAddress[] addresses;
            try
            {
                addresses = Dns.GetHostAddresses(server.Value.Host);
            }
            catch (System.Net.Sockets.SocketException ex)
            {
                throw new StartupException($"{key} '{options.Servers[i]}' does not resolve: {ex.Message}", ex);
            }

            if (addresses.Length == 0)
            {
                throw new StartupException($"{key} '{options.Servers[i]}' does not resolve to any address.");
            }

            endpoints.AddRange(addresses.Select(a => new IPEndPoint(a, server.Value.Port)));
        }

        return endpoints;
    }
}
