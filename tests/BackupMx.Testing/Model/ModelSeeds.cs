using Xunit;

namespace BackupMx.Testing.Model;

/// <summary>
/// CsCheck seeds of sequences that broke an invariant, each with the finding it reproduces. They
/// stay as regression cases (never skipped): a seed replays the same operations as long as the
/// generators in <see cref="ModelGen"/> are unchanged.
/// </summary>
public static class ModelSeeds
{
    public static TheoryData<string, string> Sqlite => new()
    {
        { "8U_CDE-dupI1", "DSN for several recipients: the id joins places with '.', which QueueId.IsValid refuses, so the message loops at expiry" },
        { "bKFK3MSWlS33", "fixed here: a DSN whose wake-up failed to schedule after its record was committed was queued again once the first had been sent (told twice, no crash)" },
    };

    public static TheoryData<string, string> Azure => new()
    {
        { "38CKxm04ko53", "DSN for several recipients: the id joins places with '.', which QueueId.IsValid refuses, so the message loops at expiry" },
    };
}
