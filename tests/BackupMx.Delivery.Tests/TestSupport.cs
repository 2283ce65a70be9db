using System.Net;
using System.Text;
using BackupMx.Core.Configuration;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using BackupMx.Delivery;
using BackupMx.Delivery.Routing;
using BackupMx.Delivery.Smtp;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace BackupMx.Delivery.Tests;

/// <summary>DNS answers scripted by a test.</summary>
internal sealed class ScriptedDns : IDnsResolver
{
    public Dictionary<string, MxLookup> Mx { get; } = new(StringComparer.OrdinalIgnoreCase);

    public Dictionary<string, IReadOnlyList<IPAddress>> Addresses { get; } = new(StringComparer.OrdinalIgnoreCase);

    public Task<MxLookup> LookupMxAsync(string domain, CancellationToken cancellationToken) =>
        Task.FromResult(Mx.GetValueOrDefault(domain) ?? new MxLookup(DnsLookupStatus.NameDoesNotExist, []));

    public Task<IReadOnlyList<IPAddress>> LookupAddressesAsync(string host, CancellationToken cancellationToken) =>
        Task.FromResult(Addresses.GetValueOrDefault(host) ?? (IReadOnlyList<IPAddress>)[]);

    public ScriptedDns WithMx(string domain, params (int Preference, string Host)[] records)
    {
        Mx[domain] = new MxLookup(DnsLookupStatus.Ok, records.Select(r => new MxRecord(r.Preference, r.Host)).ToList());
        return this;
    }

    public ScriptedDns WithAddress(string host, params string[] addresses)
    {
        Addresses[host] = addresses.Select(IPAddress.Parse).ToList();
        return this;
    }
}

internal static class TestDelivery
{
    public const string OurHost = "backup.example.net";

    public static BackupMxOptions Config(string? primary = null, int port = 25, string? smartHost = null) => new()
    {
        HostName = OurHost,
        Domains = [new DomainOptions { Name = "example.com", Primary = primary }],
        Delivery = new DeliveryOptions { Port = port, Timeout = TimeSpan.FromSeconds(10) },
        Bounce = new BounceOptions { SmartHost = smartHost },
    };

    /// <param name="smtpPort">Where DSNs to a sender's MX go instead of 25 (a test cannot listen on 25).</param>
    public static MailKitTransport Transport(BackupMxOptions options, IDnsResolver? dns = null, IDeliveryTlsPolicy? tls = null, TimeProvider? time = null, int? smtpPort = null)
    {
        dns ??= new ScriptedDns();
        var wrapped = Microsoft.Extensions.Options.Options.Create(options);
        return new MailKitTransport(Router(options, dns, smtpPort), Connector(options, dns), tls ?? new ConfiguredTlsPolicy(wrapped), wrapped, NullLogger<MailKitTransport>.Instance, time ?? TimeProvider.System);
    }

    public static MailKitPrimaryProber Prober(BackupMxOptions options, IDnsResolver? dns = null)
    {
        dns ??= new ScriptedDns();
        return new MailKitPrimaryProber(Router(options, dns), Connector(options, dns), Microsoft.Extensions.Options.Options.Create(options));
    }

    public static MailKitRecipientVerifier Verifier(BackupMxOptions options, IDnsResolver? dns = null)
    {
        dns ??= new ScriptedDns();
        var wrapped = Microsoft.Extensions.Options.Options.Create(options);
        return new MailKitRecipientVerifier(Router(options, dns), Connector(options, dns), new ConfiguredTlsPolicy(wrapped), NullLogger<MailKitRecipientVerifier>.Instance);
    }

    public static SmtpConnector Connector(BackupMxOptions options, IDnsResolver dns)
    {
        var wrapped = Microsoft.Extensions.Options.Options.Create(options);
        return new SmtpConnector(dns, new LocalEndpoints(wrapped), wrapped, NullLogger<SmtpConnector>.Instance);
    }

    public static DeliveryRouter Router(BackupMxOptions options, IDnsResolver dns, int? smtpPort = null) =>
        new(dns, Microsoft.Extensions.Options.Options.Create(options), NullLogger<DeliveryRouter>.Instance, smtpPort ?? DeliveryRouter.SmtpPort);

    public static DeliveryRequest Request(
        byte[] body,
        string sender = "alice@sender.org",
        string[]? recipients = null,
        MailParameters? parameters = null,
        MessageKind kind = MessageKind.Relay,
        string domain = "example.com",
        Func<RecipientState, RecipientState>? shape = null,
        bool seekable = true) => new()
    {
        QueueId = "TESTQUEUEID0000000001",
        Kind = kind,
        Domain = domain,
        Sender = sender,
        Parameters = parameters ?? new MailParameters(),
        Recipients = (recipients ?? ["bob@example.com"]).Select(r => shape?.Invoke(new RecipientState { Address = r }) ?? new RecipientState { Address = r }).ToList(),
        BodyLength = body.Length,
        OpenBody = _ => Task.FromResult<Stream>(seekable ? new MemoryStream(body, writable: false) : new NonSeekableStream(body)),
    };

    public static byte[] Ascii(string text) => Encoding.ASCII.GetBytes(text);

    public static SmtpReply ReplyFor(this DeliveryResult result, string recipient) =>
        result.Outcomes.Single(o => o.Recipient == recipient).Reply;
}

/// <summary>A body stream like a blob download: forward-only.</summary>
internal sealed class NonSeekableStream(byte[] data) : Stream
{
    private readonly MemoryStream _inner = new(data, writable: false);

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override void Flush()
    {
    }

    public override int Read(byte[] buffer, int offset, int count) => _inner.Read(buffer, offset, count);

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
