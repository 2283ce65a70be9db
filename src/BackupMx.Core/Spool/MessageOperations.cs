using BackupMx.Core.Configuration;
using BackupMx.Core.Forwarding;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BackupMx.Core.Spool;

/// <summary>
/// The operator's message commands (show, hold, release, delete) as one set of operations, so the
/// embedded server's commands and the Azure admin API do the same thing. Every change goes through
/// <see cref="SpoolLedger"/>; this class only finds messages by queue id, waits a bounded time for a
/// delivery in progress, and queues the notice of an administrator's removal.
/// </summary>
public sealed partial class MessageOperations(
    SpoolLedger ledger,
    DsnQueue dsnQueue,
    IBodyStore bodies,
    IOptions<BackupMxOptions> options,
    TimeProvider time,
    ILogger<MessageOperations> logger)
{
    /// <summary>The status each undelivered recipient of a message deleted with a notice gets (RFC 3463: other or undefined status).</summary>
    public const string RemovedStatus = "5.0.0";

    /// <summary>The reason given in the notice, as its diagnostic text.</summary>
    public const string RemovedText = "removed from the backup MX's queue by an administrator; it was not delivered";

    // How often a leased message is looked at again while a command waits for its attempt to end.
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(250);

    /// <summary>Queue ids never contain a dot and domain names of configured domains always do.</summary>
    public static bool LooksLikeDomain(string target) => target.Contains('.', StringComparison.Ordinal);

    /// <summary>
    /// The record with <paramref name="queueId"/>, whatever its domain, or null. Ids are unique across
    /// the spool; the scan reads every record, which an operator's command can afford.
    /// </summary>
    public async Task<SpoolRecord?> FindAsync(string queueId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(queueId);
        await foreach (var record in ledger.ListAllAsync(cancellationToken).ConfigureAwait(false))
        {
            if (string.Equals(record.QueueId, queueId, StringComparison.Ordinal))
            {
                return record;
            }
        }

        return null;
    }

    /// <summary>Everything the spool keeps about one message, with its headers (or its whole body) from the body store.</summary>
    public async Task<MessageDetails?> ShowAsync(string queueId, bool wholeBody, CancellationToken cancellationToken)
    {
        var record = await FindAsync(queueId, cancellationToken).ConfigureAwait(false);
        if (record is null)
        {
            return null;
        }

        string? content;
        try
        {
            var stream = await bodies.OpenReadAsync(queueId, cancellationToken).ConfigureAwait(false);
            await using (stream.ConfigureAwait(false))
            {
                content = await MessageDetails.ReadAsync(stream, wholeBody, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (BodyNotFoundException)
        {
            content = null;
        }

        return MessageDetails.From(record, time.GetUtcNow(), options.Value.Delivery.Retention, content, wholeBody);
    }

    /// <summary>Holds one message, waiting up to <paramref name="wait"/> for a delivery in progress to end.</summary>
    public Task<LedgerChange> HoldAsync(SpoolRecord record, TimeSpan wait, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(record);
        return WaitOutLeaseAsync(ct => ledger.HoldAsync(record.Domain, record.QueueId, ct), wait, cancellationToken);
    }

    /// <summary>Releases one held message (due now; its expiry kept, or one more day when it has passed).</summary>
    public Task<LedgerChange> ReleaseAsync(SpoolRecord record, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(record);
        return ledger.ReleaseHeldAsync(record.Domain, record.QueueId, expiresAt: null, cancellationToken);
    }

    /// <summary>Holds or releases every message of <paramref name="domain"/>; one outcome per message.</summary>
    public async Task<IReadOnlyList<(string QueueId, LedgerChange Change)>> ChangeDomainAsync(string domain, bool hold, TimeSpan wait, CancellationToken cancellationToken)
    {
        // Listed first: the changes rewrite the records the listing reads.
        var records = new List<SpoolRecord>();
        await foreach (var record in ledger.ListDomainAsync(domain, cancellationToken).ConfigureAwait(false))
        {
            records.Add(record);
        }

        var outcomes = new List<(string, LedgerChange)>();
        foreach (var record in records)
        {
            var change = hold
                ? await HoldAsync(record, wait, cancellationToken).ConfigureAwait(false)
                : await ReleaseAsync(record, cancellationToken).ConfigureAwait(false);
            outcomes.Add((record.QueueId, change));
        }

        return outcomes;
    }

    /// <summary>
    /// One operator command on one message, as the embedded server's commands and the Azure admin
    /// API name it: "hold", "release" or "delete" (with <paramref name="notify"/>: tell the sender).
    /// </summary>
    public async Task<CommandOutcome> ChangeAsync(SpoolRecord record, string command, bool notify, TimeSpan wait, CancellationToken cancellationToken) => command switch
    {
        "hold" => new CommandOutcome(await HoldAsync(record, wait, cancellationToken).ConfigureAwait(false), null),
        "release" => new CommandOutcome(await ReleaseAsync(record, cancellationToken).ConfigureAwait(false), null),
        "delete" => await DeleteAsync(record, notify, wait, cancellationToken).ConfigureAwait(false),
        _ => throw new ArgumentOutOfRangeException(nameof(command), command, "not a message command"),
    };

    /// <summary>
    /// Deletes one message, waiting up to <paramref name="wait"/> for a delivery in progress to end
    /// (never racing it: the ledger refuses a leased record). With <paramref name="notify"/> the sender
    /// is first told, by a DSN queued like any other, that an administrator removed it; the message is
    /// held before the notice is queued, so no attempt can deliver it in between, and a crash before
    /// the delete leaves it held with its notice queued once (the notice's id is the same next time).
    /// </summary>
    public async Task<CommandOutcome> DeleteAsync(SpoolRecord record, bool notify, TimeSpan wait, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(record);
        string? dsnId = null;
        if (notify)
        {
            var hold = await HoldAsync(record, wait, cancellationToken).ConfigureAwait(false);
            if (hold is LedgerChange.NotFound or LedgerChange.Busy)
            {
                return new CommandOutcome(hold, null);
            }

            var held = await ledger.FindAsync(record.Domain, record.QueueId, cancellationToken).ConfigureAwait(false);
            if (held is null)
            {
                return new CommandOutcome(LedgerChange.NotFound, null);
            }

            dsnId = await QueueRemovalNoticeAsync(held, cancellationToken).ConfigureAwait(false);
        }

        var change = await WaitOutLeaseAsync(ct => ledger.DeleteAsync(record.Domain, record.QueueId, ct), wait, cancellationToken).ConfigureAwait(false);
        return new CommandOutcome(change, dsnId);
    }

    private async Task<string?> QueueRemovalNoticeAsync(SpoolRecord held, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        foreach (var recipient in held.PendingRecipients.ToList())
        {
            held = SpoolLedger.RecordReply(held, recipient, SmtpReply.LocalPermanent(RemovedStatus, RemovedText), remoteHost: null);
            held = SpoolLedger.RecordFailed(held, recipient, RemovedStatus, now);
        }

        // Also any notice still owed from earlier outcomes: after the delete nothing else would send it.
        var toNotify = held.Recipients.Where(r => r.NeedsNotification).Select(r => new DsnRecipient(r, r.NoticeAction)).ToList();
        if (!SpoolLedger.MayNotify(held) || toNotify.Count == 0)
        {
            LogRemovalWithoutNotice(logger, held.QueueId);
            return null;
        }

        var dsnId = await dsnQueue.EnqueueAsync(held, toNotify, cancellationToken).ConfigureAwait(false);
        LogRemovalNoticeQueued(logger, dsnId, held.QueueId);
        return dsnId;
    }

    private async Task<LedgerChange> WaitOutLeaseAsync(Func<CancellationToken, Task<LedgerChange>> change, TimeSpan wait, CancellationToken cancellationToken)
    {
        var deadline = time.GetUtcNow() + wait;
        while (true)
        {
            var result = await change(cancellationToken).ConfigureAwait(false);
            var remaining = deadline - time.GetUtcNow();
            if (result != LedgerChange.Busy || remaining <= TimeSpan.Zero)
            {
                return result;
            }

            await Task.Delay(remaining < PollInterval ? remaining : PollInterval, time, cancellationToken).ConfigureAwait(false);
        }
    }

    [LoggerMessage(EventId = 1960, Level = LogLevel.Warning, Message = "Queued DSN {DsnId}: {QueueId} was removed by an administrator")]
    private static partial void LogRemovalNoticeQueued(ILogger logger, string dsnId, string queueId);

    [LoggerMessage(EventId = 1961, Level = LogLevel.Information, Message = "No DSN for the removal of {QueueId}: null sender, a DSN itself, or no recipient asked for one")]
    private static partial void LogRemovalWithoutNotice(ILogger logger, string queueId);
}

/// <summary>What an operator command did to one message.</summary>
/// <param name="Change">Done; NotFound; Busy: still being delivered when the wait ran out.</param>
/// <param name="DsnId">The queue id of the notice to the sender, when one was queued.</param>
public readonly record struct CommandOutcome(LedgerChange Change, string? DsnId);
