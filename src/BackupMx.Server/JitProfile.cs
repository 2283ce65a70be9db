using System.Runtime;
using BackupMx.Core.Configuration;
using Microsoft.Extensions.Configuration;

namespace BackupMx.Server;

/// <summary>
/// Multi-core JIT with its profile in the spool folder: the methods the relay compiled in its last run
/// are compiled again on a background thread while this one starts, before anything asks for them.
/// </summary>
/// <remarks>
/// A relay that accepts mail while the primary is down never runs its delivery path until the primary
/// is back, and the code is compiled fully optimised at its first call (tiered compilation is off). That
/// first compilation (MailKit's session, the forwarder, the claim; some 540 methods) was most of the time
/// between ETRN and the first delivery: about 0.4 s of CPU, against some 20 ms once compiled. The profile
/// is written when the relay stops and is per spool, so it follows the relay that made it; a profile
/// made by other binaries, or none (a new spool, a killed relay), only means compiling on first use.
/// </remarks>
internal static class JitProfile
{
    public const string FileName = "relay.jitprofile";

    public static void Start(IConfiguration configuration)
    {
        // Read without validating the options: an invalid configuration is the host's to report.
        var spoolPath = configuration.GetSection($"{BackupMxOptions.SectionName}:Spool").Get<SpoolOptions>()?.Path ?? new SpoolOptions().Path;
        ProfileOptimization.SetProfileRoot(Path.GetFullPath(spoolPath));
        ProfileOptimization.StartProfile(FileName);
    }
}
