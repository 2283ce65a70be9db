using BackupMx.Testing.Model;
using CsCheck;

namespace BackupMx.Local.Tests.Model;

/// <summary>
/// Random sequences of mail, replies, crashes, outages, flushes, expiry and clock steps against
/// Core over the SQLite spool and body files, checked against the model (see SpoolModelRunner).
/// </summary>
public sealed class SqliteSpoolModelTests
{
    /// <summary>Runs in CI; <c>BACKUPMX_MODEL_RUNS</c> raises it.</summary>
    private const long CiRuns = 20;

    [Fact]
    public async Task RandomSequences_SqliteSpool_KeepTheInvariants()
    {
        await ModelGen.Sequence.SampleAsync(
            RunAsync,
            iter: ModelRuns.Count(CiRuns),
            threads: 1,
            print: ModelGen.Print);
    }

    /// <summary>Sequences that once broke an invariant, kept as regression cases (see the note on each).</summary>
    [Theory]
    [MemberData(nameof(ModelSeeds.Sqlite), MemberType = typeof(ModelSeeds))]
    public async Task KnownSequence_SqliteSpool_KeepsTheInvariants(string seed, string finding)
    {
        Assert.NotEmpty(finding);
        await ModelGen.Sequence.SampleAsync(RunAsync, seed: seed, iter: 1, threads: 1, print: ModelGen.Print);
    }

    private static async Task RunAsync(ModelOp[] ops)
    {
        await using var backend = new SqliteModelBackend();
        await SpoolModelRunner.RunAsync(backend, ops);
    }
}
