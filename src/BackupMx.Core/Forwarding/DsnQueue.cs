using BackupMx.Core.Configuration;
using BackupMx.Core.Intake;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using Microsoft.Extensions.Options;

namespace BackupMx.Core.Forwarding;

/// <summary>
/// Spools a DSN as a message of its own (kind <see cref="MessageKind.Dsn"/>), from the
/// null sender to the original envelope sender, so it is retried like any other mail
/// and survives restarts. Its id derives from the original's and its first recipient's
/// place in it, so queuing the same notice twice (a crash between the two writes) finds
/// the first copy and stops; each recipient is the subject of one notice at most (failed
/// or relayed, never both), so different notices of one message get different ids.
/// </summary>
public sealed class DsnQueue(
    ISpoolStore spool,
    IBodyStore bodies,
    IWakeUpQueue wakeUps,
    IDsnComposer composer,
    IOptions<BackupMxOptions> options,
    TimeProvider time)
{
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

        var firstIndex = original.Recipients.FindIndex(r => ReferenceEquals(r, recipients[0].Recipient));
        var dsnId = $"{original.QueueId}-d{Math.Max(firstIndex, 0)}";
        var domain = IntakeService.DomainOf(original.Sender);
        if (await spool.GetAsync(domain, dsnId, cancellationToken).ConfigureAwait(false) is not null)
        {
            return dsnId;
        }

        var now = time.GetUtcNow();
        long length;
        await using (var originalBody = await bodies.OpenReadAsync(original.QueueId, cancellationToken).ConfigureAwait(false))
        {
            var composed = new MemoryStream();
            await composer.ComposeAsync(original, recipients, originalBody, composed, cancellationToken).ConfigureAwait(false);
            composed.Position = 0;
            length = await bodies.WriteAsync(dsnId, composed, cancellationToken).ConfigureAwait(false);
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
            await spool.CreateAsync(record, cancellationToken).ConfigureAwait(false);
        }
        catch (SpoolConflictException)
        {
            return dsnId;
        }

        await wakeUps.ScheduleAfterCommitAsync(spool, record, now, cancellationToken).ConfigureAwait(false);

        return dsnId;
    }
}
