using BackupMx.Core.Configuration;
using BackupMx.Core.Model;
using Microsoft.Extensions.Options;

namespace BackupMx.Delivery.Smtp;

public enum DeliveryTlsMode
{
    /// <summary>STARTTLS when offered; on a handshake failure, reconnect in plain text (RFC 7435).</summary>
    Opportunistic = 0,

    /// <summary>Never STARTTLS (a primary whose TLS is known to be broken).</summary>
    Disabled = 1,

    /// <summary>STARTTLS with TLS 1.2 or newer or no delivery: a missing offer or a failed handshake is a 4.7.x deferral.</summary>
    Required = 2,
}

/// <summary>How one session negotiates TLS: the mode, and whether the certificate's chain and host name are checked.</summary>
public readonly record struct DeliveryTls(DeliveryTlsMode Mode, bool ValidateCertificate)
{
    public static DeliveryTls Opportunistic { get; } = new(DeliveryTlsMode.Opportunistic, false);

    public static DeliveryTls Disabled { get; } = new(DeliveryTlsMode.Disabled, false);
}

/// <summary>Chooses the TLS behaviour per destination.</summary>
public interface IDeliveryTlsPolicy
{
    DeliveryTls GetTls(MessageKind kind, string domain);
}

/// <summary>
/// Per-domain settings (<c>Domains:N:OutboundTls</c>, <c>Domains:N:ValidateCertificate</c>) for relayed
/// mail. DSNs go to arbitrary sender domains whose certificates we have no reason to trust or distrust,
/// so they always use unvalidated opportunistic TLS, like most MTAs.
/// </summary>
public sealed class ConfiguredTlsPolicy(IOptions<BackupMxOptions> options) : IDeliveryTlsPolicy
{
    public DeliveryTls GetTls(MessageKind kind, string domain)
    {
        var configured = kind == MessageKind.Relay ? options.Value.FindDomainForDelivery(domain) : null;
        if (configured is null)
        {
            return DeliveryTls.Opportunistic;
        }

        var mode = configured.OutboundTls switch
        {
            OutboundTlsMode.Required => DeliveryTlsMode.Required,
            OutboundTlsMode.Disabled => DeliveryTlsMode.Disabled,
            _ => DeliveryTlsMode.Opportunistic,
        };

        // RFC 7435: an opportunistic peer's certificate proves nothing we could act on (failing would
        // only mean falling back to plain text), so it is checked only when asked for or when TLS is required.
        return new DeliveryTls(mode, configured.ValidateCertificate ?? mode == DeliveryTlsMode.Required);
    }
}

/// <summary>Opportunistic, unvalidated TLS for every destination (tests and callers without per-domain settings).</summary>
public sealed class OpportunisticTlsPolicy : IDeliveryTlsPolicy
{
    public DeliveryTls GetTls(MessageKind kind, string domain) => DeliveryTls.Opportunistic;
}
