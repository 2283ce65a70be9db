using System.Globalization;
using System.Text;
using BackupMx.Core.Intake;
using BackupMx.Core.Model;
using BackupMx.Core.Monitoring;
using BackupMx.Core.Ports;
using Microsoft.Extensions.Logging.Abstractions;

namespace BackupMx.Testing.Model;

/// <summary>
/// Applies a sequence of <see cref="ModelOp"/> to a backend, then drains (the clock past every
/// retention and lease, a dispatch, one sweep, a dispatch) and checks the invariants:
/// <list type="bullet">
/// <item>every recipient of a message answered 250 has exactly one outcome: delivered, or named by
/// a DSN to its (non-null) sender; a null sender's recipients are never bounced to anyone;</item>
/// <item>nothing is delivered or bounced twice unless a crash lost the first outcome;</item>
/// <item>nothing is left in the spool past its retention plus one sweep.</item>
/// </list>
/// Throws with the sequence, the ledger and the violations when one does not hold.
/// </summary>
public sealed class SpoolModelRunner(ModelBackend backend)
{
    public static readonly DateTimeOffset Start = new(2030, 1, 7, 9, 0, 0, TimeSpan.Zero);

    /// <summary>The longest the clock moves without the relay looking at its spool.</summary>
    public static readonly TimeSpan LongStep = TimeSpan.FromMinutes(10);

    private readonly ModelWorld _world = new(Start);
    private ModelProcess? _process;
    private int _messages;

    public ModelWorld World => _world;

    public static async Task RunAsync(ModelBackend backend, ModelOp[] ops)
    {
        var runner = new SpoolModelRunner(backend);
        try
        {
            await runner.RunAsync(ops).ConfigureAwait(false);
        }
        finally
        {
            if (runner._process is { } process)
            {
                await process.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    public async Task RunAsync(ModelOp[] ops)
    {
        _process = await ModelProcess.StartAsync(backend, _world, recover: true).ConfigureAwait(false);
        var step = 0;
        foreach (var op in ops)
        {
            try
            {
                await ApplyAsync(op).ConfigureAwait(false);
            }
            catch (SimulatedCrashException)
            {
            }
            catch (Exception ex)
            {
                _world.Violation(string.Create(CultureInfo.InvariantCulture, $"step {step} ({op}) threw {ex}"));
            }

            await AfterStepAsync().ConfigureAwait(false);
            step++;
        }

        await DrainAsync().ConfigureAwait(false);
        Check();
        if (_world.Violations.Count > 0)
        {
            throw new ModelViolationException(Report(ops));
        }
    }

    private async Task ApplyAsync(ModelOp op)
    {
        var process = _process!;
        switch (op)
        {
            case IntakeOp intake:
                await IntakeAsync(process, intake).ConfigureAwait(false);
                break;
            case DeliverOp deliver:
                await backend.DeliverDueAsync(process, deliver.Race).ConfigureAwait(false);
                break;
            case SweepOp:
                await SweepAsync(process).ConfigureAwait(false);
                break;
            case AdvanceOp advance:
                await AdvanceAsync(advance.By).ConfigureAwait(false);
                break;
            case SkewOp skew:
                process.Clock.Offset = skew.Offset;
                break;
            case PrimaryDownOp down:
                _world.DownDomains.Add(ModelWorld.DomainName(down.Domain));
                break;
            case PrimaryUpOp up:
                _world.DownDomains.Remove(ModelWorld.DomainName(up.Domain));
                await ProbeAsync(process).ConfigureAwait(false);
                break;
            case ProbeOp:
                await ProbeAsync(process).ConfigureAwait(false);
                break;
            case CrashOp crash when crash.AfterWrites == 0:
                process.Crash.Kill();
                break;
            case CrashOp crash:
                process.Crash.Arm(crash.AfterWrites, crash.AfterTheWrite);
                break;
            case FaultOp fault:
                process.Crash.ArmFault(fault.AfterWrites, fault.AfterTheWrite);
                break;
            case CrashAfter250Op:
                _world.CrashAfter250 = true;
                break;
            case ExpireOp:
                await AdvanceAsync(ModelBackend.Retention + ModelBackend.LeaseDuration).ConfigureAwait(false);
                break;
            case LoseWakeUpsOp:
                backend.LoseWakeUps();
                break;
            case AdminFlushOp flush:
                await AdminFlushAsync(ModelWorld.DomainName(flush.Domain)).ConfigureAwait(false);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(op), op, "unknown operation");
        }
    }

    /// <summary>
    /// Moves the clock on. A short step is just that; through a long one the relay keeps running,
    /// as it would: what is due is dispatched, and the sweep runs, at least every
    /// <see cref="LongStep"/>. Otherwise a DSN queued just before a jump past its retention would
    /// expire unsent, which only a relay stopped for that long would do.
    /// </summary>
    private async Task AdvanceAsync(TimeSpan by)
    {
        if (by <= LongStep)
        {
            _world.Time.Advance(by);
            return;
        }

        await RunLoopsAsync(sweep: false).ConfigureAwait(false);
        while (by > TimeSpan.Zero)
        {
            var step = by < LongStep ? by : LongStep;
            _world.Time.Advance(step);
            by -= step;
            await RunLoopsAsync(sweep: true).ConfigureAwait(false);
        }
    }

    /// <summary>The relay's background loops once; a relay that dies in them is restarted at once, as by its supervisor.</summary>
    private async Task RunLoopsAsync(bool sweep)
    {
        await backend.DeliverDueAsync(_process!, race: false).ConfigureAwait(false);
        if (sweep && !_process!.Crash.Killed)
        {
            await SweepAsync(_process).ConfigureAwait(false);
            await backend.DeliverDueAsync(_process, race: false).ConfigureAwait(false);
        }

        await AfterStepAsync().ConfigureAwait(false);
    }

    /// <summary>Restarts a relay that died; excuses the repeats that a failed write of an outcome makes legitimate.</summary>
    private async Task AfterStepAsync()
    {
        var process = _process!;
        foreach (var entry in process.Crash.Log)
        {
            _world.Errors.Add(string.Create(CultureInfo.InvariantCulture, $"life {_world.Epoch}: injected {entry}"));
        }

        process.Crash.Log.Clear();
        if (process.Crash.FaultedRecords.Count > 0)
        {
            var faulted = process.Crash.FaultedRecords.ToHashSet(StringComparer.Ordinal);
            process.Crash.FaultedRecords.Clear();
            await ExcuseLostOutcomesAsync(ledger => faulted.Any(id => id == ledger.QueueId || id.StartsWith(ledger.QueueId + "-d", StringComparison.Ordinal))).ConfigureAwait(false);
        }

        if (process.Crash.Killed)
        {
            await RestartAsync().ConfigureAwait(false);
        }
    }

    private async Task IntakeAsync(ModelProcess process, IntakeOp intake)
    {
        var n = _messages++;
        var sender = ModelWorld.SenderAddress(intake.Sender);
        var ledgers = new List<(RecipientLedger Ledger, string Domain)>();
        for (var i = 0; i < intake.Recipients.Count; i++)
        {
            var plan = intake.Recipients[i];
            var domain = ModelWorld.DomainName(plan.Domain);
            var ledger = new RecipientLedger
            {
                Address = string.Create(CultureInfo.InvariantCulture, $"m{n}r{i}@{domain}"),
                Sender = sender,
                Fate = plan.Fate,
            };
            _world.Locked(() => _world.Recipients[ledger.Address] = ledger);
            ledgers.Add((ledger, domain));
        }

        var message = new IncomingMessage
        {
            Sender = sender,
            Recipients = ledgers.Select(l => new IncomingRecipient(l.Ledger.Address)).ToList(),
            Content = MessageContent.FromBytes(Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"Subject: m{n}\r\n\r\nbody of message {n}\r\n"))),
            ClientAddress = "192.0.2.1",
            HeloName = "client.test",
        };
        var result = await process.Intake.AcceptAsync(message, CancellationToken.None).ConfigureAwait(false);
        if (result is IntakeResult.Failed && !process.Crash.Killed)
        {
            // The client was told 451 and tries again: whatever the first try left must not be delivered too.
            result = await process.Intake.AcceptAsync(message, CancellationToken.None).ConfigureAwait(false);
        }

        if (result is not IntakeResult.Accepted accepted || process.Crash.Killed)
        {
            return;
        }

        // Intake makes one record per domain, in the order the domains first appear.
        var domains = ledgers.Select(l => l.Domain).Distinct(StringComparer.OrdinalIgnoreCase).ToList();
        if (accepted.QueueIds.Count != domains.Count)
        {
            _world.Violation($"m{n}: {domains.Count} domain(s) but {accepted.QueueIds.Count} queue id(s)");
            return;
        }

        foreach (var (ledger, domain) in ledgers)
        {
            var group = domains.FindIndex(d => string.Equals(d, domain, StringComparison.OrdinalIgnoreCase));
            ledger.QueueId = accepted.QueueIds[group];
            ledger.Place = ledgers.Where(l => string.Equals(l.Domain, domain, StringComparison.OrdinalIgnoreCase)).Select(l => l.Ledger).ToList().IndexOf(ledger);
            ledger.Accepted = true;
        }
    }

    private static async Task ProbeAsync(ModelProcess process)
    {
        try
        {
            await process.Monitor.ProbeAllAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not SimulatedCrashException)
        {
            // The probe loop logs a failed round and probes again after its interval.
            process.Errors.Add("probe: " + ex.GetType().Name + ": " + ex.Message);
        }
    }

    private static async Task SweepAsync(ModelProcess process)
    {
        try
        {
            await process.Sweeper.SweepAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (SimulatedCrashException)
        {
        }
        catch (Exception ex)
        {
            // The sweep service logs a failed sweep and runs again a minute later.
            process.Errors.Add("sweep: " + ex.GetType().Name + ": " + ex.Message);
        }
    }

    /// <summary>The operator's <c>flush DOMAIN</c>: another process with its own stores on the same storage.</summary>
    private async Task AdminFlushAsync(string domain)
    {
        var ports = await backend.OpenAsync(_world.Time).ConfigureAwait(false);
        try
        {
            var flusher = new DomainFlusher(new BackupMx.Core.Spool.SpoolLedger(ports.Spool, ports.Bodies, ports.WakeUps, _world.Time, Microsoft.Extensions.Logging.Abstractions.NullLogger<BackupMx.Core.Spool.SpoolLedger>.Instance), _world.Time, NullLogger<DomainFlusher>.Instance);
            await flusher.FlushAsync(domain, "operator request", CancellationToken.None).ConfigureAwait(false);
        }
        finally
        {
            if (ports.Owned is { } owned)
            {
                await owned.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    private async Task RestartAsync()
    {
        await ExcuseLostOutcomesAsync(_ => true).ConfigureAwait(false);
        _world.Epoch++;
        _world.CrashAfter250 = false;
        backend.AfterCrash();
        await _process!.DisposeAsync().ConfigureAwait(false);
        _process = null;
        _process = await ModelProcess.StartAsync(backend, _world, recover: true).ConfigureAwait(false);
    }

    /// <summary>
    /// At a crash, the outcomes the dead process had not yet written down: a recipient the primary
    /// took in this life that the spool still shows pending may be delivered again, and a recipient
    /// still owed its notice, or named by a DSN still queued, may be told again. Likewise for the
    /// records whose own write failed (<paramref name="which"/>), though the process lived on.
    /// </summary>
    private async Task ExcuseLostOutcomesAsync(Func<RecipientLedger, bool> which)
    {
        var records = (await backend.ListAllAsync().ConfigureAwait(false)).ToDictionary(r => r.QueueId, StringComparer.Ordinal);
        foreach (var ledger in _world.Recipients.Values.Where(l => l.QueueId is not null && which(l)))
        {
            var original = records.GetValueOrDefault(ledger.QueueId!);
            var state = original is not null && ledger.Place < original.Recipients.Count ? original.Recipients[ledger.Place] : null;
            if (ledger.Delivered.Contains(_world.Epoch) && state is { Status: RecipientStatus.Pending })
            {
                ledger.ExcusedDeliveries++;
            }

            var noticeQueued = records.Values.Any(r => r.Kind == MessageKind.Dsn && NamesPlace(r.QueueId, ledger.QueueId!, ledger.Place));
            if (state is { NeedsNotification: true } || noticeQueued)
            {
                ledger.ExcusedBounces++;
            }
        }
    }

    /// <summary>Whether a DSN id (<c>{original}-d{i}.{j}...</c>) covers the recipient at <paramref name="place"/>.</summary>
    private static bool NamesPlace(string dsnId, string originalId, int place)
    {
        var prefix = originalId + "-d";
        if (!dsnId.StartsWith(prefix, StringComparison.Ordinal))
        {
            return false;
        }

        var places = dsnId[prefix.Length..];

        // A long set is hashed: it may cover anyone of the message.
        return places.Contains('-', StringComparison.Ordinal)
            || places.Split('.').Any(p => int.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out var i) && i == place);
    }

    /// <summary>
    /// With the relay running, past every retention and lease (of what is spooled now), then one
    /// dispatch, one sweep and one dispatch (for the DSNs it queued).
    /// </summary>
    private async Task DrainAsync()
    {
        var process = _process!;
        process.Crash.Disarm();
        process.Clock.Offset = TimeSpan.Zero;
        _world.CrashAfter250 = false;

        var records = await backend.ListAllAsync().ConfigureAwait(false);
        var horizon = records.Select(r => r.ExpiresAt).Append(_world.Time.GetUtcNow()).Max() + ModelBackend.LeaseDuration + TimeSpan.FromMinutes(1);
        await AdvanceAsync(horizon - _world.Time.GetUtcNow()).ConfigureAwait(false);

        await backend.DeliverDueAsync(process, race: false).ConfigureAwait(false);
        await SweepAsync(process).ConfigureAwait(false);
        await backend.DeliverDueAsync(process, race: false).ConfigureAwait(false);

        foreach (var left in await backend.ListAllAsync().ConfigureAwait(false))
        {
            _world.Violation(string.Create(
                CultureInfo.InvariantCulture,
                $"still spooled past its retention and a sweep: {left.Kind} {left.QueueId} for {left.Domain} (expired {left.ExpiresAt:O}, next {left.NextAttemptAt:O}, leased {left.LeaseExpiresAt:O}, {left.Attempts} attempts, last error {left.LastError}): {string.Join(", ", left.Recipients.Select(r => $"{r.Address} {r.Status}{(r.NeedsNotification ? " owed a DSN" : string.Empty)}"))}"));
        }
    }

    private void Check()
    {
        foreach (var ledger in _world.Recipients.Values.Where(l => l.Accepted))
        {
            var delivered = ledger.Delivered.Count;
            var bounced = ledger.Bounced.Count;
            if (delivered > 1 + ledger.ExcusedDeliveries)
            {
                _world.Violation($"delivered {delivered} times, {ledger.ExcusedDeliveries} repeat(s) excused by a crash: {ledger}");
            }

            if (bounced > 1 + ledger.ExcusedBounces)
            {
                _world.Violation($"bounced {bounced} times, {ledger.ExcusedBounces} repeat(s) excused by a crash: {ledger}");
            }

            if (ledger.Sender.Length == 0)
            {
                if (bounced > 0)
                {
                    _world.Violation($"a null sender's recipient was bounced: {ledger}");
                }

                continue;
            }

            // An outcome lost after the 250 leaves the recipient pending: it may then expire and be
            // bounced, which the relay cannot know better than that.
            if (delivered > 0 && bounced > 0 && ledger.ExcusedDeliveries == 0)
            {
                _world.Violation($"both delivered and bounced: {ledger}");
            }
            else if (delivered == 0 && bounced == 0)
            {
                _world.Violation($"neither delivered nor bounced: {ledger}");
            }
        }
    }

    private string Report(ModelOp[] ops)
    {
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"{backend.Name}: {_world.Violations.Count} violation(s)");
        foreach (var violation in _world.Violations.Take(20))
        {
            text.Append("\n- ").Append(violation);
        }

        text.Append("\nOperations:").Append(ModelGen.Print(ops));
        if (_world.Errors.Count > 0)
        {
            text.Append("\nErrors the hosts would have logged:");
            foreach (var error in _world.Errors.Distinct().Take(30))
            {
                text.Append("\n  ").Append(error);
            }
        }

        return text.ToString();
    }
}

public sealed class ModelViolationException(string message) : Exception(message);
