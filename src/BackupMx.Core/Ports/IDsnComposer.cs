using BackupMx.Core.Model;

namespace BackupMx.Core.Ports;

/// <summary>Builds an RFC 3464 delivery status notification about some recipients of a message.</summary>
public interface IDsnComposer
{
    /// <summary>
    /// Writes the complete DSN message (headers and body) to <paramref name="output"/>, with one
    /// per-recipient block for each of <paramref name="recipients"/> carrying its action.
    /// <paramref name="originalBody"/> is the stored original, for its headers or, with RET=FULL, the whole of it;
    /// null when it is gone, and the DSN then says that its content could not be included.
    /// </summary>
    Task ComposeAsync(SpoolRecord original, IReadOnlyList<DsnRecipient> recipients, Stream? originalBody, Stream output, CancellationToken cancellationToken);
}
