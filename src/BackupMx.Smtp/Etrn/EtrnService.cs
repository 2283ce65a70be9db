// ETRN (RFC 1985): the primary, back up, asks us to send what we hold for its domain now.
//
// SmtpServer's parser has a fixed verb list, so SessionInput answers ETRN lines itself before
// the parser sees them, using this service. Only configured domains can be flushed, and only
// by the addresses allowed for them (EtrnClients, else the address of an explicitly configured
// primary). A flush is Core's DomainFlusher: every spooled message of the domain due now, retry
// counts reset. It runs in the background, one per domain at a time (458 while one runs); the
// reply waits a moment for it to say how many messages were started.
using System.Collections.Concurrent;
using System.Net;
using BackupMx.Core.Configuration;
using BackupMx.Core.Monitoring;
using BackupMx.Core.Net;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BackupMx.Smtp.Etrn;

internal sealed class EtrnService(
    IOptions<BackupMxOptions> options,
    DomainFlusher flusher,
    Func<TimeSpan> replyWait,
    ILogger logger,
    CancellationToken stopping)
{
    private static readonly TimeSpan ResolveTimeout = TimeSpan.FromSeconds(5);

    private readonly ConcurrentDictionary<string, Task<int>> _running = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Name resolution for primaries given by name; replaceable in tests.</summary>
    public Func<string, CancellationToken, Task<IPAddress[]>> Resolve { get; init; } = Dns.GetHostAddressesAsync;

    /// <summary>Answers one ETRN command line (with its CRLF). Never throws but for cancellation.</summary>
    public async ValueTask<string> HandleAsync(string line, IPAddress? client, bool greeted, CancellationToken cancellationToken)
    {
        var reply = await DecideAsync(line, client, greeted, cancellationToken).ConfigureAwait(false);
        Log.Etrn(logger, client?.ToString(), line.TrimEnd('\r', '\n'), reply);
        return reply;
    }

    private async ValueTask<string> DecideAsync(string line, IPAddress? client, bool greeted, CancellationToken cancellationToken)
    {
        var argument = line.TrimEnd('\r', '\n');
        argument = argument.Length > 4 ? argument[4..].Trim() : string.Empty;
        if (argument.Length == 0 || argument.Contains(' ', StringComparison.Ordinal))
        {
            return "501 5.5.4 Syntax: ETRN <domain>";
        }

        if (!greeted)
        {
            return "503 5.5.1 Send EHLO first";
        }

        var option = argument[0] is '@' or '#' ? argument[0] : '\0';
        var name = (option == '\0' ? argument : argument[1..]).TrimEnd('.');
        if (!IsDomainSyntax(name))
        {
            return "501 5.5.4 Syntax: ETRN <domain>";
        }

        var node = option == '\0' ? name : option + name;
        if (option == '#')
        {
            return $"459 4.7.1 Node {node} not allowed: queue names are not supported";
        }

        // "@domain" asks for the domain and its subdomains (RFC 1985 §5).
        var domains = options.Value.Domains
            .Where(d => string.Equals(d.Name, name, StringComparison.OrdinalIgnoreCase)
                || (option == '@' && d.Name.EndsWith("." + name, StringComparison.OrdinalIgnoreCase)))
            .ToList();
        if (domains.Count == 0)
        {
            return $"459 4.7.1 Node {node} not allowed: not relayed here";
        }

        var allowed = new List<string>();
        foreach (var domain in domains)
        {
            if (await IsAllowedAsync(domain, client, cancellationToken).ConfigureAwait(false))
            {
                allowed.Add(domain.Name);
            }
        }

        if (allowed.Count == 0)
        {
            return $"459 4.7.1 Node {node} not allowed: client not authorised";
        }

        var flushes = new List<Task<int>>();
        foreach (var domain in allowed)
        {
            if (TryStart(domain, client) is { } flush)
            {
                flushes.Add(flush);
            }
        }

        if (flushes.Count == 0)
        {
            return $"458 4.4.0 Unable to queue messages for node {node}: a flush is already running";
        }

        int[] counts;
        try
        {
            counts = await Task.WhenAll(flushes).WaitAsync(replyWait(), cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            return $"250 2.0.0 OK, queuing for node {node} started";
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            return $"458 4.3.0 Unable to queue messages for node {node}";
        }

        var total = counts.Sum();
        return total == 0
            ? $"251 2.0.0 OK, no messages waiting for node {node}"
            : $"253 2.0.0 OK, {total} pending messages for node {node} started";
    }

    private Task<int>? TryStart(string domain, IPAddress? client)
    {
        var completion = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!_running.TryAdd(domain, completion.Task))
        {
            return null;
        }

        // Not tied to the session: the flush finishes even if the client hangs up after asking.
        _ = Task.Run(async () =>
        {
            try
            {
                var count = await flusher.FlushAsync(domain, "ETRN from " + client, stopping).ConfigureAwait(false);
                _running.TryRemove(domain, out _);
                completion.SetResult(count);
            }
            catch (Exception ex)
            {
                _running.TryRemove(domain, out _);
                Log.EtrnFlushFailed(logger, ex, domain);
                completion.SetException(ex);
            }
        });
        return completion.Task;
    }

    private async Task<bool> IsAllowedAsync(DomainOptions domain, IPAddress? client, CancellationToken cancellationToken)
    {
        if (client is null)
        {
            return false;
        }

        client = client.Unmapped();

        if (domain.EtrnClients.Count > 0)
        {
            foreach (var entry in domain.EtrnClients)
            {
                if ((IPAddress.TryParse(entry, out var address) && address.Equals(client))
                    || (IPNetwork.TryParse(entry, out var network) && network.Contains(client)))
                {
                    return true;
                }
            }

            return false;
        }

        // Without a list, the primary itself may ask. A primary found through MX records is not
        // looked up here: any host that shares the MX set would pass, so it needs EtrnClients.
        if (!HostPort.TryParse(domain.Primary, 25, out var primary))
        {
            return false;
        }

        if (IPAddress.TryParse(primary.Value.Host, out var literal))
        {
            return literal.Unmapped().Equals(client);
        }

        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(ResolveTimeout);
            var addresses = await Resolve(primary.Value.Host, timeout.Token).ConfigureAwait(false);
            return addresses.Any(a => a.Unmapped().Equals(client));
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            Log.EtrnResolveFailed(logger, ex, primary.Value.Host);
            return false;
        }
    }

    private static bool IsDomainSyntax(string name) =>
        name.Length is > 0 and <= 253
        && !name.StartsWith('.')
        && !name.Contains("..", StringComparison.Ordinal)
        && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '.');
}
