using BackupMx.Smtp.Hosting;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace BackupMx.Admin;

/// <summary>Ready only while the SMTP receiver's sockets are bound and accepting.</summary>
internal sealed class SmtpListeningHealthCheck(SmtpReceiverStatus status) : IHealthCheck
{
    public const string Name = "smtp";

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(status.Listening
            ? HealthCheckResult.Healthy($"listening on {status.Endpoints}")
            : HealthCheckResult.Unhealthy("the SMTP receiver is not listening"));
}
