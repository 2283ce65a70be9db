using System.Diagnostics.Metrics;
using BackupMx.Smtp.Connection;
using BackupMx.Smtp.Tls;

namespace BackupMx.Smtp.Hosting;

/// <summary>
/// What the receiver is doing now, for a readiness check and the active-session gauge: whether its
/// listening sockets are bound and accepting, and how many SMTP sessions are open.
/// </summary>
public sealed class SmtpReceiverStatus
{
    public const string ActiveSessionsName = "backupmx.smtp.sessions.active";

    private volatile ReceiverListenerFactory? _listeners;
    private volatile string _endpoints = "";
    private volatile ServerCertificate? _certificate;

    public SmtpReceiverStatus(IMeterFactory? meterFactory)
    {
        // Same name as Core's meter, so AddMeter("BackupMx") exports it with the others.
        var meter = meterFactory?.Create(Core.Telemetry.Name) ?? new Meter(Core.Telemetry.Name);
        meter.CreateObservableGauge(ActiveSessionsName, () => ActiveSessions, "{session}", "SMTP sessions open now.");
    }

    /// <summary>True from a successful start (every endpoint bound) until a stop or a failure of the listeners.</summary>
    public bool Listening => _listeners is { } listeners && !listeners.Failure.IsCompleted;

    /// <summary>The endpoints listened on, as configured ("127.0.0.1:25, [::1]:25"); empty before the start.</summary>
    public string Endpoints => _endpoints;

    public int ActiveSessions => _listeners?.OpenSessions ?? 0;

    /// <summary>
    /// Re-reads the STARTTLS certificate file now if its content changed, rather than at the next
    /// periodic check (a configuration reload). Open sessions keep their handshake.
    /// </summary>
    public void CheckCertificate() => _certificate?.Check();

    internal void Started(ReceiverListenerFactory listeners, string endpoints, ServerCertificate? certificate)
    {
        _endpoints = endpoints;
        _certificate = certificate;
        _listeners = listeners;
    }

    internal void Stopped()
    {
        _listeners = null;
        _certificate = null;
    }
}
