using BackupMx.Core.Configuration;
using BackupMx.Core.Intake;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using BackupMx.Core.Spool;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BackupMx.Core.Forwarding;

/// <summary>
/// Spools a DSN as a message of its own (kind <see cref="MessageKind.Dsn"/>), from the
/// null sender to the original envelope sender, so it is retried like any other mail
/// and survives restarts. Its id derives from the original's and the places of all the
/// recipients it covers, so queuing the same notice twice (a crash between the DSN write
/// and the original's update) finds the first copy and stops, while a notice that covers
/// more recipients than the copy found (others became due in the retry) gets an id of its
/// own: a recipient may then be told twice, but never not at all. An original whose body is
/// gone still gets its DSN, without the copy of the message: nothing owed a notice waits forever.
/// </summary>
public sealed partial class DsnQueue(
    SpoolLedger ledger,
    IBodyStore bodies,
    IDsnComposer composer,
    IOptions<BackupMxOptions> options,
    TimeProvider time,
    ILogger<DsnQueue> logger)
{
    /// <summary>
    /// <c>{queue id}-d{i}</c> for the recipient at place i, <c>-d{i}-{j}...</c> for several; a set
    /// too long for that is <c>-h</c> and a hash of all its places. Only characters that
    /// <see cref="QueueId.IsValid"/> allows, within its length, since the id names a body file,
    /// a blob and a table row; the two letters keep a list and a hash from ever meaning the same.
    /// </summary>
    public static string DsnId(SpoolRecord original, IReadOnlyList<DsnRecipient> recipients)
    {
        ArgumentNullException.ThrowIfNull(original);
        ArgumentNullException.ThrowIfNull(recipients);
        var places = recipients
            .Select(r => Math.Max(PlaceOf(original, r.Recipient), 0))
            .Distinct()
            .Order()
            .ToList();
        var joined = string.Join('-', places.Select(p => p.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        var room = QueueId.MaxLength - original.QueueId.Length - 2;
        if (joined.Length <= room)
        {
            return $"{original.QueueId}-d{joined}";
        }

        var hash = System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.ASCII.GetBytes(joined));
        return $"{original.QueueId}-h{Convert.ToHexStringLower(hash, 0, Math.Min(room, HashLength) / 2)}";
    }

    // The recipient's place in the original: the very state, or else the state of the same address
    // in this version of the record (intake keeps addresses unique within a record).
    private static int PlaceOf(SpoolRecord original, RecipientState recipient)
    {
        var recipients = original.Recipients;
        for (var i = 0; i < recipients.Count; i++)
        {
            if (ReferenceEquals(recipients[i], recipient))
            {
                return i;
            }
        }

        for (var i = 0; i < recipients.Count; i++)
        {
            if (string.Equals(recipients[i].Address, recipient.Address, StringComparison.Ordinal))
            {
                return i;
            }
        }

        return -1;
    }

    // 64 bits of SHA-256: two different sets of one message's recipients never meet in practice.
    private const int HashLength = 16;

    public async Task<string> EnqueueAsync(SpoolRecord original, IReadOnlyList<DsnRecipient> recipients, CancellationToken cancellationToken)
    {
        if (original.Sender.Length == 0)
        {
            throw new InvalidOperationException("A DSN is never sent to the null sender.");
        }

        if (original.Kind != MessageKind.Relay)
        {
            throw new InvalidOperationException("A DSN is never sent about a DSN.");
        }

        var dsnId = DsnId(original, recipients);
        var domain = IntakeService.DomainOf(original.Sender);
        if (await ledger.FindAsync(domain, dsnId, cancellationToken).ConfigureAwait(false) is not null)
        {
            return dsnId;
        }

        // A DSN left half-written is not undone: its id is the same next time, which overwrites the body.
        var acceptance = ledger.BeginAccept();

        var now = time.GetUtcNow();
        Stream? originalBody;
        try
        {
            originalBody = await bodies.OpenReadAsync(original.QueueId, cancellationToken).ConfigureAwait(false);
        }
        catch (BodyNotFoundException)
        {
            LogOriginalMissing(logger, original.QueueId, dsnId);
            originalBody = null;
        }

        long length;
        await using (originalBody)
        {
            var composed = new MemoryStream();
            await composer.ComposeAsync(original, recipients, originalBody, composed, cancellationToken).ConfigureAwait(false);
            composed.Position = 0;
            length = await acceptance.WriteBodyAsync(dsnId, composed, cancellationToken).ConfigureAwait(false);
        }

        var record = new SpoolRecord
        {
            QueueId = dsnId,
            Kind = MessageKind.Dsn,
            Domain = domain,
            Sender = string.Empty,
            Recipients = [new RecipientState { Address = original.Sender, Notify = "NEVER" }],
            ReceivedAt = now,
            ExpiresAt = now + options.Value.Delivery.Retention,
            NextAttemptAt = now,
            BodyLength = length,
        };

        try
        {
            record = await acceptance.CommitAsync(record, cancellationToken).ConfigureAwait(false);
        }
        catch (SpoolConflictException)
        {
            return dsnId;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // A create whose reply was lost may have committed. Taken for a failure, the notice
            // would stay owed while this copy is sent and removed, and the next attempt would
            // queue it again: read it back, and carry on with the copy that is there.
            if (await ledger.FindAsync(domain, dsnId, cancellationToken).ConfigureAwait(false) is null)
            {
                throw;
            }
        }

        try
        {
            await ledger.ScheduleWakeUpAsync(record, now, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // The DSN is spooled and due: the sweep (or the pump) finds it. Failing here would keep
            // its recipients marked, and once this DSN was sent and gone the next attempt would
            // queue the same notice again.
            LogWakeUpFailed(logger, ex, dsnId);
        }

        return dsnId;
    }

    [LoggerMessage(EventId = 1225, Level = LogLevel.Error, Message = "The body of {QueueId} is gone; its DSN {DsnId} is sent without the original message")]
    private static partial void LogOriginalMissing(ILogger logger, string queueId, string dsnId);

    [LoggerMessage(EventId = 1229, Level = LogLevel.Warning, Message = "Could not schedule the wake-up of DSN {DsnId}; the sweep will")]
    private static partial void LogWakeUpFailed(ILogger logger, Exception exception, string dsnId);
}
