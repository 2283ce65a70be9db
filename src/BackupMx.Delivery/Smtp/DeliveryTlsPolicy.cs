using BackupMx.Core.Model;

namespace BackupMx.Delivery.Smtp;

public enum DeliveryTlsMode
{
    /// <summary>STARTTLS when offered; on a certificate or handshake failure, reconnect in plain text.</summary>
    Opportunistic = 0,

    /// <summary>Never STARTTLS (a primary whose TLS is known to be broken).</summary>
    Disabled = 1,
}

/// <summary>
/// Chooses the TLS behaviour per destination. The default is opportunistic for every
/// domain; a per-domain setting (for example "TLS required" for one primary) plugs in here.
/// </summary>
public interface IDeliveryTlsPolicy
{
    DeliveryTlsMode GetMode(MessageKind kind, string domain);
}

public sealed class OpportunisticTlsPolicy : IDeliveryTlsPolicy
{
    public DeliveryTlsMode GetMode(MessageKind kind, string domain) => DeliveryTlsMode.Opportunistic;
}
