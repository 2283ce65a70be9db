using Azure.Data.Tables;
using BackupMx.Core.Model;
using BackupMx.Testing.Contracts;

namespace BackupMx.Azure.Tests;

/// <summary>The stored recipient JSON is a format on disk: renaming Core's model must not change it.</summary>
public sealed class SpoolEntityMapperTests
{
    // Short names, numeric status, ticks for instants, "l" only for our own replies, defaults left out.
    private const string StoredRecipients =
        """[{"a":"bob@example.test","o":"rfc822;bob@example.test","n":"FAILURE,DELAY","s":2,"r":{"c":451,"e":"4.4.7","t":"expired","l":true},"f":"4.4.7","nn":true,"t":639029198450000000,"h":"mx.example.test"},"""
        + """{"a":"carol@example.test","s":1,"r":{"c":250,"e":"2.0.0","t":"ok"}},"""
        + """{"a":"dave@example.test"},"""
        + """{"a":"erin@example.test","n":"SUCCESS","s":1,"r":{"c":250,"e":"2.0.0","t":"queued"},"nn":true,"t":639029198450000000,"h":"mx.example.test"}]""";

    private static readonly DateTimeOffset CompletedAt = new(2026, 1, 2, 3, 4, 5, TimeSpan.Zero);

    private static List<RecipientState> Recipients() =>
    [
        new()
        {
            Address = "bob@example.test",
            OriginalRecipient = "rfc822;bob@example.test",
            Notify = "FAILURE,DELAY",
            Status = RecipientStatus.Failed,
            LastReply = SmtpReply.LocalTransient("4.4.7", "expired"),
            FailureStatus = "4.4.7",
            NeedsNotification = true,
            CompletedAt = CompletedAt,
            RemoteHost = "mx.example.test",
        },
        new() { Address = "carol@example.test", Status = RecipientStatus.Delivered, LastReply = new SmtpReply(250, "2.0.0", "ok") },
        new() { Address = "dave@example.test" },

        // Delivered to a primary without DSN, its "relayed" notice not yet queued.
        new()
        {
            Address = "erin@example.test",
            Notify = "SUCCESS",
            Status = RecipientStatus.Delivered,
            LastReply = new SmtpReply(250, "2.0.0", "queued"),
            NeedsNotification = true,
            CompletedAt = CompletedAt,
            RemoteHost = "mx.example.test",
        },
    ];

    [Fact]
    public void ToEntity_Recipients_StoredInThePinnedJsonShape()
    {
        var record = SpoolRecords.Sample() with { Recipients = Recipients() };

        var entity = SpoolEntityMapper.ToEntity(record);

        Assert.Equal(StoredRecipients, entity.GetString(SpoolEntityMapper.Columns.Recipients));
    }

    [Fact]
    public void FromEntity_PinnedJsonShape_ReadsEveryField()
    {
        var entity = SpoolEntityMapper.ToEntity(SpoolRecords.Sample());
        entity[SpoolEntityMapper.Columns.Recipients] = StoredRecipients;

        var read = SpoolEntityMapper.FromEntity(entity).Recipients;

        var expected = Recipients();
        Assert.Equal(expected.Count, read.Count);
        for (var i = 0; i < expected.Count; i++)
        {
            Assert.Equivalent(expected[i], read[i], strict: true);
        }
    }
}
