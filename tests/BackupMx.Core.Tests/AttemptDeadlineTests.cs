using BackupMx.Core.Configuration;
using BackupMx.Core.Forwarding;
using BackupMx.Core.Intake;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using BackupMx.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace BackupMx.Core.Tests;

/// <summary>
/// A delivery attempt has a deadline of its own, shorter than the lease: a primary that answers
/// slowly enough for long enough cannot keep an attempt going past the point where another worker
/// may claim the message.
/// </summary>
public sealed class AttemptDeadlineTests
{
    private static readonly CancellationToken None = CancellationToken.None;

    [Fact]
    public async Task Process_PrimaryNeverFinishesTheTransaction_AttemptCutAtItsDeadlineBeforeTheLeaseEnds()
    {
        using var h = new CoreHarness(s => s["BackupMx:Delivery:AttemptTimeout"] = "00:05:00");
        var transport = new HangingTransport();
        var forwarder = new MessageForwarder(
            new BackupMx.Core.Spool.SpoolLedger(h.Spool, h.Bodies, h.WakeUps, h.Time, Microsoft.Extensions.Logging.Abstractions.NullLogger<BackupMx.Core.Spool.SpoolLedger>.Instance), h.Bodies, transport, h.Get<DsnQueue>(), h.Monitor, h.Get<IOptions<BackupMxOptions>>(), h.Time, NullLogger<MessageForwarder>.Instance);
        var id = Assert.Single(Assert.IsType<IntakeResult.Accepted>(await h.Intake.AcceptAsync(TestMessages.Make(recipients: ["bob@example.test", "carol@example.test"]), None)).QueueIds);
        var claimedAt = h.Time.GetUtcNow();

        var processing = forwarder.ProcessAsync(new WakeUp("example.test", id), None);
        await transport.Started.Task.WaitAsync(TimeSpan.FromSeconds(10));
        h.Time.Advance(TimeSpan.FromMinutes(5) - TimeSpan.FromSeconds(1));
        await Task.Delay(50);
        Assert.False(processing.IsCompleted);
        h.Time.Advance(TimeSpan.FromSeconds(1));

        Assert.Equal(ForwardOutcome.Deferred, await processing.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.True(transport.SawCancellation);
        var record = await h.Spool.GetAsync("example.test", id, None);
        Assert.All(record!.Recipients, r => Assert.Equal(RecipientStatus.Pending, r.Status));
        Assert.Contains("cut off", record.LastError, StringComparison.Ordinal);
        Assert.False(record.IsLeased(h.Time.GetUtcNow()));
        Assert.True(h.Time.GetUtcNow() < claimedAt + h.Options.Delivery.LeaseDuration);
    }

    [Fact]
    public async Task Process_HostStopping_CancellationIsTheCallersNotADeadline()
    {
        using var h = new CoreHarness();
        var transport = new HangingTransport();
        var forwarder = new MessageForwarder(
            new BackupMx.Core.Spool.SpoolLedger(h.Spool, h.Bodies, h.WakeUps, h.Time, Microsoft.Extensions.Logging.Abstractions.NullLogger<BackupMx.Core.Spool.SpoolLedger>.Instance), h.Bodies, transport, h.Get<DsnQueue>(), h.Monitor, h.Get<IOptions<BackupMxOptions>>(), h.Time, NullLogger<MessageForwarder>.Instance);
        var id = Assert.Single(Assert.IsType<IntakeResult.Accepted>(await h.Intake.AcceptAsync(TestMessages.Make(), None)).QueueIds);
        using var stopping = new CancellationTokenSource();

        var processing = forwarder.ProcessAsync(new WakeUp("example.test", id), stopping.Token);
        await transport.Started.Task.WaitAsync(TimeSpan.FromSeconds(10));
        await stopping.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => processing.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    /// <summary>A primary that accepts the connection and then never answers, until the attempt is cancelled.</summary>
    private sealed class HangingTransport : IMessageTransport
    {
        public TaskCompletionSource Started { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public bool SawCancellation { get; private set; }

        public async Task<DeliveryResult> DeliverAsync(DeliveryRequest request, CancellationToken cancellationToken)
        {
            Started.TrySetResult();
            try
            {
                await Task.Delay(Timeout.Infinite, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                SawCancellation = true;
                throw;
            }

            throw new InvalidOperationException("unreachable");
        }
    }
}
