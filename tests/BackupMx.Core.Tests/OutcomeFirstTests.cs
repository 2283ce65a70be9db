using BackupMx.Core.Forwarding;
using BackupMx.Core.Intake;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using BackupMx.Testing;
using BackupMx.Testing.Fakes;

namespace BackupMx.Core.Tests;

/// <summary>
/// Between the primary's 250 and the saved outcome nothing may lose that outcome: what runs after
/// the attempt (queuing a DSN, reporting the primary, the flush that report can start) fails,
/// is cancelled or is cut short without sending anyone the message a second time.
/// </summary>
public sealed class OutcomeFirstTests
{
    private static readonly CancellationToken None = CancellationToken.None;

    [Fact]
    public async Task Process_DsnQueuingCancelledAfterThePrimaryAccepted_OutcomeKeptAndNobodyGetsItTwice()
    {
        using var h = NewHarness();
        using var cancel = new CancellationTokenSource();
        h.Transport.OffersDsn = false;
        h.Transport.Reply = (_, _) =>
        {
            // The host starts stopping just as the primary answers 250.
            cancel.Cancel();
            return new SmtpReply(250, "2.0.0", "ok");
        };
        var id = await AcceptAsync(h, new IncomingRecipient("bob@example.test", Notify: "SUCCESS"), new IncomingRecipient("carol@example.test", Notify: "SUCCESS"));

        await ProcessIgnoringCancellationAsync(h, id, cancel.Token);

        var record = await h.Spool.GetAsync("example.test", id, None);
        Assert.All(record!.Recipients, r => Assert.Equal(RecipientStatus.Delivered, r.Status));
        Assert.All(record.Recipients, r => Assert.True(r.NeedsNotification));

        // Later (past any lease), the DSN is queued and sent; the primary never sees the message again.
        h.Transport.Reply = (_, _) => new SmtpReply(250, "2.0.0", "ok");
        h.Time.Advance(TimeSpan.FromMinutes(16));
        await h.RunDueWakeUpsAsync();
        await h.RunDueWakeUpsAsync();
        Assert.Single(h.Transport.Attempts, a => a.Request.Kind == MessageKind.Relay);
        var dsn = Assert.Single(h.Transport.Attempts, a => a.Request.Kind == MessageKind.Dsn);
        Assert.Equal(["alice@sender.test"], dsn.Recipients);
        Assert.Equal(0, ((InMemorySpoolStore)((ListFaultingSpoolStore)h.Spool).Inner).Count);
    }

    [Fact]
    public async Task Process_RecoveryFlushFailsAfterAPartialDelivery_OutcomeKeptAndOnlyTheDeferredRecipientIsTriedAgain()
    {
        using var h = NewHarness();
        var spool = (ListFaultingSpoolStore)h.Spool;
        h.Prober.IsUp = _ => false;
        await h.Monitor.ProbeAllAsync(None);
        h.Transport.Reply = (_, rcpt) => rcpt == "bob@example.test" ? new SmtpReply(250, "2.0.0", "ok") : new SmtpReply(451, "4.2.0", "busy");
        var id = await AcceptAsync(h, new IncomingRecipient("bob@example.test"), new IncomingRecipient("carol@example.test"));
        await DueAsync(h, id);

        // The primary answers, so it is up again: the flush of its domain that follows fails.
        spool.FailListings = true;
        var outcome = await ProcessIgnoringFailureAsync(h, id);
        spool.FailListings = false;

        Assert.Equal(ForwardOutcome.Deferred, outcome);
        var record = await h.Spool.GetAsync("example.test", id, None);
        Assert.Equal(RecipientStatus.Delivered, record!.Recipients[0].Status);
        Assert.Equal(RecipientStatus.Pending, record.Recipients[1].Status);
        Assert.False(record.IsLeased(h.Time.GetUtcNow()));

        h.Transport.Reply = (_, _) => new SmtpReply(250, "2.0.0", "ok");
        h.Time.Advance(TimeSpan.FromMinutes(16));
        await h.RunDueWakeUpsAsync();
        Assert.Equal([["bob@example.test", "carol@example.test"], ["carol@example.test"]], h.Transport.Attempts.Select(a => a.Recipients));
        Assert.Null(await h.Spool.GetAsync("example.test", id, None));
    }

    [Fact]
    public async Task Process_RecoveryFlushFailsAfterTheMessageFinished_ReportsFinished()
    {
        using var h = NewHarness();
        var spool = (ListFaultingSpoolStore)h.Spool;
        h.Prober.IsUp = _ => false;
        await h.Monitor.ProbeAllAsync(None);
        var id = await AcceptAsync(h, new IncomingRecipient("bob@example.test"));
        await DueAsync(h, id);

        spool.FailListings = true;
        var outcome = await ProcessIgnoringFailureAsync(h, id);

        Assert.Equal(ForwardOutcome.Finished, outcome);
        Assert.Null(await h.Spool.GetAsync("example.test", id, None));
        Assert.Single(h.Transport.Attempts);
    }

    [Fact]
    public async Task Process_CancelledWhileReportingAPartialDelivery_OutcomeKept()
    {
        using var h = NewHarness();
        using var cancel = new CancellationTokenSource();
        h.Prober.IsUp = _ => false;
        await h.Monitor.ProbeAllAsync(None);
        h.Transport.Reply = (_, rcpt) =>
        {
            if (rcpt == "carol@example.test")
            {
                cancel.Cancel();
                return new SmtpReply(451, "4.2.0", "busy");
            }

            return new SmtpReply(250, "2.0.0", "ok");
        };
        var id = await AcceptAsync(h, new IncomingRecipient("bob@example.test"), new IncomingRecipient("carol@example.test"));
        await DueAsync(h, id);

        await ProcessIgnoringCancellationAsync(h, id, cancel.Token);

        var record = await h.Spool.GetAsync("example.test", id, None);
        Assert.Equal(RecipientStatus.Delivered, record!.Recipients[0].Status);
        h.Transport.Reply = (_, _) => new SmtpReply(250, "2.0.0", "ok");
        h.Time.Advance(TimeSpan.FromMinutes(16));
        await h.RunDueWakeUpsAsync();
        Assert.Equal(["carol@example.test"], h.Transport.Attempts.Last().Recipients);
        Assert.Equal(1, h.Transport.Attempts.Count(a => a.Recipients.Contains("bob@example.test")));
    }

    /// <summary>Accepted while the primary was seen down, a message waits for its first retry: go there.</summary>
    private static async Task DueAsync(CoreHarness h, string id)
    {
        var record = await h.Spool.GetAsync("example.test", id, None);
        h.Time.Advance(record!.NextAttemptAt - h.Time.GetUtcNow());
    }

    private static CoreHarness NewHarness() => new(spool: new ListFaultingSpoolStore(new InMemorySpoolStore()));

    private static async Task ProcessIgnoringCancellationAsync(CoreHarness h, string id, CancellationToken token)
    {
        try
        {
            await h.Forwarder.ProcessAsync(new WakeUp("example.test", id), token);
        }
        catch (OperationCanceledException)
        {
            // What the caller sees of a cancellation is not the point: what the spool keeps is.
        }
    }

    private static async Task<ForwardOutcome?> ProcessIgnoringFailureAsync(CoreHarness h, string id)
    {
        try
        {
            return await h.Forwarder.ProcessAsync(new WakeUp("example.test", id), None);
        }
        catch (InvalidOperationException)
        {
            return null;
        }
    }

    private static async Task<string> AcceptAsync(CoreHarness h, params IncomingRecipient[] recipients)
    {
        var message = TestMessages.Make("alice@sender.test") with { Recipients = [.. recipients] };
        var result = await h.Intake.AcceptAsync(message, None);
        return Assert.Single(Assert.IsType<IntakeResult.Accepted>(result).QueueIds);
    }

    /// <summary>A spool whose domain listings (what a flush reads) fail on demand, as a Table query or SQLite read can.</summary>
    private sealed class ListFaultingSpoolStore(InMemorySpoolStore inner) : DelegatingSpoolStore(inner)
    {
        public InMemorySpoolStore Inner { get; } = inner;

        public bool FailListings { get; set; }

        public override IAsyncEnumerable<SpoolRecord> ListDomainAsync(string domain, CancellationToken cancellationToken) =>
            FailListings ? throw new InvalidOperationException("the spool could not be listed") : base.ListDomainAsync(domain, cancellationToken);
    }
}
