using BackupMx.Core.Inspection;
using BackupMx.Core.Model;

namespace BackupMx.Core.Tests;

public sealed class QueueAgeTableTests
{
    private static readonly DateTimeOffset Now = new(2026, 12, 1, 12, 0, 0, TimeSpan.Zero);

    [Theory]
    [InlineData(0, 0)]
    [InlineData(299, 0)]
    [InlineData(300, 1)]
    [InlineData(599, 1)]
    [InlineData(600, 2)]
    [InlineData(76_799, 8)]
    [InlineData(76_800, 9)]
    [InlineData(5 * 86_400, 9)]
    [InlineData(-60, 0)]
    public void Bucket_QshapeBoundaries_UpperBoundExclusive(int ageSeconds, int expected) =>
        Assert.Equal(expected, QueueAgeTable.Bucket(TimeSpan.FromSeconds(ageSeconds)));

    [Fact]
    public void Add_SeveralDomains_CountsPerDomainAndBucketWithTotals()
    {
        var table = new QueueAgeTable(Now);
        table.Add(Record("example.test", TimeSpan.FromMinutes(1)));
        table.Add(Record("example.test", TimeSpan.FromMinutes(3)));
        table.Add(Record("EXAMPLE.test", TimeSpan.FromMinutes(45)));
        table.Add(Record("other.test", TimeSpan.FromDays(2)));

        Assert.Equal(["example.test", "other.test"], table.Rows.Keys);
        Assert.Equal([2, 0, 0, 0, 1, 0, 0, 0, 0, 0], table.Rows["example.test"]);
        Assert.Equal([0, 0, 0, 0, 0, 0, 0, 0, 0, 1], table.Rows["other.test"]);
        Assert.Equal([2, 0, 0, 0, 1, 0, 0, 0, 0, 1], table.Totals);
    }

    private static SpoolRecord Record(string domain, TimeSpan age) => new()
    {
        QueueId = QueueId.New(Now - age),
        Domain = domain,
        Sender = "alice@sender.test",
        Recipients = [new RecipientState { Address = "bob@" + domain }],
        ReceivedAt = Now - age,
        ExpiresAt = Now.AddDays(5),
    };
}
