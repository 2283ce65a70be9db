using BackupMx.Core.Inspection;
using BackupMx.Testing.Contracts;
using Xunit;

namespace BackupMx.Local.Tests;

/// <summary>The SQLite spool's own totals (the <c>queue</c> summary) match what a listing of every record adds up to.</summary>
public sealed class SpoolTallyTests : IDisposable
{
    private readonly TempSpool _spool = new();

    [Fact]
    public async Task Tally_MatchesTheTotalsOfEveryRecord()
    {
        var store = _spool.OpenSpool();
        var old = SpoolRecords.Sample(recipients: 3) with { ReceivedAt = SpoolRecords.T0.AddHours(-5), LastError = "451 older", LastAttemptAt = SpoolRecords.T0.AddHours(-2) };
        var recent = SpoolRecords.Sample().WithRecipient(0, r => r with { Status = BackupMx.Core.Model.RecipientStatus.Delivered }) with
        {
            LastError = "421 latest",
            LastAttemptAt = SpoolRecords.T0.AddHours(-1),
        };
        var other = SpoolRecords.Sample(domain: "other.test");
        foreach (var record in new[] { old, recent, other })
        {
            await store.CreateAsync(record, CancellationToken.None);
        }

        var expected = new QueueTally();
        await foreach (var record in store.ListAllAsync(CancellationToken.None))
        {
            expected.Add(record);
        }

        var actual = await store.TallyAsync(CancellationToken.None);

        Assert.Equal(Describe(expected), Describe(actual));
        Assert.Contains("example.test 2 4 ", Describe(actual), StringComparison.Ordinal);
        Assert.Contains("421 latest", Describe(actual), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Tally_DamagedRecord_QuarantinedAndNotCounted()
    {
        var store = _spool.OpenSpool();
        var good = SpoolRecords.Sample();
        var bad = SpoolRecords.Sample();
        good = await store.CreateAsync(good, CancellationToken.None);
        bad = await store.CreateAsync(bad, CancellationToken.None);
        using (var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={store.DatabasePath};Pooling=False"))
        {
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = "UPDATE spool SET data = '{' WHERE queue_id = $id";
            command.Parameters.AddWithValue("$id", bad.QueueId);
            Assert.Equal(1, command.ExecuteNonQuery());
        }

        var tally = await store.TallyAsync(CancellationToken.None);

        Assert.StartsWith("example.test 1 2 ", Describe(tally), StringComparison.Ordinal);
        var quarantined = Assert.Single(await store.ListQuarantinedAsync(CancellationToken.None).ToListAsync());
        Assert.Equal(bad.QueueId, quarantined.QueueId);
    }

    private static string Describe(QueueTally tally) => string.Join(
        "; ",
        tally.Domains.OrderBy(d => d.Key, StringComparer.OrdinalIgnoreCase)
            .Select(d => $"{d.Key} {d.Value.Messages} {d.Value.Recipients} {d.Value.OldestReceivedAt:O} {d.Value.LastError} {d.Value.LastErrorAt:O}"));

    public void Dispose() => _spool.Dispose();
}
