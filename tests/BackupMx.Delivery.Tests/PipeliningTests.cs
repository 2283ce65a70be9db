using BackupMx.Core.Model;
using BackupMx.Testing;

namespace BackupMx.Delivery.Tests;

/// <summary>
/// RFC 2920 on the way out: with a primary that offers PIPELINING the envelope (MAIL, every RCPT,
/// DATA) leaves before any reply is read, and each reply still means what it means one command
/// at a time; without the offer, one command at a time.
/// </summary>
public sealed class PipeliningTests : IAsyncLifetime
{
    private static readonly byte[] Body = TestDelivery.Ascii("From: alice@sender.org\r\nTo: bob@example.com\r\nSubject: hi\r\n\r\nhello\r\n");
    private readonly FakePrimary _primary = new();

    public Task InitializeAsync() => _primary.StartAsync();

    public async Task DisposeAsync() => await _primary.DisposeAsync();

    private MailKitTransport Transport() => TestDelivery.Transport(TestDelivery.Config(_primary.HostPort));

    [Fact]
    public async Task DeliverAsync_PrimaryOffersPipelining_EnvelopeLeavesBeforeAnyReply()
    {
        // The primary answers MAIL and RCPT only once DATA has arrived: a client waiting for each
        // reply would time out here.
        _primary.HoldEnvelopeReplies = true;
        _primary.Reply("gone@example.com", 550, "5.1.1 No such user");

        var result = await Transport().DeliverAsync(TestDelivery.Request(Body, recipients: ["a@example.com", "gone@example.com", "b@example.com"]), CancellationToken.None);

        Assert.Equal(250, result.ReplyFor("a@example.com").Code);
        Assert.Equal(250, result.ReplyFor("b@example.com").Code);
        Assert.Equal(new SmtpReply(550, "5.1.1", "No such user"), result.ReplyFor("gone@example.com"));
        var message = Assert.Single(_primary.Messages);
        Assert.Equal(["a@example.com", "b@example.com"], message.AcceptedRecipients);
        Assert.Equal(Body, message.Data);

        // RCPT ×3 and DATA came with MAIL.
        Assert.Equal(4, _primary.PipelinedCommands);
    }

    [Fact]
    public async Task DeliverAsync_PrimaryWithoutPipelining_EachCommandWaitsForTheLastReply()
    {
        _primary.AdvertisePipelining = false;

        var result = await Transport().DeliverAsync(TestDelivery.Request(Body, recipients: ["a@example.com", "b@example.com"]), CancellationToken.None);

        Assert.All(result.Outcomes, o => Assert.Equal(250, o.Reply.Code));
        Assert.Single(_primary.Messages);
        Assert.Equal(0, _primary.PipelinedCommands);
    }

    [Fact]
    public async Task DeliverAsync_MailRefusedWhilePipelining_EveryRecipientGetsMailsReplyNotTheFollowing503()
    {
        _primary.MailFromReply = new FakeReply(550, "5.7.1 Sender refused");

        var result = await Transport().DeliverAsync(TestDelivery.Request(Body, recipients: ["a@example.com", "b@example.com"]), CancellationToken.None);

        Assert.All(result.Outcomes, o => Assert.Equal(new SmtpReply(550, "5.7.1", "Sender refused"), o.Reply));
        Assert.Empty(_primary.Messages);

        // The connection is not used again: the next message goes through a fresh one.
        _primary.MailFromReply = FakeReply.Ok;
        var next = await Transport().DeliverAsync(TestDelivery.Request(Body, recipients: ["a@example.com"]), CancellationToken.None);
        Assert.Equal(250, next.ReplyFor("a@example.com").Code);
    }

    [Fact]
    public async Task DeliverAsync_EveryRecipientRefusedYet354_EmptyDataEndsItAndRecipientsKeepTheirReplies()
    {
        _primary.AcceptDataWithoutRecipients = true;
        _primary.DefaultRecipientReply = new FakeReply(451, "4.2.0 Mailbox busy");
        var transport = Transport();

        var result = await transport.DeliverAsync(TestDelivery.Request(Body, recipients: ["a@example.com", "b@example.com"]), CancellationToken.None);

        Assert.All(result.Outcomes, o => Assert.Equal(new SmtpReply(451, "4.2.0", "Mailbox busy"), o.Reply));
        Assert.Empty(_primary.Messages);

        // The session was left in order: the next message on the same transport is delivered.
        _primary.DefaultRecipientReply = FakeReply.Ok;
        var next = await transport.DeliverAsync(TestDelivery.Request(Body, recipients: ["a@example.com"]), CancellationToken.None);
        Assert.Equal(250, next.ReplyFor("a@example.com").Code);
        Assert.Equal(Body, Assert.Single(_primary.Messages).Data);
    }

    [Fact]
    public async Task DeliverAsync_MoreRecipientsThanOneGroup_AllInOneTransactionRepliesInOrder()
    {
        var recipients = Enumerable.Range(0, 250).Select(i => $"r{i}@example.com").ToArray();
        _primary.Reply("r150@example.com", 550, "5.1.1 No such user");

        var result = await Transport().DeliverAsync(TestDelivery.Request(Body, recipients: recipients), CancellationToken.None);

        Assert.Equal(new SmtpReply(550, "5.1.1", "No such user"), result.ReplyFor("r150@example.com"));
        Assert.All(recipients.Where(r => r != "r150@example.com"), r => Assert.Equal(250, result.ReplyFor(r).Code));
        var message = Assert.Single(_primary.Messages);
        Assert.Equal(recipients.Where(r => r != "r150@example.com"), message.AcceptedRecipients);
    }
}
