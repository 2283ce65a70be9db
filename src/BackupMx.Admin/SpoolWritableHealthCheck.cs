using BackupMx.Core.Configuration;
using BackupMx.Local;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;

namespace BackupMx.Admin;

/// <summary>
/// Ready only while the spool can take mail: a small file is written, flushed to disk and removed
/// in the spool folder and in its bodies folder, where every accepted message goes. A spool that
/// cannot be written answers every DATA with 451, so a load balancer should send senders elsewhere.
/// </summary>
internal sealed class SpoolWritableHealthCheck(IOptions<BackupMxOptions> options) : IHealthCheck
{
    public const string Name = "spool";

    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var spool = Path.GetFullPath(options.Value.Spool.Path);
        foreach (var folder in new[] { spool, Path.Combine(spool, FileBodyStore.FolderName) })
        {
            var probe = Path.Combine(folder, $".ready-{Guid.NewGuid():N}.tmp");
            try
            {
                await using (var stream = new FileStream(probe, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.WriteThrough))
                {
                    await stream.WriteAsync("ready"u8.ToArray(), cancellationToken).ConfigureAwait(false);
                    stream.Flush(flushToDisk: true);
                }

                File.Delete(probe);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                TryDelete(probe);
                return HealthCheckResult.Unhealthy($"the spool folder {folder} cannot be written: {ex.Message}");
            }
        }

        return HealthCheckResult.Healthy($"the spool folder {spool} can be written");
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
        }
    }
}
