using Azure.Data.Tables;
using BackupMx.Core.Configuration;
using BackupMx.Core.Ports;
using BackupMx.Testing.Azurite;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace BackupMx.Azure.Tests;

/// <summary>Callout answers shared through Azure Tables (Azurite), as two receiver replicas see them.</summary>
[Collection(AzuriteFixture.CollectionName)]
public sealed class TableCachedRecipientVerifierTests(AzuriteFixture azurite)
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 3, 1, 12, 0, 0, TimeSpan.Zero));

    private readonly BackupMxOptions _options = new()
    {
        RecipientVerification = new RecipientVerificationOptions
        {
            PositiveCacheDuration = TimeSpan.FromDays(7),
            NegativeCacheDuration = TimeSpan.FromHours(1),
        },
    };

    [Fact]
    public async Task VerifyAsync_AnswerFromOneReplica_ServesTheOtherWithoutACallout()
    {
        var table = await TableAsync();
        var primary = new CountingVerifier { ["bob@example.com"] = VerificationOutcome.Exists, ["nobody@example.com"] = VerificationOutcome.DoesNotExist };
        var first = Verifier(table, primary);
        var second = Verifier(table, primary);

        Assert.Equal(VerificationOutcome.Exists, (await first.VerifyAsync("example.com", "bob@example.com", CancellationToken.None)).Outcome);
        Assert.Equal(VerificationOutcome.DoesNotExist, (await first.VerifyAsync("example.com", "nobody@example.com", CancellationToken.None)).Outcome);
        Assert.Equal(2, primary.Calls);

        Assert.Equal(VerificationOutcome.Exists, (await second.VerifyAsync("example.com", "bob@example.com", CancellationToken.None)).Outcome);
        Assert.Equal(VerificationOutcome.DoesNotExist, (await second.VerifyAsync("example.com", "nobody@example.com", CancellationToken.None)).Outcome);
        Assert.Equal(2, primary.Calls);
    }

    [Fact]
    public async Task VerifyAsync_AfterTheCacheDuration_CallsOutAgain()
    {
        var table = await TableAsync();
        var primary = new CountingVerifier { ["bob@example.com"] = VerificationOutcome.Exists, ["nobody@example.com"] = VerificationOutcome.DoesNotExist };
        var verifier = Verifier(table, primary);
        await verifier.VerifyAsync("example.com", "bob@example.com", CancellationToken.None);
        await verifier.VerifyAsync("example.com", "nobody@example.com", CancellationToken.None);

        // A refusal is kept for an hour, an acceptance for a week.
        _time.Advance(TimeSpan.FromHours(1));
        await verifier.VerifyAsync("example.com", "bob@example.com", CancellationToken.None);
        await verifier.VerifyAsync("example.com", "nobody@example.com", CancellationToken.None);
        Assert.Equal(3, primary.Calls);

        _time.Advance(TimeSpan.FromDays(7));
        await verifier.VerifyAsync("example.com", "bob@example.com", CancellationToken.None);
        Assert.Equal(4, primary.Calls);
    }

    [Fact]
    public async Task VerifyAsync_Unknown_IsNotShared()
    {
        var table = await TableAsync();
        var primary = new CountingVerifier { ["bob@example.com"] = VerificationOutcome.Unknown };

        Assert.Equal(VerificationOutcome.Unknown, (await Verifier(table, primary).VerifyAsync("example.com", "bob@example.com", CancellationToken.None)).Outcome);
        Assert.Equal(VerificationOutcome.Unknown, (await Verifier(table, primary).VerifyAsync("example.com", "bob@example.com", CancellationToken.None)).Outcome);
        Assert.Equal(2, primary.Calls);
    }

    [Fact]
    public async Task VerifyAsync_LocalPartsThatDifferOnlyInCaseOrHoldKeyCharacters_AreKeptApart()
    {
        var table = await TableAsync();
        var primary = new CountingVerifier { ["Bob@example.com"] = VerificationOutcome.Exists, ["bob@example.com"] = VerificationOutcome.DoesNotExist, ["a/b#c?d\\e@example.com"] = VerificationOutcome.Exists };
        var writer = Verifier(table, primary);
        foreach (var address in new[] { "Bob@example.com", "bob@example.com", "a/b#c?d\\e@example.com" })
        {
            await writer.VerifyAsync("example.com", address, CancellationToken.None);
        }

        var reader = Verifier(table, new CountingVerifier());
        Assert.Equal(VerificationOutcome.Exists, (await reader.VerifyAsync("example.com", "Bob@example.com", CancellationToken.None)).Outcome);
        Assert.Equal(VerificationOutcome.DoesNotExist, (await reader.VerifyAsync("example.com", "bob@example.com", CancellationToken.None)).Outcome);
        Assert.Equal(VerificationOutcome.Exists, (await reader.VerifyAsync("example.com", "a/b#c?d\\e@example.com", CancellationToken.None)).Outcome);
    }

    [Fact]
    public async Task VerifyAsync_TableMissing_StillCallsOutAndAnswers()
    {
        // Never created: every read and write fails, and the callout's answer still counts.
        var table = new TableServiceClient(azurite.ConnectionString).GetTableClient(AzuriteFixture.UniqueName("missing"));
        var primary = new CountingVerifier { ["bob@example.com"] = VerificationOutcome.Exists };

        var result = await Verifier(table, primary).VerifyAsync("example.com", "bob@example.com", CancellationToken.None);

        Assert.Equal(VerificationOutcome.Exists, result.Outcome);
        Assert.Equal(1, primary.Calls);
    }

    private async Task<TableClient> TableAsync()
    {
        var table = new TableServiceClient(azurite.ConnectionString).GetTableClient(AzuriteFixture.UniqueName("verifications"));
        await table.CreateIfNotExistsAsync();
        return table;
    }

    private TableCachedRecipientVerifier Verifier(TableClient table, IRecipientVerifier inner) =>
        new(inner, table, Microsoft.Extensions.Options.Options.Create(_options), _time, NullLogger<TableCachedRecipientVerifier>.Instance);

    /// <summary>Stands in for the callout: scripted answers per address, and a count of calls.</summary>
    private sealed class CountingVerifier : IRecipientVerifier
    {
        private readonly Dictionary<string, VerificationOutcome> _answers = new(StringComparer.Ordinal);

        public int Calls { get; private set; }

        public VerificationOutcome this[string address]
        {
            get => _answers.GetValueOrDefault(address, VerificationOutcome.Unknown);
            set => _answers[address] = value;
        }

        public Task<VerificationResult> VerifyAsync(string domain, string address, CancellationToken cancellationToken)
        {
            Calls++;
            return Task.FromResult(new VerificationResult(this[address], null));
        }
    }
}
