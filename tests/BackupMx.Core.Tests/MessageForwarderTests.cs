using BackupMx.Core.Forwarding;
using BackupMx.Core.Intake;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using BackupMx.Testing;
using BackupMx.Testing.Fakes;
using BackupMx.Testing.Contracts;

namespace BackupMx.Core.Tests;

public sealed class MessageForwarderTests
{
    private static readonly CancellationToken None = CancellationToken.None;

    private static async Task<string> AcceptAsync(CoreHarness h, string sender = "alice@sender.test", params string[] recipients)
    {
        var result = await h.Intake.AcceptAsync(TestMessages.Make(sender, recipients: recipients), None);
        return Assert.Single(Assert.IsType<IntakeResult.Accepted>(result).QueueIds);
    }

    [Fact]
    public async Task Process_PrimaryAccepts_DeliversStoredBytesAndRemovesEverything()
    {
        using var h = new CoreHarness();
        var id = await AcceptAsync(h);
        var stored = ((InMemoryBodyStore)h.Bodies).Get(id);

        var outcome = await h.Forwarder.ProcessAsync(new WakeUp("example.test", id), None);

        Assert.Equal(ForwardOutcome.Finished, outcome);
        var attempt = Assert.Single(h.Transport.Attempts);
        Assert.Equal(stored, attempt.Body);
        Assert.Equal("alice@sender.test", attempt.Request.Sender);
        Assert.Equal(MessageKind.Relay, attempt.Request.Kind);
        Assert.Null(await h.Spool.GetAsync("example.test", id, None));
        Assert.False(((InMemoryBodyStore)h.Bodies).Contains(id));
    }

    [Fact]
    public async Task Process_MixedReplies_EachRecipientGetsItsOwnOutcome()
    {
        using var h = new CoreHarness();
        h.Transport.Reply = (_, rcpt) => rcpt switch
        {
            "ok@example.test" => new SmtpReply(250, "2.0.0", "ok"),
            "gone@example.test" => new SmtpReply(550, "5.1.1", "no such user"),
            _ => new SmtpReply(451, "4.3.0", "try later"),
        };
        var id = await AcceptAsync(h, recipients: ["ok@example.test", "gone@example.test", "later@example.test"]);

        var outcome = await h.Forwarder.ProcessAsync(new WakeUp("example.test", id), None);

        Assert.Equal(ForwardOutcome.Deferred, outcome);
        var record = await h.Spool.GetAsync("example.test", id, None);
        Assert.Equal(RecipientStatus.Delivered, record!.Recipients[0].Status);
        Assert.Equal(RecipientStatus.Failed, record.Recipients[1].Status);
        Assert.Equal("5.1.1", record.Recipients[1].FailureStatus);
        Assert.False(record.Recipients[1].NeedsNotification);
        Assert.Equal(RecipientStatus.Pending, record.Recipients[2].Status);
        Assert.Equal(1, record.Attempts);
        Assert.Equal(h.Time.GetUtcNow().AddMinutes(5), record.NextAttemptAt);
        Assert.Null(record.LeaseOwner);

        // One DSN, to the original sender, from the null sender, about the 5xx recipient only.
        var dsn = Assert.Single(await ListAsync(h.Spool.ListDomainAsync("sender.test", None)));
        Assert.Equal(MessageKind.Dsn, dsn.Kind);
        Assert.Equal(string.Empty, dsn.Sender);
        Assert.Equal("alice@sender.test", Assert.Single(dsn.Recipients).Address);
        var dsnText = TestMessages.Text(((InMemoryBodyStore)h.Bodies).Get(dsn.QueueId));
        Assert.Contains("gone@example.test 5.1.1", dsnText);
        Assert.DoesNotContain("later@example.test", dsnText);

        // The next attempt only retries the pending recipient.
        h.Time.Advance(TimeSpan.FromMinutes(5));
        h.Transport.Reply = (_, _) => new SmtpReply(250, "2.0.0", "ok");
        Assert.Equal(ForwardOutcome.Finished, await h.Forwarder.ProcessAsync(new WakeUp("example.test", id), None));
        var last = h.Transport.Attempts.Last(a => a.Request.QueueId == id);
        Assert.Equal(["later@example.test"], last.Recipients);
    }

    [Fact]
    public async Task Process_PrimaryUnreachable_RetriesOnScheduleAndNeverBouncesBeforeRetention()
    {
        using var h = new CoreHarness();
        h.Transport.Reachable = false;
        var id = await AcceptAsync(h);

        var waits = new List<double>();
        for (var i = 0; i < 8; i++)
        {
            Assert.Equal(ForwardOutcome.Deferred, await h.Forwarder.ProcessAsync(new WakeUp("example.test", id), None));
            var record = await h.Spool.GetAsync("example.test", id, None);
            Assert.Equal(RecipientStatus.Pending, record!.Recipients[0].Status);
            var wait = record.NextAttemptAt - h.Time.GetUtcNow();
            waits.Add(wait.TotalMinutes);
            h.Time.Advance(wait);
        }

        Assert.Equal([5, 10, 20, 40, 60, 60, 60, 60], waits);
        Assert.Empty(await ListAsync(h.Spool.ListDomainAsync("sender.test", None)));
    }

    [Fact]
    public async Task Process_RetentionEnds_FailsWith447AndQueuesOneDsnThenDeliversIt()
    {
        using var h = new CoreHarness();
        h.Transport.Reply = (req, _) => req.Kind == MessageKind.Relay ? new SmtpReply(451, "4.2.0", "mailbox busy") : new SmtpReply(250, "2.0.0", "ok");
        var id = await AcceptAsync(h);

        // Run every due wake-up, hour by hour, across the whole retention period.
        for (var hour = 0; hour <= 5 * 24 + 1; hour++)
        {
            await h.RunDueWakeUpsAsync();
            h.Time.Advance(TimeSpan.FromHours(1));
        }

        await h.RunDueWakeUpsAsync();
        Assert.Null(await h.Spool.GetAsync("example.test", id, None));
        var dsnAttempt = Assert.Single(h.Transport.Attempts, a => a.Request.Kind == MessageKind.Dsn);
        Assert.Equal(string.Empty, dsnAttempt.Request.Sender);
        Assert.Equal(["alice@sender.test"], dsnAttempt.Recipients);
        Assert.Equal("sender.test", dsnAttempt.Request.Domain);
        Assert.Contains("bob@example.test 4.4.7 451 4.2.0 mailbox busy", TestMessages.Text(dsnAttempt.Body));
        Assert.Equal(0, ((InMemorySpoolStore)h.Spool).Count);
        Assert.Equal(0, ((InMemoryBodyStore)h.Bodies).Count);
    }

    [Fact]
    public async Task Process_NullSenderFails_NoDsnIsEverQueued()
    {
        using var h = new CoreHarness();
        h.Transport.Reply = (_, _) => new SmtpReply(550, "5.1.1", "no such user");
        var id = await AcceptAsync(h, sender: "");

        Assert.Equal(ForwardOutcome.Finished, await h.Forwarder.ProcessAsync(new WakeUp("example.test", id), None));
        Assert.Equal(0, ((InMemorySpoolStore)h.Spool).Count);
        Assert.Single(h.Transport.Attempts);
    }

    [Fact]
    public async Task Process_NotifyNever_NoDsn()
    {
        using var h = new CoreHarness();
        h.Transport.Reply = (_, _) => new SmtpReply(550, "5.1.1", "no such user");
        var message = TestMessages.Make() with { Recipients = [new IncomingRecipient("bob@example.test", Notify: "NEVER")] };
        var id = Assert.Single(Assert.IsType<IntakeResult.Accepted>(await h.Intake.AcceptAsync(message, None)).QueueIds);

        Assert.Equal(ForwardOutcome.Finished, await h.Forwarder.ProcessAsync(new WakeUp("example.test", id), None));
        Assert.Equal(0, ((InMemorySpoolStore)h.Spool).Count);
    }

    [Fact]
    public async Task Process_UndeliverableDsn_IsDroppedWithoutAnotherDsn()
    {
        using var h = new CoreHarness();
        h.Transport.Reply = (_, _) => new SmtpReply(550, "5.1.1", "no such user");
        var id = await AcceptAsync(h);
        await h.Forwarder.ProcessAsync(new WakeUp("example.test", id), None);
        var dsn = Assert.Single(await ListAsync(h.Spool.ListDomainAsync("sender.test", None)));

        h.Transport.Undeliverable = true;
        Assert.Equal(ForwardOutcome.Finished, await h.Forwarder.ProcessAsync(new WakeUp(dsn.Domain, dsn.QueueId), None));
        Assert.Equal(0, ((InMemorySpoolStore)h.Spool).Count);
    }

    [Fact]
    public async Task Process_RecipientRefusedByUs_FailsWithoutNamingThePrimaryAndOthersDelivered()
    {
        using var h = new CoreHarness();
        h.Transport.Reply = (_, rcpt) => rcpt == "bad@example.test"
            ? new SmtpReply(553, "5.1.3", "Bad recipient address syntax", FromRemote: false)
            : new SmtpReply(250, "2.0.0", "ok");
        var id = await AcceptAsync(h, recipients: ["ok@example.test", "bad@example.test"]);

        Assert.Equal(ForwardOutcome.Finished, await h.Forwarder.ProcessAsync(new WakeUp("example.test", id), None));

        var dsn = Assert.Single(await ListAsync(h.Spool.ListDomainAsync("sender.test", None)));
        Assert.Equal("alice@sender.test", dsn.Recipients.Single().Address);
        var attempt = Assert.Single(h.Transport.Attempts);
        Assert.Equal(["ok@example.test", "bad@example.test"], attempt.Recipients);
        var failed = Assert.Single(((SimpleDsnComposer)h.Get<IDsnComposer>()).Composed).Failed.Single();
        Assert.Equal("bad@example.test", failed.Address);
        Assert.Equal("5.1.3", failed.FailureStatus);
        Assert.Null(failed.RemoteHost);
        Assert.False(failed.LastReply!.FromRemote);
    }

    [Fact]
    public async Task Process_OutcomesDecidedLocally_PrimaryNotReportedUnreachable()
    {
        using var h = new CoreHarness();
        await h.Monitor.ProbeAllAsync(None);
        h.Time.Advance(TimeSpan.FromSeconds(5));
        h.Transport.DecideLocally = r => new DeliveryResult(
            r.Recipients.Select(x => new RecipientOutcome(x.Address, new SmtpReply(553, "5.1.3", "Bad recipient address syntax", FromRemote: false))).ToList(),
            null) { DecidedLocally = true };
        var id = await AcceptAsync(h);

        Assert.Equal(ForwardOutcome.Finished, await h.Forwarder.ProcessAsync(new WakeUp("example.test", id), None));

        var status = (await h.Get<IPrimaryStatusStore>().GetAsync("example.test", None))?.Status;
        Assert.Equal(PrimaryState.Up, status!.State);
        Assert.Null(status.LastError);
        Assert.Single(await ListAsync(h.Spool.ListDomainAsync("sender.test", None)));
    }

    [Fact]
    public async Task Process_SenderWeCannotWrite_DroppedWithoutDsnAndPrimaryNotReported()
    {
        using var h = new CoreHarness();
        await h.Monitor.ProbeAllAsync(None);
        h.Time.Advance(TimeSpan.FromSeconds(5));
        h.Transport.DecideLocally = r => DeliveryResult.AllRecipients(
            r.Recipients, new SmtpReply(553, "5.1.7", "Bad sender's mailbox address syntax", FromRemote: false), null, reachedServer: false) with { Undeliverable = true, DecidedLocally = true };
        var id = await AcceptAsync(h, recipients: ["a@example.test", "b@example.test"]);

        Assert.Equal(ForwardOutcome.Finished, await h.Forwarder.ProcessAsync(new WakeUp("example.test", id), None));

        Assert.Equal(0, ((InMemorySpoolStore)h.Spool).Count);
        Assert.Single(h.Transport.Attempts);
        Assert.Equal(PrimaryState.Up, (await h.Get<IPrimaryStatusStore>().GetAsync("example.test", None))!.Status.State);
    }

    [Fact]
    public async Task Process_DuplicateWakeUps_DeliverOnce()
    {
        using var h = new CoreHarness();
        var id = await AcceptAsync(h);

        var outcomes = await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => Task.Run(() => h.Forwarder.ProcessAsync(new WakeUp("example.test", id), None))));

        Assert.Single(h.Transport.Attempts);
        Assert.Equal(1, outcomes.Count(o => o == ForwardOutcome.Finished));
    }

    [Fact]
    public async Task Process_StaleWakeUp_NotDueDoesNothing()
    {
        using var h = new CoreHarness();
        h.Transport.Reachable = false;
        var id = await AcceptAsync(h);
        await h.Forwarder.ProcessAsync(new WakeUp("example.test", id), None);

        Assert.Equal(ForwardOutcome.NotDue, await h.Forwarder.ProcessAsync(new WakeUp("example.test", id), None));
        Assert.Single(h.Transport.Attempts);
        Assert.Equal(ForwardOutcome.NotFound, await h.Forwarder.ProcessAsync(new WakeUp("example.test", "NOSUCHID0000000000000"), None));
    }

    [Fact]
    public async Task Process_LeasedByAnotherWorker_IsBusyUntilTheLeaseRunsOut()
    {
        using var h = new CoreHarness();
        var id = await AcceptAsync(h);
        var record = await h.Spool.GetAsync("example.test", id, None);
        record = await h.Spool.UpdateAsync(record! with { LeaseOwner = "crashed-worker", LeaseExpiresAt = h.Time.GetUtcNow().AddMinutes(15) }, None);

        Assert.Equal(ForwardOutcome.Busy, await h.Forwarder.ProcessAsync(new WakeUp("example.test", id), None));
        h.Time.Advance(TimeSpan.FromMinutes(15));
        Assert.Equal(ForwardOutcome.Finished, await h.Forwarder.ProcessAsync(new WakeUp("example.test", id), None));
    }

    [Fact]
    public async Task Process_SuccessfulDelivery_FlushesTheRestOfTheDomain()
    {
        using var h = new CoreHarness();
        h.Transport.Reachable = false;
        var first = await AcceptAsync(h);
        var second = await AcceptAsync(h);
        await h.RunDueWakeUpsAsync();
        Assert.Equal(2, (await ListAsync(h.Spool.ListDueAsync(DateTimeOffset.MaxValue, 10, None))).Count(r => r.Attempts == 1));

        h.Transport.Reachable = true;
        h.Time.Advance(TimeSpan.FromMinutes(5));
        Assert.Equal(ForwardOutcome.Finished, await h.Forwarder.ProcessAsync(new WakeUp("example.test", first), None));

        var rest = await h.Spool.GetAsync("example.test", second, None);
        Assert.Equal(0, rest!.Attempts);
        Assert.Equal(h.Time.GetUtcNow(), rest.NextAttemptAt);
    }

    internal static async Task<List<T>> ListAsync<T>(IAsyncEnumerable<T> source)
    {
        var list = new List<T>();
        await foreach (var item in source)
        {
            list.Add(item);
        }

        return list;
    }

    [Fact]
    public async Task Process_SomeDeliveredRest452_DueAgainNowWithoutCountingAnAttempt()
    {
        using var h = new CoreHarness();
        h.Transport.Reply = (_, rcpt) => rcpt == "ok@example.test" ? new SmtpReply(250, "2.0.0", "ok") : new SmtpReply(452, "4.5.3", "too many recipients");
        var id = await AcceptAsync(h, recipients: ["ok@example.test", "more@example.test"]);

        var outcome = await h.Forwarder.ProcessAsync(new WakeUp("example.test", id), None);

        Assert.Equal(ForwardOutcome.Deferred, outcome);
        var record = await h.Spool.GetAsync("example.test", id, None);
        Assert.Equal(0, record!.Attempts);
        Assert.Equal(h.Time.GetUtcNow(), record.NextAttemptAt);
        Assert.Equal(RecipientStatus.Pending, record.Recipients[1].Status);
    }

    [Fact]
    public async Task Process_Only452NothingDelivered_CountsAsAnAttempt()
    {
        using var h = new CoreHarness();
        h.Transport.Reply = (_, _) => new SmtpReply(452, "4.3.1", "insufficient system storage");
        var id = await AcceptAsync(h, recipients: ["a@example.test"]);

        await h.Forwarder.ProcessAsync(new WakeUp("example.test", id), None);

        var record = await h.Spool.GetAsync("example.test", id, None);
        Assert.Equal(1, record!.Attempts);
        Assert.Equal(h.Time.GetUtcNow().AddMinutes(5), record.NextAttemptAt);
    }

    [Fact]
    public async Task Process_PrimaryRefusesTheSessionForLoad_StateStaysUpAndNoFlush()
    {
        using var h = new CoreHarness();
        var first = await AcceptAsync(h, recipients: ["a@example.test"]);
        await h.Forwarder.ProcessAsync(new WakeUp("example.test", first), None);
        var waiting = await AcceptAsync(h, recipients: ["b@example.test"]);
        h.Transport.DecideLocally = r => DeliveryResult.AllRecipients(r.Recipients, SmtpReply.LocalTransient("4.4.2", "primary.test refused the session: 421 too many connections"), "primary.test", reachedServer: false) with { ServerBusy = true };

        await h.Forwarder.ProcessAsync(new WakeUp("example.test", waiting), None);

        var status = (await h.Get<IPrimaryStatusStore>().GetAsync("example.test", None))?.Status;
        Assert.Equal(PrimaryState.Up, status!.State);
        var record = await h.Spool.GetAsync("example.test", waiting, None);
        Assert.Equal(1, record!.Attempts);
    }
}
