using System.Diagnostics.Metrics;

namespace BackupMx.Smtp.Tls;

/// <summary>
/// The time left on the STARTTLS certificate served now, as a gauge under the relay's meter name,
/// so that an alert can fire before senders that validate (MTA-STS) start refusing us.
/// </summary>
internal sealed class TlsCertificateMetrics
{
    public const string ExpiryName = "backupmx.tls.certificate.expiry";

    private volatile ServerCertificate? _certificate;

    public TlsCertificateMetrics(IMeterFactory? meterFactory)
    {
        // Same name as Core's meter, so AddMeter("BackupMx") exports it with the others.
        var meter = meterFactory?.Create(Core.Telemetry.Name) ?? new Meter(Core.Telemetry.Name);
        meter.CreateObservableGauge(ExpiryName, Observe, "s", "Seconds until the inbound STARTTLS certificate served now expires (negative once expired).");
    }

    public void Track(ServerCertificate? certificate) => _certificate = certificate;

    private IEnumerable<Measurement<double>> Observe() =>
        _certificate is { } certificate ? [new Measurement<double>(certificate.TimeToExpiry.TotalSeconds)] : [];
}
