using BackupMx.Core.Configuration;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using BackupMx.Delivery.Routing;
using BackupMx.Delivery.Smtp;
using MailKit.Net.Smtp;
using Microsoft.Extensions.Options;

namespace BackupMx.Delivery;

/// <summary>
/// Is a domain's primary up? Connect, greeting, EHLO, QUIT against the same route
/// relayed mail takes. Up when any host greets with 2xx: a primary that greets
/// but then misbehaves is still up, and its replies decide each message's fate.
/// No STARTTLS: a probe carries no mail. Each step waits at most Delivery:ProbeTimeout
/// (not the deliveries' Timeout), address after address: a primary that accepts TCP
/// but never greets is down after that, and its recovery is not held up behind a
/// minute-long wait on the previous probe.
/// </summary>
public sealed class MailKitPrimaryProber : IPrimaryProber
{
    private readonly DeliveryRouter _router;
    private readonly SmtpConnector _connector;
    private readonly IOptions<BackupMxOptions> _options;

    internal MailKitPrimaryProber(DeliveryRouter router, SmtpConnector connector, IOptions<BackupMxOptions> options)
    {
        _router = router;
        _connector = connector;
        _options = options;
    }

    /// <summary>For tests: the connector shared with the other outbound services.</summary>
    internal SmtpConnector Connector => _connector;

    public async Task<ProbeResult> ProbeAsync(string domain, CancellationToken cancellationToken)
    {
        var route = await _router.RouteAsync(MessageKind.Relay, domain, cancellationToken).ConfigureAwait(false);
        if (route.Failure is not null)
        {
            return new ProbeResult(false, null, route.Failure.ToString());
        }

        var timeout = _options.Value.Delivery.EffectiveProbeTimeout;
        string? error = "no address found for the primary";
        await foreach (var endpoint in _connector.EndpointsAsync(route.Hosts, cancellationToken).ConfigureAwait(false))
        {
            ProtocolWatcher? watcher = null;
            var (client, failure) = await _connector.ConnectAsync(
                w =>
                {
                    watcher = w;
                    return new SmtpClient(w);
                },
                endpoint,
                DeliveryTls.Disabled,
                timeout,
                cancellationToken).ConfigureAwait(false);
            if (client is not null)
            {
                using (client)
                {
                    try
                    {
                        await client.DisconnectAsync(quit: true, cancellationToken).ConfigureAwait(false);
                    }
                    catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
                    {
                        // It greeted and answered EHLO; a failed QUIT does not make it unreachable.
                    }
                }

                return new ProbeResult(true, endpoint.Host, null);
            }

            if (failure is { Loop: true })
            {
                // Ourselves answering is not the primary being up.
                error = failure.Reply.ToString();
                continue;
            }

            if (watcher is { GreetingCode: >= 200 and < 300 })
            {
                // Greeted but failed EHLO: reachable all the same.
                return new ProbeResult(true, endpoint.Host, null);
            }

            error = failure?.Reply.ToString();
        }

        return new ProbeResult(false, null, error);
    }
}
