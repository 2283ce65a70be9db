using System.Net;
using System.Text;
using BackupMx.Core.Configuration;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using BackupMx.Delivery.Routing;
using BackupMx.Delivery.Smtp;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace BackupMx.Delivery.WarmUp;

/// <summary>
/// Shortly after start, one delivery of a small synthetic message through the outbound transport to
/// a <see cref="LoopbackSmtpSink"/>, so the delivery path is compiled before the primary comes back.
/// </summary>
/// <remarks>
/// A relay started while its primary is down has never delivered, and the first delivery after ETRN
/// or a flush paid for loading and preparing the whole delivery path (MailKit's session, the
/// transaction, reply handling), precompiled or not: measured by bench/run.sh, about 0.1 s of the
/// first delivery after ETRN without the warm-up against 0.08 s with it (some 0.4 s when the path was
/// compiled at first call). The warm-up runs the same code on a transport of its own, routed by a configuration
/// holding only a synthetic domain whose primary is the sink: no DNS, no configured primary, no spool,
/// no metrics, and its own loggers discard everything, so operators see only one Debug line.
/// </remarks>
public sealed partial class DeliveryWarmUp(IOptions<BackupMxOptions> options, TimeProvider time, ILogger<DeliveryWarmUp> logger) : BackgroundService
{
    /// <summary>A name under .invalid (RFC 2606): it can never be a real destination.</summary>
    internal const string Domain = "warmup.invalid";

    /// <summary>Leaves start-up (spool recovery, the listener, the first probes) to go first.</summary>
    internal static readonly TimeSpan StartDelay = TimeSpan.FromSeconds(1);

    private static readonly byte[] Body = Encoding.ASCII.GetBytes(
        "From: <postmaster@warmup.invalid>\r\nTo: <postmaster@warmup.invalid>\r\nSubject: warm-up\r\nMessage-ID: <warmup@warmup.invalid>\r\n\r\nDiscarded by the loopback sink.\r\n");

    /// <summary>Messages the sink took in this process (for tests).</summary>
    internal int Delivered { get; private set; }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!options.Value.Delivery.WarmUp)
        {
            return;
        }

        try
        {
            await Task.Delay(StartDelay, time, stoppingToken).ConfigureAwait(false);
            var started = time.GetTimestamp();
            Delivered = await RunAsync(options.Value, time, stoppingToken).ConfigureAwait(false);
            LogDone(logger, Delivered, time.GetElapsedTime(started).TotalMilliseconds);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            // Only the first real delivery is slower without it.
            LogFailed(logger, e);
        }
    }

    /// <summary>Delivers one synthetic message to a fresh sink; returns how many messages the sink took.</summary>
    internal static async Task<int> RunAsync(BackupMxOptions configured, TimeProvider time, CancellationToken cancellationToken)
    {
        await using var sink = new LoopbackSmtpSink();
        sink.Accept(cancellationToken);
        var synthetic = Options.Create(new BackupMxOptions
        {
            HostName = configured.HostName,
            Smtp = configured.Smtp,
            Delivery = configured.Delivery,
            Dns = configured.Dns,
            Domains = [new DomainOptions { Name = Domain, Primary = $"{IPAddress.Loopback}:{sink.Port}" }],
        });
        var silent = NullLoggerFactory.Instance;
        var connector = new SmtpConnector(new NoDns(), new LocalEndpoints(synthetic), synthetic, silent.CreateLogger<SmtpConnector>());
        var router = new DeliveryRouter(new NoDns(), synthetic, silent.CreateLogger<DeliveryRouter>());
        await using (var transport = new MailKitTransport(router, connector, new ConfiguredTlsPolicy(synthetic), synthetic, silent.CreateLogger<MailKitTransport>(), time))
        {
            var result = await transport.DeliverAsync(Request(), cancellationToken).ConfigureAwait(false);
            if (!result.Outcomes.All(o => o.Reply.IsSuccess))
            {
                throw new InvalidOperationException($"the loopback sink did not take the message: {result.Outcomes[0].Reply}");
            }
        }

        return sink.MessagesReceived;
    }

    private static DeliveryRequest Request() => new()
    {
        QueueId = "warmup",
        Kind = MessageKind.Relay,
        Domain = Domain,
        Sender = "postmaster@" + Domain,
        Parameters = new MailParameters { Body = "8BITMIME", Ret = "HDRS", EnvelopeId = "warmup", DeclaredSize = Body.Length },
        Recipients = [new RecipientState { Address = "postmaster@" + Domain, OriginalRecipient = "rfc822;postmaster@" + Domain, Notify = "FAILURE" }],
        BodyLength = Body.Length,
        OpenBody = _ => Task.FromResult<Stream>(new MemoryStream(Body, writable: false)),
    };

    /// <summary>The sink is an address literal: nothing is ever looked up.</summary>
    private sealed class NoDns : IDnsResolver
    {
        public Task<MxLookup> LookupMxAsync(string domain, CancellationToken cancellationToken) =>
            throw new InvalidOperationException("the warm-up never resolves names");

        public Task<IReadOnlyList<IPAddress>> LookupAddressesAsync(string host, CancellationToken cancellationToken) =>
            throw new InvalidOperationException("the warm-up never resolves names");
    }

    [LoggerMessage(EventId = 3340, Level = LogLevel.Debug, Message = "Delivery warm-up: the loopback sink took {Count} message(s) in {Milliseconds:F0} ms")]
    private static partial void LogDone(ILogger logger, int count, double milliseconds);

    [LoggerMessage(EventId = 3341, Level = LogLevel.Debug, Message = "Delivery warm-up failed; the first delivery compiles the delivery path instead")]
    private static partial void LogFailed(ILogger logger, Exception exception);
}
