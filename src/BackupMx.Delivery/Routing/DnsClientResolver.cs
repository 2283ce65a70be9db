using System.Net;
using DnsClient;
using DnsClient.Protocol;

namespace BackupMx.Delivery.Routing;

/// <summary><see cref="IDnsResolver"/> over DnsClient's <see cref="ILookupClient"/>.</summary>
public sealed class DnsClientResolver(ILookupClient lookup) : IDnsResolver
{
    public async Task<MxLookup> LookupMxAsync(string domain, CancellationToken cancellationToken)
    {
        IDnsQueryResponse response;
        try
        {
            response = await lookup.QueryAsync(domain, QueryType.MX, QueryClass.IN, cancellationToken).ConfigureAwait(false);
        }
        catch (DnsResponseException ex) when (ex.Code == DnsResponseCode.NotExistentDomain)
        {
            return new MxLookup(DnsLookupStatus.NameDoesNotExist, [], ex.Message);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            return new MxLookup(DnsLookupStatus.Failed, [], ex.Message);
        }

        if (response.HasError)
        {
            var status = response.Header.ResponseCode == DnsHeaderResponseCode.NotExistentDomain
                ? DnsLookupStatus.NameDoesNotExist
                : DnsLookupStatus.Failed;
            return new MxLookup(status, [], response.ErrorMessage);
        }

        var records = response.Answers.MxRecords()
            .Select(mx => new MxRecord(mx.Preference, mx.Exchange.Value.TrimEnd('.')))
            .ToList();
        return new MxLookup(DnsLookupStatus.Ok, records);
    }

    public async Task<IReadOnlyList<IPAddress>> LookupAddressesAsync(string host, CancellationToken cancellationToken)
    {
        if (IPAddress.TryParse(host, out var literal))
        {
            return [literal];
        }

        var addresses = new List<IPAddress>();
        foreach (var type in new[] { QueryType.A, QueryType.AAAA })
        {
            try
            {
                var response = await lookup.QueryAsync(host, type, QueryClass.IN, cancellationToken).ConfigureAwait(false);
                if (!response.HasError)
                {
                    addresses.AddRange(response.Answers.ARecords().Select(a => a.Address));
                    addresses.AddRange(response.Answers.AaaaRecords().Select(a => a.Address));
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // One family failing must not hide the other; no addresses at all is reported by the caller.
            }
        }

        return addresses.Distinct().ToList();
    }
}
