using System.Globalization;
using BackupMx.Core.Hosting;
using BackupMx.Core.Inspection;
using BackupMx.Core.Monitoring;
using BackupMx.Core.Ports;
using BackupMx.Local;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace BackupMx.Server;

/// <summary>
/// Operator commands that work on the spool folder directly, also while the relay runs
/// (SQLite in WAL mode allows a second process). The running relay notices a flush
/// within its idle interval (30 s at most).
/// </summary>
internal static class AdminCommands
{
    public static async Task<int> RunAsync(string[] positional, string[] options)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = options, ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.ClearProviders();
        builder.Services.AddBackupMxCore(builder.Configuration);
        // The host is never started, so the spool's start-up recovery (which would release the
        // running relay's leases) does not run here.
        // Likewise the scheduling loops it registers stay idle; the flusher only needs its wake-up queue.
        builder.Services.AddBackupMxLocalSpool();
        builder.Services.AddBackupMxInProcessScheduling();
        using var host = builder.Build();

        var ct = CancellationToken.None;
        switch (positional[0])
        {
            case "queue" when positional.Length == 1:
                var inspector = host.Services.GetRequiredService<QueueInspector>();
                foreach (var s in await inspector.SummarizeAsync(ct).ConfigureAwait(false))
                {
                    Console.WriteLine(string.Create(
                        CultureInfo.InvariantCulture,
                        $"{s.Domain,-30} {s.Messages,6} msg {s.Recipients,6} rcpt  oldest {Format(s.OldestAge),-10} primary {Format(s.PrimaryState, s.PrimaryStateSince)}  last error: {s.LastError ?? "-"}"));
                }

                return 0;

            case "queue" when positional.Length == 2:
                foreach (var m in await host.Services.GetRequiredService<QueueInspector>().ListAsync(positional[1], ct).ConfigureAwait(false))
                {
                    Console.WriteLine(string.Create(
                        CultureInfo.InvariantCulture,
                        $"{m.QueueId} {m.Kind} <{m.Sender}> -> {string.Join(", ", m.PendingRecipients)}  received {m.ReceivedAt:u}  next {m.NextAttemptAt:u}  attempts {m.Attempts}  {m.LastError ?? (m.Attempts == 0 ? "not tried yet" : "")}"));
                }

                return 0;

            case "flush" when positional.Length == 2:
                var count = await host.Services.GetRequiredService<DomainFlusher>().FlushAsync(positional[1], "operator request", ct).ConfigureAwait(false);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{count} message(s) of {positional[1]} are due now."));
                return 0;

            default:
                await Console.Error.WriteLineAsync("usage: BackupMx.Server [queue [DOMAIN] | flush DOMAIN] [--BackupMx:Key=value ...]").ConfigureAwait(false);
                return 64;
        }
    }

    // The relay records its primaries' states in the spool; Unknown until its first probe or attempt.
    private static string Format(PrimaryState state, DateTimeOffset? since) =>
        since is null ? state.ToString() : string.Create(CultureInfo.InvariantCulture, $"{state} since {since.Value:u}");

    private static string Format(TimeSpan? age) => age is null ? "-" : age.Value.ToString(age.Value.TotalDays >= 1 ? @"d\.hh\:mm" : @"hh\:mm\:ss", CultureInfo.InvariantCulture);
}
