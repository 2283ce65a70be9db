using System.Net;

namespace BackupMx.Delivery.Routing;

public enum DnsLookupStatus
{
    /// <summary>The name exists; <see cref="MxLookup.Records"/> may still be empty (NODATA).</summary>
    Ok,

    /// <summary>NXDOMAIN: the domain does not exist.</summary>
    NameDoesNotExist,

    /// <summary>SERVFAIL, timeout or any other failure: try again later.</summary>
    Failed,
}

public sealed record MxRecord(int Preference, string Host);

public sealed record MxLookup(DnsLookupStatus Status, IReadOnlyList<MxRecord> Records, string? Error = null)
{
    /// <summary>RFC 7505: a single MX with an empty host (".") says the domain accepts no mail.</summary>
    public bool IsNullMx => Status == DnsLookupStatus.Ok && Records.Count == 1 && Records[0].Host.Trim('.').Length == 0;
}

/// <summary>
/// The little DNS that delivery needs, behind an interface so that route selection
/// can be tested without a resolver.
/// </summary>
public interface IDnsResolver
{
    Task<MxLookup> LookupMxAsync(string domain, CancellationToken cancellationToken);

    /// <summary>A and AAAA addresses of a host; empty when it has none or the lookup failed.</summary>
    Task<IReadOnlyList<IPAddress>> LookupAddressesAsync(string host, CancellationToken cancellationToken);
}
