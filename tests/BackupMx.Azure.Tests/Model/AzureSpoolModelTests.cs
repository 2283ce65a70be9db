using BackupMx.Testing.Azurite;
using BackupMx.Testing.Model;
using CsCheck;

namespace BackupMx.Azure.Tests.Model;

/// <summary>
/// Random sequences of mail, replies, crashes, outages, flushes, lost wake-ups, expiry and clock
/// steps against Core over the Azure adapters on Azurite, checked against the model (see SpoolModelRunner).
/// </summary>
[Collection(AzuriteFixture.CollectionName)]
public sealed class AzureSpoolModelTests(AzuriteFixture azurite)
{
    /// <summary>Runs in CI; <c>BACKUPMX_MODEL_RUNS</c> raises it.</summary>
    private const long CiRuns = 12;

    [Fact]
    public async Task RandomSequences_AzureAdapters_KeepTheInvariants()
    {
        await ModelGen.Sequence.SampleAsync(
            RunAsync,
            iter: ModelRuns.Count(CiRuns),
            threads: 1,
            print: ModelGen.Print);
    }

    /// <summary>Sequences that once broke an invariant, kept as regression cases (see the note on each).</summary>
    [Theory]
    [MemberData(nameof(ModelSeeds.Azure), MemberType = typeof(ModelSeeds))]
    public async Task KnownSequence_AzureAdapters_KeepsTheInvariants(string seed, string finding)
    {
        Assert.NotEmpty(finding);
        await ModelGen.Sequence.SampleAsync(RunAsync, seed: seed, iter: 1, threads: 1, print: ModelGen.Print);
    }

    private async Task RunAsync(ModelOp[] ops)
    {
        await using var backend = await AzureModelBackend.CreateAsync(azurite);
        await SpoolModelRunner.RunAsync(backend, ops);
    }
}
