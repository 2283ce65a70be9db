using System.Globalization;
using BackupMx.Core.Configuration;
using BackupMx.Core.Forwarding;
using BackupMx.Core.Hosting;
using BackupMx.Core.Inspection;
using BackupMx.Core.Monitoring;
using BackupMx.Core.Ports;
using BackupMx.Local;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace BackupMx.Server;

/// <summary>
/// Operator commands that work on the spool folder directly, also while the relay runs
/// (SQLite in WAL mode allows a second process). They only read an existing spool: a wrong
/// <c>BackupMx:Spool:Path</c> (it is relative to the current directory by default) is an
/// error, never a new empty spool whose "0 msg" would look like a real answer. A flush is one
/// write to the spool, and the running relay is told of it at once (<see cref="SpoolFlushWatcher"/>).
/// </summary>
internal static class AdminCommands
{
    /// <summary>Exit codes beyond 0, from sysexits.h so that scripts can tell the cases apart.</summary>
    public const int ExitUsage = 64;

    /// <summary>No spool database at the configured path (EX_NOINPUT).</summary>
    public const int ExitNoSpool = 66;

    /// <summary>The domain is not configured and nothing is queued for it (EX_NOUSER).</summary>
    public const int ExitUnknownDomain = 67;

    private const string Usage = "usage: BackupMx.Server [queue [DOMAIN] [--json] | queue --ages [--json] | flush DOMAIN [--json] | check-dns [DOMAIN...] [--json] | show QUEUEID [--body] | hold QUEUEID|DOMAIN | release QUEUEID|DOMAIN | delete QUEUEID [--bounce]] [--BackupMx:Key=value ...]";

    /// <summary>
    /// The spool of an operator command, opened without a host (<see cref="CommandServices"/>): the
    /// spool's start-up recovery (which would release the running relay's leases) does not run, and
    /// nothing of the relay's is composed but the spool, the ledger and the wake-up queue the ledger
    /// posts to (it reaches no pump here: the running relay learns of a change through the spool).
    /// Null, after saying why on stderr, when there is no spool where the settings point: opening
    /// would create one.
    /// </summary>
    internal static async Task<OpenedSpool?> OpenSpoolAsync(string[] options, Action<IServiceCollection>? configure = null)
    {
        var configuration = CommandServices.LoadConfiguration(options);
        var services = CommandServices.Build(configuration, s =>
        {
            s.AddBackupMxCore(configuration);
            s.AddBackupMxLocalSpool();
            s.TryAddSingleton<WakeUpSignal>();
            s.TryAddSingleton<IWakeUpQueue, InProcessWakeUpQueue>();
            configure?.Invoke(s);
        });

        var config = services.GetRequiredService<IOptions<BackupMxOptions>>().Value;

        var spoolPath = Path.GetFullPath(config.Spool.Path);
        var database = Path.Combine(spoolPath, SqliteSpoolStore.FileName);
        if (!File.Exists(database))
        {
            await services.DisposeAsync().ConfigureAwait(false);
            await Console.Error.WriteLineAsync(
                $"no spool at {database}: pass the relay's spool folder with --BackupMx:Spool:Path=/path/to/spool " +
                $"(a relative BackupMx:Spool:Path is resolved against the current directory, here {Environment.CurrentDirectory})").ConfigureAwait(false);
            return null;
        }

        await services.OpenLocalSpoolAsync(CancellationToken.None).ConfigureAwait(false);
        return new OpenedSpool(services, config, spoolPath);
    }

    public static async Task<int> RunAsync(string[] positional, string[] options)
    {
        var report = QueueReport.Parse(ref options);
        if (positional[0] is not ("queue" or "flush") || positional.Length > 2 || (positional[0] == "flush" && positional.Length != 2)
            || !report.FitsCommand(positional))
        {
            await Console.Error.WriteLineAsync(Usage).ConfigureAwait(false);
            return ExitUsage;
        }

        using var spool = await OpenSpoolAsync(options).ConfigureAwait(false);
        if (spool is null)
        {
            return ExitNoSpool;
        }

        var (services, config, spoolPath) = (spool.Services, spool.Config, spool.SpoolPath);
        var ct = CancellationToken.None;
        var inspector = services.GetRequiredService<QueueInspector>();
        if (positional[0] == "flush" && report.Json)
        {
            return await QueueReport.FlushAsync(services, spoolPath, positional[1], ct).ConfigureAwait(false);
        }

        if (report.Ages || report.Json)
        {
            return await report.RunAsync(services, spoolPath, positional.Length == 2 ? positional[1] : null, ct).ConfigureAwait(false);
        }

        Console.WriteLine("spool: " + spoolPath);
        if (positional.Length == 1)
        {
            var summaries = await inspector.SummarizeAsync(ct).ConfigureAwait(false);
            foreach (var s in summaries)
            {
                Console.WriteLine(string.Create(
                    CultureInfo.InvariantCulture,
                    $"{s.Domain,-30} {s.Messages,6} msg {s.Recipients,6} rcpt  oldest {Format(s.OldestAge),-10} primary {Format(s.PrimaryState, s.PrimaryStateSince)}  last error: {s.LastError ?? "-"}"));
            }

            // After the summary, which is what moves unreadable records aside as it reads.
            var quarantined = await inspector.ListQuarantinedAsync(null, ct).ConfigureAwait(false);
            if (summaries.Count == 0 && quarantined.Count == 0)
            {
                Console.WriteLine("nothing queued");
            }

            PrintQuarantined(quarantined);
            return 0;
        }

        // Mail can outlive its domain's configuration, so a queued domain is addressable too.
        var configured = config.FindDomain(positional[1]);
        var domain = configured?.Name ?? positional[1];
        if (positional[0] == "flush")
        {
            // The flush reads the domain's records itself; only when it found nothing to do is
            // a listing needed, to say why.
            var flushed = await services.GetRequiredService<DomainFlusher>().FlushAsync(domain, "operator request", ct).ConfigureAwait(false);
            if (flushed > 0)
            {
                Console.WriteLine(FlushOutcome(domain, flushed, flushed));
                return 0;
            }
        }

        var messages = await inspector.ListAsync(domain, ct).ConfigureAwait(false);
        var unreadable = await inspector.ListQuarantinedAsync(domain, ct).ConfigureAwait(false);
        if (configured is null && messages.Count == 0 && unreadable.Count == 0)
        {
            await Console.Error.WriteLineAsync($"{domain} is not a configured domain and nothing is queued for it").ConfigureAwait(false);
            return ExitUnknownDomain;
        }

        if (messages.Count == 0)
        {
            Console.WriteLine($"nothing queued for {domain}");
            PrintQuarantined(unreadable);
            return 0;
        }

        if (positional[0] == "queue")
        {
            foreach (var m in messages)
            {
                Console.WriteLine(string.Create(
                    CultureInfo.InvariantCulture,
                    $"{m.QueueId} {m.Kind} <{m.Sender}> -> {string.Join(", ", m.PendingRecipients)}  received {m.ReceivedAt:u}  next {m.NextAttemptAt:u}  attempts {m.Attempts}  {m.LastError ?? (m.Attempts == 0 ? "not tried yet" : "")}"));
            }

            PrintQuarantined(unreadable);
            return 0;
        }

        Console.WriteLine(FlushOutcome(domain, messages.Count, flushed: 0));
        return 0;
    }

    /// <summary>
    /// Unreadable records are neither delivered nor bounced, so the operator must see them: their
    /// bodies stay in the spool folder under the same queue ids.
    /// </summary>
    private static void PrintQuarantined(IReadOnlyList<QuarantinedRecord> quarantined)
    {
        if (quarantined.Count == 0)
        {
            return;
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"quarantined: {quarantined.Count} record(s) could not be read and wait for an operator (not delivered, not expired):"));
        foreach (var q in quarantined)
        {
            Console.WriteLine($"{q.QueueId} {q.Domain} QUARANTINED  {q.Reason}");
        }
    }

    /// <summary>
    /// The relay is another process: it is told of the flush through the spool folder, and its log
    /// shows the deliveries, not the flush.
    /// </summary>
    internal static string FlushOutcome(string domain, int queued, int flushed) => flushed > 0
        ? string.Create(CultureInfo.InvariantCulture, $"{flushed} message(s) of {domain} are due now; a running relay starts sending them at once.")
        : string.Create(CultureInfo.InvariantCulture, $"{queued} message(s) of {domain} queued, none to flush: they are already due or being delivered.");

    // The relay records its primaries' states in the spool; Unknown until its first probe or attempt.
    private static string Format(PrimaryState state, DateTimeOffset? since) =>
        since is null ? state.ToString() : string.Create(CultureInfo.InvariantCulture, $"{state} since {since.Value:u}");

    private static string Format(TimeSpan? age) => age is null ? "-" : age.Value.ToString(age.Value.TotalDays >= 1 ? @"d\.hh\:mm" : @"hh\:mm\:ss", CultureInfo.InvariantCulture);
}

/// <summary>An operator command's services over an existing, opened spool.</summary>
internal sealed record OpenedSpool(ServiceProvider Services, BackupMxOptions Config, string SpoolPath) : IDisposable
{
    public void Dispose() => Services.Dispose();
}
