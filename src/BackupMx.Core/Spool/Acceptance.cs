using System.Buffers;
using BackupMx.Core.Intake;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;

namespace BackupMx.Core.Spool;

/// <summary>
/// Accepting one message into the spool, as one or more records (rule 1): each record's body is
/// written before the record, and a record is refused unless its body was. Until every record is
/// committed nothing may be woken; if any write fails, <see cref="UndoAsync"/> removes what was
/// written, every record before any body, and keeps the body of a record it could not remove, since
/// a record must never exist without its body.
/// <para>
/// Where the spool can store a small body with its record (<see cref="IInlineBodySpoolStore"/>),
/// a body that fits is held in memory until the record is committed, and both go in that one
/// commit; the order "body, then record" is kept by storing them together.
/// </para>
/// </summary>
public sealed class Acceptance
{
    private readonly ISpoolStore _spool;
    private readonly IBodyStore _bodies;
    private readonly List<SpoolRecord> _committed = [];
    private readonly List<string> _bodyIds = [];
    private readonly Dictionary<string, byte[]> _heldBodies = new(StringComparer.Ordinal);
    private SpoolRecord? _uncertain;

    internal Acceptance(ISpoolStore spool, IBodyStore bodies)
    {
        _spool = spool;
        _bodies = bodies;
    }

    /// <summary>The records committed so far, in order, as stored.</summary>
    public IReadOnlyList<SpoolRecord> Committed => _committed;

    /// <summary>
    /// Writes the body of <paramref name="queueId"/> durably, or holds it for <see cref="CommitAsync"/>
    /// to store with its record when the spool can; returns its length.
    /// </summary>
    public async Task<long> WriteBodyAsync(string queueId, Stream content, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(content);
        _bodyIds.Add(queueId);
        if (_spool is not IInlineBodySpoolStore inline)
        {
            return await _bodies.WriteAsync(queueId, content, cancellationToken).ConfigureAwait(false);
        }

        // One byte more than fits tells a body that fits from one that does not.
        var buffer = ArrayPool<byte>.Shared.Rent(inline.MaxInlineBodyBytes + 1);
        try
        {
            var read = await content.ReadAtLeastAsync(buffer.AsMemory(0, inline.MaxInlineBodyBytes + 1), inline.MaxInlineBodyBytes + 1, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
            if (read <= inline.MaxInlineBodyBytes)
            {
                _heldBodies[queueId] = buffer.AsSpan(0, read).ToArray();
                return read;
            }

            // Too big: the bytes read so far, then the rest, go to the body store as one stream.
            await using var whole = new PrefixedStream(buffer.AsMemory(0, read), content);
            return await _bodies.WriteAsync(queueId, whole, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// Creates the record, whose body this acceptance has written. A create that fails may still
    /// have been stored (a lost response): the undo looks it up.
    /// </summary>
    /// <returns>The record as stored, with its ETag.</returns>
    /// <exception cref="SpoolConflictException">A record with this queue id exists already.</exception>
    public async Task<SpoolRecord> CommitAsync(SpoolRecord record, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(record);
        if (!_bodyIds.Contains(record.QueueId))
        {
            throw new InvalidOperationException($"The body of {record.QueueId} must be written before its record.");
        }

        _uncertain = record;
        var stored = _heldBodies.Remove(record.QueueId, out var body)
            ? await ((IInlineBodySpoolStore)_spool).CreateWithBodyAsync(record, body, cancellationToken).ConfigureAwait(false)
            : await _spool.CreateAsync(record, cancellationToken).ConfigureAwait(false);

        _uncertain = null;
        _committed.Add(stored);
        return stored;
    }

    /// <summary>
    /// Removes everything written, records before bodies. Not cancellable: the client may be gone,
    /// but half-written mail must still be removed. Returns each failure with the queue id it concerns.
    /// </summary>
    public async Task<IReadOnlyList<(string QueueId, Exception Error)>> UndoAsync()
    {
        var failures = new List<(string, Exception)>();
        var undeletedRecords = new HashSet<string>();
        foreach (var record in _committed)
        {
            try
            {
                if (!await _spool.TryDeleteAsync(record, CancellationToken.None).ConfigureAwait(false))
                {
                    undeletedRecords.Add(record.QueueId);
                }
            }
            catch (Exception ex)
            {
                undeletedRecords.Add(record.QueueId);
                failures.Add((record.QueueId, ex));
            }
        }

        if (_uncertain is { } uncertain)
        {
            // The queue id was made for this message, so a record with it is ours.
            try
            {
                var stored = await _spool.GetAsync(uncertain.Domain, uncertain.QueueId, CancellationToken.None).ConfigureAwait(false);
                if (stored is not null && !await _spool.TryDeleteAsync(stored, CancellationToken.None).ConfigureAwait(false))
                {
                    undeletedRecords.Add(uncertain.QueueId);
                }
            }
            catch (Exception ex)
            {
                undeletedRecords.Add(uncertain.QueueId);
                failures.Add((uncertain.QueueId, ex));
            }
        }

        foreach (var id in _bodyIds)
        {
            // A record we could not delete keeps its body, so it stays deliverable rather than broken.
            if (undeletedRecords.Contains(id))
            {
                continue;
            }

            try
            {
                await _bodies.DeleteAsync(id, CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                failures.Add((id, ex));
            }
        }

        _committed.Clear();
        _uncertain = null;
        _bodyIds.Clear();
        _heldBodies.Clear();
        return failures;
    }
}
