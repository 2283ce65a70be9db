using BackupMx.Core.Model;

namespace BackupMx.Core.Ports;

/// <summary>
/// An <see cref="ISpoolStore"/> that can keep a small body in the same durable commit as its
/// record. Accepting a message then costs one commit, shared with every other message committed
/// at the same moment (group commit), instead of a body write with its own file and folder
/// syncs followed by the record's commit. Rule 1 holds as before: the body and the record are
/// durable before the create returns, and neither is stored if it fails.
/// </summary>
/// <remarks>
/// The same implementation's <see cref="IBodyStore"/> must read such a body back and keep it
/// until its record is deleted. Bodies larger than <see cref="MaxInlineBodyBytes"/> go to the
/// <see cref="IBodyStore"/> as usual.
/// </remarks>
public interface IInlineBodySpoolStore
{
    /// <summary>The largest body, in bytes, stored with its record.</summary>
    int MaxInlineBodyBytes { get; }

    /// <summary>Creates the record and its body in one commit, like <see cref="ISpoolStore.CreateAsync"/>, and returns the stored version.</summary>
    /// <exception cref="SpoolConflictException">A record with this queue id exists already; nothing was stored.</exception>
    Task<SpoolRecord> CreateWithBodyAsync(SpoolRecord record, byte[] body, CancellationToken cancellationToken);
}
