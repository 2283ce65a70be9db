using BackupMx.Core.Forwarding;
using BackupMx.Core.Intake;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using BackupMx.Testing;
using BackupMx.Testing.Fakes;

namespace BackupMx.Core.Tests;

/// <summary>
/// A body can go missing under a record (an operator's clean-up, a lost blob). Nothing can ever be
/// delivered then, and nothing owed a notice may wait for a body that will not come back.
/// </summary>
public sealed class MissingBodyTests
{
    private static readonly CancellationToken None = CancellationToken.None;

    [Fact]
    public async Task Process_BodyGoneAtDelivery_RecipientsFailForGoodAndOneDsnWithoutTheOriginalIsSent()
    {
        using var h = new CoreHarness();
        await h.Monitor.ProbeAllAsync(None);
        var id = await AcceptAsync(h, "bob@example.test", "carol@example.test");
        await h.Bodies.DeleteAsync(id, None);

        Assert.Equal(ForwardOutcome.Finished, await h.Forwarder.ProcessAsync(new WakeUp("example.test", id), None));

        Assert.Null(await h.Spool.GetAsync("example.test", id, None));
        var composed = Assert.Single(((SimpleDsnComposer)h.Get<IDsnComposer>()).Composed);
        Assert.False(composed.HadOriginal);
        Assert.Equal(["bob@example.test", "carol@example.test"], composed.Failed.Select(r => r.Address));
        Assert.All(composed.Failed, r => Assert.Equal("5.3.0", r.FailureStatus));
        Assert.All(composed.Failed, r => Assert.Null(r.RemoteHost));

        // Decided here, without the primary: it is not reported down.
        var status = (await h.Get<IPrimaryStatusStore>().GetAsync("example.test", None))?.Status;
        Assert.Equal(PrimaryState.Up, status!.State);

        // The DSN itself goes out and the spool is empty.
        await h.RunDueWakeUpsAsync();
        var dsn = Assert.Single(h.Transport.Attempts, a => a.Request.Kind == MessageKind.Dsn);
        Assert.Equal(["alice@sender.test"], dsn.Recipients);
        Assert.Equal(0, ((InMemorySpoolStore)h.Spool).Count);
        Assert.Equal(0, ((InMemoryBodyStore)h.Bodies).Count);
    }

    [Fact]
    public async Task Process_BodyGoneAndTheTransportMadeItATransientFailure_StillFailsForGood()
    {
        // Whatever the transport makes of the missing body, the forwarder knows it opened none.
        using var h = new CoreHarness();
        var transport = new SwallowingTransport();
        var id = await AcceptAsync(h, "bob@example.test");
        await h.Bodies.DeleteAsync(id, None);
        var forwarder = new MessageForwarder(
            new BackupMx.Core.Spool.SpoolLedger(h.Spool, h.Bodies, h.WakeUps, h.Time, Microsoft.Extensions.Logging.Abstractions.NullLogger<BackupMx.Core.Spool.SpoolLedger>.Instance), h.Bodies, transport, h.Get<DsnQueue>(), h.Monitor, h.Get<Microsoft.Extensions.Options.IOptions<Configuration.BackupMxOptions>>(), h.Time,
            Microsoft.Extensions.Logging.Abstractions.NullLogger<MessageForwarder>.Instance);

        Assert.Equal(ForwardOutcome.Finished, await forwarder.ProcessAsync(new WakeUp("example.test", id), None));
        Assert.Equal(1, transport.Calls);
        Assert.Single(((SimpleDsnComposer)h.Get<IDsnComposer>()).Composed);
    }

    [Fact]
    public async Task Process_RetentionEndsAfterTheBodyWentMissing_DsnWithoutTheOriginalAndTheMessageFinishes()
    {
        using var h = new CoreHarness();
        h.Transport.Reachable = false;
        var id = await AcceptAsync(h, "bob@example.test", "carol@example.test");
        await h.RunDueWakeUpsAsync();
        await h.Bodies.DeleteAsync(id, None);

        h.Time.Advance(TimeSpan.FromDays(5) + TimeSpan.FromMinutes(1));
        var record = await h.Spool.GetAsync("example.test", id, None);
        Assert.Equal(ForwardOutcome.Finished, await h.Forwarder.ProcessAsync(record!, None));

        var composed = Assert.Single(((SimpleDsnComposer)h.Get<IDsnComposer>()).Composed);
        Assert.False(composed.HadOriginal);
        Assert.All(composed.Failed, r => Assert.Equal("4.4.7", r.FailureStatus));
        Assert.Equal(2, composed.Failed.Count);
        Assert.Null(await h.Spool.GetAsync("example.test", id, None));

        h.Transport.Reachable = true;
        await h.RunDueWakeUpsAsync();
        Assert.Single(h.Transport.Attempts, a => a.Request.Kind == MessageKind.Dsn);
        Assert.Equal(0, ((InMemorySpoolStore)h.Spool).Count);
    }

    [Fact]
    public async Task Process_DsnWhoseOwnBodyIsGone_IsDroppedWithoutADsnAboutIt()
    {
        using var h = new CoreHarness();
        h.Transport.Reply = (_, _) => new SmtpReply(550, "5.1.1", "no such user");
        var id = await AcceptAsync(h, "bob@example.test");
        Assert.Equal(ForwardOutcome.Finished, await h.Forwarder.ProcessAsync(new WakeUp("example.test", id), None));
        var dsn = Assert.Single(await MessageForwarderTests.ListAsync(h.Spool.ListDomainAsync("sender.test", None)));
        await h.Bodies.DeleteAsync(dsn.QueueId, None);

        Assert.Equal(ForwardOutcome.Finished, await h.Forwarder.ProcessAsync(dsn, None));

        Assert.Equal(0, ((InMemorySpoolStore)h.Spool).Count);
        Assert.Single(((SimpleDsnComposer)h.Get<IDsnComposer>()).Composed);
    }

    private static async Task<string> AcceptAsync(CoreHarness h, params string[] recipients)
    {
        var result = await h.Intake.AcceptAsync(TestMessages.Make(recipients: recipients), None);
        return Assert.Single(Assert.IsType<IntakeResult.Accepted>(result).QueueIds);
    }

    /// <summary>A transport that turns a failure to open the body into a transient reply of its own.</summary>
    private sealed class SwallowingTransport : IMessageTransport
    {
        public int Calls;

        public async Task<DeliveryResult> DeliverAsync(DeliveryRequest request, CancellationToken cancellationToken)
        {
            Calls++;
            try
            {
                await using var body = await request.OpenBody(cancellationToken);
            }
            catch (BodyNotFoundException)
            {
            }

            return DeliveryResult.AllRecipients(request.Recipients, SmtpReply.LocalTransient("4.4.2", "lost"), "primary.test", reachedServer: true);
        }
    }
}
