using System.Globalization;
using System.Text;
using System.Text.Json;
using BackupMx.Core.Configuration;
using BackupMx.Core.Hosting;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using BackupMx.Core.Spool;
using BackupMx.Delivery.Dsn;
using BackupMx.Local;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace BackupMx.Server;

/// <summary>
/// <c>show</c>, <c>hold</c>, <c>release</c> and <c>delete</c>: one message (or, for hold and release,
/// one domain's messages) in an existing spool, also while the relay runs, through
/// <see cref="MessageOperations"/> and so through the spool ledger. Like the other commands they never
/// create a spool. The running relay sees a release within its idle interval.
/// </summary>
internal static class MessageCommands
{
    public static readonly string[] Names = ["show", "hold", "release", "delete"];

    /// <summary>No message with that queue id (it was delivered, deleted, or never existed).</summary>
    public const int ExitNotFound = 1;

    /// <summary>The message is being delivered and its attempt did not end within the wait (EX_TEMPFAIL): try again.</summary>
    public const int ExitBusy = 75;

    public const string BodyFlag = "--body";
    public const string BounceFlag = "--bounce";
    public const string WaitPrefix = "--wait=";

    /// <summary>How long hold and delete wait for a delivery in progress by default.</summary>
    public static readonly TimeSpan DefaultWait = TimeSpan.FromSeconds(30);

    private const string Usage = "usage: BackupMx.Server [show QUEUEID [--body] | hold QUEUEID|DOMAIN | release QUEUEID|DOMAIN | delete QUEUEID [--bounce]] [--json] [--wait=SECONDS] [--BackupMx:Key=value ...]";

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    public static async Task<int> RunAsync(string[] positional, string[] options)
    {
        var command = positional[0];
        var json = Take(ref options, QueueReport.JsonFlag);
        var body = Take(ref options, BodyFlag);
        var bounce = Take(ref options, BounceFlag);
        var wait = TakeWait(ref options);
        if (positional.Length != 2 || wait is null || (body && command != "show") || (bounce && command != "delete")
            || (command is "show" or "delete" && MessageOperations.LooksLikeDomain(positional[1])))
        {
            await Console.Error.WriteLineAsync(Usage).ConfigureAwait(false);
            return AdminCommands.ExitUsage;
        }

        // The notice of delete --bounce is composed here and sent by the relay.
        using var spool = await AdminCommands.OpenSpoolAsync(options, s => s.TryAddSingleton<IDsnComposer, MimeKitDsnComposer>()).ConfigureAwait(false);
        if (spool is null)
        {
            return AdminCommands.ExitNoSpool;
        }

        var (services, config, spoolPath) = (spool.Services, spool.Config, spool.SpoolPath);
        var ct = CancellationToken.None;
        var operations = services.GetRequiredService<MessageOperations>();
        var target = positional[1];
        if (MessageOperations.LooksLikeDomain(target))
        {
            return await ChangeDomainAsync(operations, config, command == "hold", target, wait.Value, json, spoolPath, ct).ConfigureAwait(false);
        }

        if (command == "show")
        {
            var details = await operations.ShowAsync(target, body, ct).ConfigureAwait(false);
            if (details is null)
            {
                return await NotFoundAsync(target).ConfigureAwait(false);
            }

            Console.Out.Write(json
                ? JsonSerializer.Serialize(new { schema = QueueReport.JsonSchemaVersion, spool = spoolPath, message = details }, Json) + "\n"
                : ShowText(details));
            return 0;
        }

        var record = await operations.FindAsync(target, ct).ConfigureAwait(false);
        if (record is null)
        {
            return await NotFoundAsync(target).ConfigureAwait(false);
        }

        var (change, dsnId) = await operations.ChangeAsync(record, command, bounce, wait.Value, ct).ConfigureAwait(false);

        if (change == LedgerChange.NotFound)
        {
            return await NotFoundAsync(target).ConfigureAwait(false);
        }

        if (change == LedgerChange.Busy)
        {
            await Console.Error.WriteLineAsync(string.Create(
                CultureInfo.InvariantCulture,
                $"{target} is being delivered right now and its attempt did not end within {wait.Value.TotalSeconds:0} s: nothing was changed; try again, or wait longer with --wait=SECONDS")).ConfigureAwait(false);
            return ExitBusy;
        }

        var after = command == "delete" ? null : await services.GetRequiredService<SpoolLedger>().FindAsync(record.Domain, record.QueueId, ct).ConfigureAwait(false);
        var outcome = Outcome(command, change);
        if (json)
        {
            Write(new
            {
                schema = QueueReport.JsonSchemaVersion,
                spool = spoolPath,
                command,
                queueId = record.QueueId,
                domain = record.Domain,
                outcome,
                held = after?.IsHeld,
                expiresAt = after?.ExpiresAt,
                dsnQueueId = dsnId,
            });
            return 0;
        }

        Console.WriteLine(command switch
        {
            "hold" => change == LedgerChange.Done ? $"{record.QueueId} held: it is not delivered, flushed or expired until released" : $"{record.QueueId} was already held",
            "release" => change == LedgerChange.Done
                ? string.Create(CultureInfo.InvariantCulture, $"{record.QueueId} released: due now, expires {after?.ExpiresAt:u}{(after is not null && after.ExpiresAt > record.ExpiresAt ? " (released after expiry: one more day)" : string.Empty)}")
                : $"{record.QueueId} was not held",
            _ => dsnId is not null
                ? $"{record.QueueId} deleted; DSN {dsnId} to <{record.Sender}> says an administrator removed it"
                : bounce ? $"{record.QueueId} deleted; no DSN (null sender, a DSN itself, or NOTIFY=NEVER)" : $"{record.QueueId} deleted",
        });
        return 0;
    }

    private static async Task<int> ChangeDomainAsync(
        MessageOperations operations, BackupMxOptions config, bool hold, string target, TimeSpan wait, bool json, string spoolPath, CancellationToken ct)
    {
        var domain = config.FindDomain(target)?.Name ?? target;
        var outcomes = await operations.ChangeDomainAsync(domain, hold, wait, ct).ConfigureAwait(false);
        if (outcomes.Count == 0 && config.FindDomain(target) is null)
        {
            await Console.Error.WriteLineAsync($"{domain} is not a configured domain and nothing is queued for it").ConfigureAwait(false);
            return AdminCommands.ExitUnknownDomain;
        }

        var command = hold ? "hold" : "release";
        var changed = outcomes.Count(o => o.Change == LedgerChange.Done);
        var busy = outcomes.Where(o => o.Change == LedgerChange.Busy).Select(o => o.QueueId).ToList();
        if (json)
        {
            Write(new
            {
                schema = QueueReport.JsonSchemaVersion,
                spool = spoolPath,
                command,
                domain,
                messages = outcomes.Select(o => new { queueId = o.QueueId, outcome = Outcome(command, o.Change) }),
            });
        }
        else
        {
            Console.WriteLine(string.Create(
                CultureInfo.InvariantCulture,
                $"{changed} of {outcomes.Count} message(s) of {domain} {(hold ? "held" : "released")}{(busy.Count > 0 ? $"; being delivered, not changed: {string.Join(' ', busy)}" : string.Empty)}"));
        }

        return busy.Count > 0 ? ExitBusy : 0;
    }

    private static string Outcome(string command, LedgerChange change) => (command, change) switch
    {
        ("hold", LedgerChange.Done) => "held",
        ("hold", LedgerChange.Unchanged) => "alreadyHeld",
        ("release", LedgerChange.Done) => "released",
        ("release", LedgerChange.Unchanged) => "notHeld",
        ("delete", LedgerChange.Done) => "deleted",
        (_, LedgerChange.Busy) => "busy",
        (_, LedgerChange.NotFound) => "notFound",
        _ => change.ToString(),
    };

    private static async Task<int> NotFoundAsync(string queueId)
    {
        await Console.Error.WriteLineAsync($"no message {queueId} in the spool: it was delivered, deleted or never queued (see 'queue DOMAIN')").ConfigureAwait(false);
        return ExitNotFound;
    }

    internal static string ShowText(MessageDetails m)
    {
        var text = new StringBuilder();
        void Line(string value) => text.Append(value).Append('\n');
        Line($"queue id:   {m.QueueId} ({m.Kind}, {m.Bytes.ToString(CultureInfo.InvariantCulture)} bytes)");
        Line($"domain:     {m.Domain}");
        Line($"sender:     <{m.Sender}>");
        Line($"envelope:   RET={m.Envelope.Ret ?? "-"} ENVID={m.Envelope.EnvelopeId ?? "-"} BODY={m.Envelope.Body ?? "-"} SIZE={m.Envelope.DeclaredSize?.ToString(CultureInfo.InvariantCulture) ?? "-"}{(m.Envelope.SmtpUtf8 ? " SMTPUTF8" : string.Empty)}");
        Line($"client:     {m.ClientAddress ?? "-"} (HELO {m.HeloName ?? "-"})");
        Line(Invariant($"received:   {m.ReceivedAt:u}"));
        Line(Invariant($"expires:    {m.ExpiresAt:u}{(m.Hold.ExtendedOnRelease ? "  (released after expiry: one more day)" : string.Empty)}"));
        Line(m.Hold.Held
            ? Invariant($"hold:       held since {m.Hold.HeldAt:u}{(m.Hold.ExpiredWhileHeld ? "; its expiry has passed, a release gives it one more day" : string.Empty)}")
            : "hold:       not held");
        Line(m.DeliveryInProgressUntil is { } lease
            ? Invariant($"next:       being delivered now (claimed until {lease:u})")
            : m.NextAttemptAt is { } next ? Invariant($"next:       {next:u}") : "next:       - (held)");
        Line(Invariant($"attempts:   {m.Attempts} failed since arrival or the last flush; last {(m.LastAttemptAt is { } last ? last.ToString("u", CultureInfo.InvariantCulture) : "never")}: {m.LastError ?? "-"}"));
        Line(m.AttemptHistory.Count == 0 ? "history:    no attempt yet" : "history:    (latest attempts, oldest first)");
        foreach (var a in m.AttemptHistory)
        {
            Line(Invariant($"  {a.At:u}  {a.Host ?? "(no host)"}  {a.Reply ?? "-"}  ({a.Delivered} delivered, {a.Failed} failed, {a.Deferred} deferred)"));
        }

        Line("recipients:");
        foreach (var r in m.Recipients)
        {
            Line($"  <{r.Address}> {r.Status}{(r.FailureStatus is null ? string.Empty : " " + r.FailureStatus)}  NOTIFY={r.Notify ?? "-"} ORCPT={r.OriginalRecipient ?? "-"}");
            Line(Invariant($"    last reply: {r.LastReply ?? "-"}{(r.RemoteHost is null ? string.Empty : " from " + r.RemoteHost)}{(r.CompletedAt is { } done ? $" at {done:u}" : string.Empty)}{(r.NoticeOwed ? "  (DSN owed)" : string.Empty)}"));
        }

        if (m.Body is not null)
        {
            Line("message:");
            text.Append(m.Body);
        }
        else
        {
            Line(m.Headers is null ? "headers:    - (the body is gone from the body store)" : "headers:");
            text.Append(m.Headers);
        }

        return text.ToString();
    }

    private static string Invariant(FormattableString value) => value.ToString(CultureInfo.InvariantCulture);

    private static void Write(object document) => Console.Out.Write(JsonSerializer.Serialize(document, Json) + "\n");

    private static bool Take(ref string[] options, string flag)
    {
        var found = options.Contains(flag, StringComparer.Ordinal);
        options = options.Where(o => o != flag).ToArray();
        return found;
    }

    /// <summary>--wait=SECONDS (0 or more); null when the value is not a number.</summary>
    private static TimeSpan? TakeWait(ref string[] options)
    {
        var given = options.LastOrDefault(o => o.StartsWith(WaitPrefix, StringComparison.Ordinal));
        options = options.Where(o => !o.StartsWith(WaitPrefix, StringComparison.Ordinal)).ToArray();
        if (given is null)
        {
            return DefaultWait;
        }

        return int.TryParse(given.AsSpan(WaitPrefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var seconds)
            ? TimeSpan.FromSeconds(seconds)
            : null;
    }
}
