using BackupMx.Core.Forwarding;
using BackupMx.Core.Intake;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using BackupMx.Testing;
using BackupMx.Testing.Fakes;

namespace BackupMx.Core.Tests;

/// <summary>
/// "Relayed" notices (RFC 3461 §5.2.2): a recipient that asked for NOTIFY=SUCCESS and was accepted
/// by a primary without DSN is told so by us, since nobody further on will report success.
/// </summary>
public sealed class RelayedDsnTests
{
    private static readonly CancellationToken None = CancellationToken.None;

    private static async Task<string> AcceptAsync(CoreHarness h, string sender = "alice@sender.test", params IncomingRecipient[] recipients)
    {
        var message = TestMessages.Make(sender) with { Recipients = recipients };
        return Assert.Single(Assert.IsType<IntakeResult.Accepted>(await h.Intake.AcceptAsync(message, None)).QueueIds);
    }

    private static SimpleDsnComposer.Composition[] Composed(CoreHarness h) => [.. ((SimpleDsnComposer)h.Get<IDsnComposer>()).Composed];

    private static Task<List<SpoolRecord>> DsnsAsync(CoreHarness h) => MessageForwarderTests.ListAsync(h.Spool.ListDomainAsync("sender.test", None));

    [Fact]
    public async Task Process_NotifySuccessToPrimaryWithoutDsn_QueuesOneRelayedDsnThenFinishes()
    {
        using var h = new CoreHarness();
        h.Transport.OffersDsn = false;
        var id = await AcceptAsync(h, recipients: new IncomingRecipient("bob@example.test", Notify: "SUCCESS", OriginalRecipient: "rfc822;Bob@example.test"));

        Assert.Equal(ForwardOutcome.Finished, await h.Forwarder.ProcessAsync(new WakeUp("example.test", id), None));

        Assert.Null(await h.Spool.GetAsync("example.test", id, None));
        var dsn = Assert.Single(await DsnsAsync(h));
        Assert.Equal(MessageKind.Dsn, dsn.Kind);
        Assert.Equal($"{id}-d0", dsn.QueueId);
        Assert.Equal(string.Empty, dsn.Sender);
        Assert.Equal("alice@sender.test", Assert.Single(dsn.Recipients).Address);

        var composed = Assert.Single(Composed(h));
        var notice = Assert.Single(composed.Recipients);
        Assert.Equal(DsnAction.Relayed, notice.Action);
        Assert.Equal("bob@example.test", notice.Recipient.Address);
        Assert.Equal(RecipientStatus.Delivered, notice.Recipient.Status);
        Assert.Equal("primary.test", notice.Recipient.RemoteHost);
        Assert.Equal("rfc822;Bob@example.test", notice.Recipient.OriginalRecipient);
        Assert.Contains("bob@example.test relayed 250 2.0.0 ok", TestMessages.Text(((InMemoryBodyStore)h.Bodies).Get(dsn.QueueId)));
    }

    [Fact]
    public async Task Process_NotifySuccessToPrimaryWithDsn_NoDsnAndTheParametersPassedOn()
    {
        using var h = new CoreHarness();
        h.Transport.OffersDsn = true;
        var id = await AcceptAsync(h, recipients: new IncomingRecipient("bob@example.test", Notify: "SUCCESS,FAILURE", OriginalRecipient: "rfc822;Bob@example.test"));

        Assert.Equal(ForwardOutcome.Finished, await h.Forwarder.ProcessAsync(new WakeUp("example.test", id), None));

        Assert.Empty(await DsnsAsync(h));
        Assert.Empty(Composed(h));
        var request = Assert.Single(h.Transport.Attempts).Request;
        var recipient = Assert.Single(request.Recipients);
        Assert.Equal("SUCCESS,FAILURE", recipient.Notify);
        Assert.Equal("rfc822;Bob@example.test", recipient.OriginalRecipient);
        Assert.Equal("abc", request.Parameters.EnvelopeId);
        Assert.Equal("HDRS", request.Parameters.Ret);
    }

    [Fact]
    public async Task Process_NotifySuccessAndFailureRefused_FailedDsnOnly()
    {
        using var h = new CoreHarness();
        h.Transport.OffersDsn = false;
        h.Transport.Reply = (_, _) => new SmtpReply(550, "5.1.1", "no such user");
        var id = await AcceptAsync(h, recipients: new IncomingRecipient("bob@example.test", Notify: "SUCCESS,FAILURE"));

        Assert.Equal(ForwardOutcome.Finished, await h.Forwarder.ProcessAsync(new WakeUp("example.test", id), None));

        Assert.Single(await DsnsAsync(h));
        var notice = Assert.Single(Assert.Single(Composed(h)).Recipients);
        Assert.Equal(DsnAction.Failed, notice.Action);
        Assert.Equal("5.1.1", notice.Recipient.FailureStatus);
    }

    [Fact]
    public async Task Process_SomeDeliveredSomeRefused_OneDsnWithEachRecipientsOwnAction()
    {
        using var h = new CoreHarness();
        h.Transport.OffersDsn = false;
        h.Transport.Reply = (_, rcpt) => rcpt switch
        {
            "gone@example.test" => new SmtpReply(550, "5.1.1", "no such user"),
            "later@example.test" => new SmtpReply(451, "4.3.0", "try later"),
            _ => new SmtpReply(250, "2.0.0", "ok"),
        };
        var id = await AcceptAsync(
            h,
            recipients:
            [
                new IncomingRecipient("quiet@example.test"),
                new IncomingRecipient("ok@example.test", Notify: "SUCCESS,FAILURE"),
                new IncomingRecipient("gone@example.test", Notify: "SUCCESS,FAILURE"),
                new IncomingRecipient("later@example.test", Notify: "SUCCESS,FAILURE"),
            ]);

        Assert.Equal(ForwardOutcome.Deferred, await h.Forwarder.ProcessAsync(new WakeUp("example.test", id), None));

        var dsn = Assert.Single(await DsnsAsync(h));
        Assert.Equal($"{id}-d1-2", dsn.QueueId);
        var composed = Assert.Single(Composed(h));
        Assert.Equal(
            [("ok@example.test", DsnAction.Relayed), ("gone@example.test", DsnAction.Failed)],
            composed.Recipients.Select(r => (r.Recipient.Address, r.Action)));
        var record = await h.Spool.GetAsync("example.test", id, None);
        Assert.All(record!.Recipients, r => Assert.False(r.NeedsNotification));

        // The deferred recipient is delivered later: its own relayed notice, under an id of its own.
        h.Time.Advance(TimeSpan.FromMinutes(5));
        h.Transport.Reply = (_, _) => new SmtpReply(250, "2.0.0", "ok");
        Assert.Equal(ForwardOutcome.Finished, await h.Forwarder.ProcessAsync(new WakeUp("example.test", id), None));
        Assert.Equal([$"{id}-d1-2", $"{id}-d3"], (await DsnsAsync(h)).Select(d => d.QueueId).Order());
        var second = Composed(h)[1];
        Assert.Equal([("later@example.test", DsnAction.Relayed)], second.Recipients.Select(r => (r.Recipient.Address, r.Action)));
    }

    [Theory]
    [InlineData("NEVER")]
    [InlineData("FAILURE")]
    [InlineData("DELAY,FAILURE")]
    [InlineData(null)]
    public async Task Process_DeliveredWithoutNotifySuccess_NoDsn(string? notify)
    {
        using var h = new CoreHarness();
        h.Transport.OffersDsn = false;
        var id = await AcceptAsync(h, recipients: new IncomingRecipient("bob@example.test", Notify: notify));

        Assert.Equal(ForwardOutcome.Finished, await h.Forwarder.ProcessAsync(new WakeUp("example.test", id), None));

        Assert.Equal(0, ((InMemorySpoolStore)h.Spool).Count);
        Assert.Empty(Composed(h));
    }

    [Fact]
    public async Task Process_NullSenderNotifySuccess_NoDsn()
    {
        using var h = new CoreHarness();
        h.Transport.OffersDsn = false;
        var id = await AcceptAsync(h, sender: "", recipients: new IncomingRecipient("bob@example.test", Notify: "SUCCESS"));

        Assert.Equal(ForwardOutcome.Finished, await h.Forwarder.ProcessAsync(new WakeUp("example.test", id), None));

        Assert.Equal(0, ((InMemorySpoolStore)h.Spool).Count);
        Assert.Empty(Composed(h));
        Assert.Single(h.Transport.Attempts);
    }

    [Fact]
    public async Task Process_DsnKindWithNotifySuccess_NoDsnAboutTheDsn()
    {
        using var h = new CoreHarness();
        h.Transport.OffersDsn = false;
        var now = h.Time.GetUtcNow();
        var record = new SpoolRecord
        {
            QueueId = QueueId.New(now) + "-d0",
            Kind = MessageKind.Dsn,
            Domain = "sender.test",
            Sender = "postmaster@example.test",
            Recipients = [new RecipientState { Address = "alice@sender.test", Notify = "SUCCESS" }],
            ReceivedAt = now,
            ExpiresAt = now.AddDays(5),
            NextAttemptAt = now,
            BodyLength = 4,
        };
        await h.Bodies.WriteAsync(record.QueueId, new MemoryStream("x\r\n\r"u8.ToArray()), None);
        await h.Spool.CreateAsync(record, None);

        Assert.Equal(ForwardOutcome.Finished, await h.Forwarder.ProcessAsync(new WakeUp(record.Domain, record.QueueId), None));

        Assert.Equal(0, ((InMemorySpoolStore)h.Spool).Count);
        Assert.Empty(Composed(h));
    }

    [Fact]
    public async Task Process_RelayedDsnCannotBeQueued_KeptMarkedAndQueuedOnTheNextWakeUpWithoutDeliveringAgain()
    {
        using var h = new CoreHarness();
        h.Transport.OffersDsn = false;
        var id = await AcceptAsync(h, recipients: new IncomingRecipient("bob@example.test", Notify: "SUCCESS"));
        var bodies = (InMemoryBodyStore)h.Bodies;
        bodies.FailWritesWith = new IOException("disk full");

        Assert.Equal(ForwardOutcome.Deferred, await h.Forwarder.ProcessAsync(new WakeUp("example.test", id), None));

        // Delivered, and the notice it is owed is in the stored record, so the message stays.
        var record = await h.Spool.GetAsync("example.test", id, None);
        var bob = Assert.Single(record!.Recipients);
        Assert.Equal(RecipientStatus.Delivered, bob.Status);
        Assert.True(bob.NeedsNotification);
        Assert.False(record.IsFinished);
        Assert.Null(record.LeaseOwner);
        Assert.Equal(h.Time.GetUtcNow().AddMinutes(5), record.NextAttemptAt);
        Assert.Empty(await DsnsAsync(h));

        bodies.FailWritesWith = null;
        h.Time.Advance(TimeSpan.FromMinutes(5));
        await h.RunDueWakeUpsAsync();

        Assert.Null(await h.Spool.GetAsync("example.test", id, None));
        Assert.Single(h.Transport.Attempts, a => a.Request.Kind == MessageKind.Relay);
        var relayedDsn = Assert.Single(h.Transport.Attempts, a => a.Request.Kind == MessageKind.Dsn);
        Assert.Equal(["alice@sender.test"], relayedDsn.Recipients);
        Assert.Contains("bob@example.test relayed 250 2.0.0 ok", TestMessages.Text(relayedDsn.Body));

        // Composed again for the second try (the first was never stored), about the same recipient.
        Assert.All(Composed(h), c => Assert.Equal([("bob@example.test", DsnAction.Relayed)], c.Recipients.Select(r => (r.Recipient.Address, r.Action))));
    }

    [Fact]
    public void RecipientState_WantsSuccessNotice_OnlyWhenNotifyNamesSuccess()
    {
        Assert.True(new RecipientState { Address = "a@example.test", Notify = "SUCCESS" }.WantsSuccessNotice);
        Assert.True(new RecipientState { Address = "a@example.test", Notify = "failure, success" }.WantsSuccessNotice);
        Assert.False(new RecipientState { Address = "a@example.test", Notify = "FAILURE,DELAY" }.WantsSuccessNotice);
        Assert.False(new RecipientState { Address = "a@example.test", Notify = "NEVER" }.WantsSuccessNotice);
        Assert.False(new RecipientState { Address = "a@example.test" }.WantsSuccessNotice);
    }
}
