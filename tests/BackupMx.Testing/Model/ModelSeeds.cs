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
        { "0000U-6VWZY2", "DSN for several recipients: the id joins places with '.', which QueueId.IsValid refuses, so the message loops at expiry" },
        { "84gPH9Gg45id", "a create that committed but whose reply was lost: intake answers 451 and deletes the body, but not the record it never saw written (the zombie of finding 8); the record then loops at expiry on its missing body (finding 1)" },
        { "9NtllIUrSPT4", "outcome lost when ReportPrimaryAsync throws (here the status write that records the primary Up) after the DSN was queued: the recipient is failed and told again once the lease runs out" },
        { "7Mdy0VQZUrC8", "a DSN record whose create committed but whose reply was lost: the notice stayed owed, the pump sent that DSN and removed it, and the next attempt queued it again (told twice, no crash)" },
        { "bKFK3MSWlS33", "fixed here: a DSN whose wake-up failed to schedule after its record was committed was queued again once the first had been sent (told twice, no crash); until the DSN id fix is merged it also stops at the DSN id with a dot" },
    };

    public static TheoryData<string, string> Azure => new()
    {
        { "euOsr6U-Qo57", "a create that committed but whose reply was lost: intake answers 451 and deletes the body, but not the record it never saw written (the zombie of finding 8); the record then loops at expiry on its missing body (finding 1)" },
        { "0000WAGFdAr4", "DSN for several recipients: the id joins places with '.', which QueueId.IsValid refuses, so the message loops at expiry" },
    };
}
