using BackupMx.Core.Intake;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using BackupMx.Testing;
using BackupMx.Testing.Fakes;

namespace BackupMx.Core.Tests;

public sealed class IntakeServiceTests
{
    private static readonly CancellationToken None = CancellationToken.None;

    [Fact]
    public async Task AcceptAsync_OneRecipient_StoresBodyWithOneReceivedHeaderRecordAndWakeUp()
    {
        using var h = new CoreHarness();

        var result = await h.Intake.AcceptAsync(TestMessages.Make(), None);

        var id = Assert.Single(Assert.IsType<IntakeResult.Accepted>(result).QueueIds);
        var record = await h.Spool.GetAsync("example.test", id, None);
        Assert.NotNull(record);
        Assert.Equal("alice@sender.test", record.Sender);
        Assert.Equal("bob@example.test", Assert.Single(record.Recipients).Address);
        Assert.Equal(h.Time.GetUtcNow(), record.NextAttemptAt);
        Assert.Equal(h.Time.GetUtcNow().AddDays(5), record.ExpiresAt);
        Assert.Equal("8BITMIME", record.Parameters.Body);

        var body = TestMessages.Text(((InMemoryBodyStore)h.Bodies).Get(id));
        Assert.StartsWith("Received: from mail.sender.test ([192.0.2.10])\r\n\tby backup.test (BackupMx) with ESMTP id " + id + "\r\n\tfor <bob@example.test>; Fri, 27 Nov 2026 12:00:00 +0000\r\n", body);
        Assert.EndsWith("\r\n" + TestMessages.Body, body);
        Assert.Equal(record.BodyLength, body.Length);

        var (wakeUp, dueAt) = Assert.Single(h.WakeUps.History);
        Assert.Equal(new WakeUp("example.test", id), wakeUp);
        Assert.Equal(h.Time.GetUtcNow(), dueAt);

        // A wake-up due now is never cancelled, so its token is not written (one state write less).
        Assert.Null(record.WakeUpToken);
    }

    [Fact]
    public async Task AcceptAsync_PrimaryKnownDown_WaitsForRecoveryFlushOrFirstRetry()
    {
        using var h = new CoreHarness();
        var statuses = h.Get<IPrimaryStatusStore>();
        var now = h.Time.GetUtcNow();
        await statuses.OverwriteAsync(new PrimaryStatus("example.test", PrimaryState.Down, now, now, "connection refused", null), None);

        var result = await h.Intake.AcceptAsync(TestMessages.Make(), None);

        var id = Assert.Single(Assert.IsType<IntakeResult.Accepted>(result).QueueIds);
        var record = await h.Spool.GetAsync("example.test", id, None);
        Assert.Equal(now.AddMinutes(5), record!.NextAttemptAt);
        Assert.Equal(0, record.Attempts);
        var (_, dueAt) = Assert.Single(h.WakeUps.History);
        Assert.Equal(now.AddMinutes(5), dueAt);

        // A future wake-up keeps its token, so that the recovery flush can cancel it.
        Assert.Equal("1", (await h.Spool.GetAsync("example.test", id, None))!.WakeUpToken);
    }

    [Fact]
    public async Task AcceptAsync_PrimaryRecoversWhileWriting_IsMadeDueAtOnce()
    {
        var spool = new InMemorySpoolStore();
        var bodies = new InMemoryBodyStore();
        using var h = new CoreHarness(spool: spool, bodies: bodies);
        var intake = new IntakeService(new BackupMx.Core.Spool.SpoolLedger(spool, bodies, h.WakeUps, h.Time, Microsoft.Extensions.Logging.Abstractions.NullLogger<BackupMx.Core.Spool.SpoolLedger>.Instance), new RecoversAfterFirstRead(), h.Get<Microsoft.Extensions.Options.IOptions<Configuration.BackupMxOptions>>(), h.Time, Microsoft.Extensions.Logging.Abstractions.NullLogger<IntakeService>.Instance);

        var result = await intake.AcceptAsync(TestMessages.Make(), None);

        var id = Assert.Single(Assert.IsType<IntakeResult.Accepted>(result).QueueIds);
        Assert.Equal(h.Time.GetUtcNow(), (await spool.GetAsync("example.test", id, None))!.NextAttemptAt);
        Assert.Equal(h.Time.GetUtcNow(), Assert.Single(h.WakeUps.History).DueAt);
    }

    [Fact]
    public async Task AcceptAsync_PrimaryStatusUnreadable_AcceptsAndIsDueAtOnce()
    {
        var spool = new InMemorySpoolStore();
        var bodies = new InMemoryBodyStore();
        using var h = new CoreHarness(spool: spool, bodies: bodies);
        var intake = new IntakeService(new BackupMx.Core.Spool.SpoolLedger(spool, bodies, h.WakeUps, h.Time, Microsoft.Extensions.Logging.Abstractions.NullLogger<BackupMx.Core.Spool.SpoolLedger>.Instance), new UnreadableStatuses(), h.Get<Microsoft.Extensions.Options.IOptions<Configuration.BackupMxOptions>>(), h.Time, Microsoft.Extensions.Logging.Abstractions.NullLogger<IntakeService>.Instance);

        var result = await intake.AcceptAsync(TestMessages.Make(), None);

        var id = Assert.Single(Assert.IsType<IntakeResult.Accepted>(result).QueueIds);
        Assert.Equal(h.Time.GetUtcNow(), (await spool.GetAsync("example.test", id, None))!.NextAttemptAt);
        Assert.Equal(h.Time.GetUtcNow(), Assert.Single(h.WakeUps.History).DueAt);
    }

    [Fact]
    public async Task AcceptAsync_PrimaryUpOrUnknown_IsDueAtOnce()
    {
        using var h = new CoreHarness();
        var now = h.Time.GetUtcNow();
        await h.Get<IPrimaryStatusStore>().OverwriteAsync(new PrimaryStatus("other.test", PrimaryState.Up, now, now, null, null), None);

        var result = await h.Intake.AcceptAsync(TestMessages.Make(recipients: ["a@example.test", "b@other.test"]), None);

        foreach (var (domain, id) in new[] { "example.test", "other.test" }.Zip(Assert.IsType<IntakeResult.Accepted>(result).QueueIds))
        {
            Assert.Equal(now, (await h.Spool.GetAsync(domain, id, None))!.NextAttemptAt);
        }
    }

    [Fact]
    public async Task AcceptAsync_RecipientsInTwoDomains_OneRecordAndBodyPerDomain()
    {
        using var h = new CoreHarness();

        var result = await h.Intake.AcceptAsync(TestMessages.Make(recipients: ["a@example.test", "b@other.test", "c@EXAMPLE.test"]), None);

        var ids = Assert.IsType<IntakeResult.Accepted>(result).QueueIds;
        Assert.Equal(2, ids.Count);
        var first = await h.Spool.GetAsync("example.test", ids[0], None);
        var second = await h.Spool.GetAsync("other.test", ids[1], None);
        Assert.Equal(["a@example.test", "c@EXAMPLE.test"], first!.Recipients.Select(r => r.Address));
        Assert.Equal(["b@other.test"], second!.Recipients.Select(r => r.Address));
        Assert.Equal(2, ((InMemoryBodyStore)h.Bodies).Count);
        Assert.DoesNotContain("\tfor <", TestMessages.Text(((InMemoryBodyStore)h.Bodies).Get(ids[0])));
    }

    [Fact]
    public async Task AcceptAsync_SpoolFails_ReturnsFailedAndKeepsNoRecord()
    {
        var spool = new InMemorySpoolStore { FailWith = new IOException("disk full") };
        using var h = new CoreHarness(spool: spool);

        var result = await h.Intake.AcceptAsync(TestMessages.Make(), None);

        Assert.IsType<IntakeResult.Failed>(result);
        Assert.Empty(h.WakeUps.History);
        spool.FailWith = null;
        Assert.Equal(0, spool.Count);

        // The failing store could not say whether the record was stored, so the body stays: an
        // orphaned body is only space (the embedded start-up scan removes it), a record without one is lost mail.
        Assert.Equal(1, ((InMemoryBodyStore)h.Bodies).Count);
    }

    [Fact]
    public async Task AcceptAsync_BodyWriteFails_ReturnsFailedAndKeepsNoRecord()
    {
        var bodies = new InMemoryBodyStore { FailWritesWith = new UnauthorizedAccessException("read-only") };
        using var h = new CoreHarness(bodies: bodies);

        var result = await h.Intake.AcceptAsync(TestMessages.Make(), None);

        Assert.IsType<IntakeResult.Failed>(result);
        Assert.Equal(0, ((InMemorySpoolStore)h.Spool).Count);
    }

    [Fact]
    public async Task AcceptAsync_WakeUpFails_AcceptsAndTheSweepWakesEveryDomain()
    {
        var spool = new InMemorySpoolStore();
        var bodies = new InMemoryBodyStore();
        using var h = new CoreHarness(spool: spool, bodies: bodies);
        var intake = new IntakeService(new BackupMx.Core.Spool.SpoolLedger(spool, bodies, new FailingWakeUps(), h.Time, Microsoft.Extensions.Logging.Abstractions.NullLogger<BackupMx.Core.Spool.SpoolLedger>.Instance), new BackupMx.Core.Monitoring.InMemoryPrimaryStatusStore(), h.Get<Microsoft.Extensions.Options.IOptions<Configuration.BackupMxOptions>>(), h.Time, Microsoft.Extensions.Logging.Abstractions.NullLogger<IntakeService>.Instance);

        var result = await intake.AcceptAsync(TestMessages.Make(recipients: ["a@example.test", "b@other.test"]), None);

        // Every record was committed, so the message is ours: a 451 now would have the sender send it again.
        var ids = Assert.IsType<IntakeResult.Accepted>(result).QueueIds;
        Assert.Equal(2, spool.Count);
        Assert.Equal(2, bodies.Count);
        h.Time.Advance(h.Sweeper.Grace);
        await h.Sweeper.SweepAsync(None);
        Assert.Equal(ids, h.WakeUps.History.Select(w => w.WakeUp.QueueId).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task AcceptAsync_SecondDomainsWakeUpFails_AcceptsWithoutUndoingTheFirst()
    {
        var spool = new InMemorySpoolStore();
        var bodies = new InMemoryBodyStore();
        using var h = new CoreHarness(spool: spool, bodies: bodies);
        var wakeUps = new FailsAfter(h.WakeUps, succeeding: 1);
        var intake = new IntakeService(new BackupMx.Core.Spool.SpoolLedger(spool, bodies, wakeUps, h.Time, Microsoft.Extensions.Logging.Abstractions.NullLogger<BackupMx.Core.Spool.SpoolLedger>.Instance), new BackupMx.Core.Monitoring.InMemoryPrimaryStatusStore(), h.Get<Microsoft.Extensions.Options.IOptions<Configuration.BackupMxOptions>>(), h.Time, Microsoft.Extensions.Logging.Abstractions.NullLogger<IntakeService>.Instance);

        var result = await intake.AcceptAsync(TestMessages.Make(recipients: ["a@example.test", "b@other.test"]), None);

        var ids = Assert.IsType<IntakeResult.Accepted>(result).QueueIds;
        var (first, _) = Assert.Single(h.WakeUps.History);
        Assert.Equal(ids[0], first.QueueId);
        Assert.NotNull(await spool.GetAsync("example.test", ids[0], None));
        Assert.Equal(h.Time.GetUtcNow(), (await spool.GetAsync("other.test", ids[1], None))!.NextAttemptAt);
    }

    [Fact]
    public async Task AcceptAsync_SecondRecordFails_UndoesTheFirstBeforeAnyWakeUp()
    {
        var inner = new InMemorySpoolStore();
        var spool = new FailingCreate(inner, failOn: 2, storedAnyway: false);
        var bodies = new InMemoryBodyStore();
        using var h = new CoreHarness(spool: spool, bodies: bodies);

        var result = await h.Intake.AcceptAsync(TestMessages.Make(recipients: ["a@example.test", "b@other.test"]), None);

        Assert.IsType<IntakeResult.Failed>(result);
        Assert.Empty(h.WakeUps.History);
        Assert.Equal(0, inner.Count);
        Assert.Equal(0, bodies.Count);
    }

    [Fact]
    public async Task AcceptAsync_CreateFailsAfterTheServiceStoredTheRecord_LeavesNoRecordWithoutBody()
    {
        var inner = new InMemorySpoolStore();
        var spool = new FailingCreate(inner, failOn: 1, storedAnyway: true);
        var bodies = new InMemoryBodyStore();
        using var h = new CoreHarness(spool: spool, bodies: bodies);

        var result = await h.Intake.AcceptAsync(TestMessages.Make(), None);

        Assert.IsType<IntakeResult.Failed>(result);
        Assert.Equal(0, inner.Count);
        Assert.Equal(0, bodies.Count);
    }

    [Fact]
    public async Task AcceptAsync_UncertainRecordCannotBeRemoved_KeepsItsBody()
    {
        var inner = new InMemorySpoolStore();
        var spool = new FailingCreate(inner, failOn: 1, storedAnyway: true) { FailReads = true };
        var bodies = new InMemoryBodyStore();
        using var h = new CoreHarness(spool: spool, bodies: bodies);

        var result = await h.Intake.AcceptAsync(TestMessages.Make(), None);

        Assert.IsType<IntakeResult.Failed>(result);
        var record = Assert.Single(await inner.ListAllAsync(None).ToListAsync());
        Assert.NotNull(bodies.Get(record.QueueId));
    }

    [Fact]
    public async Task AcceptAsync_UnconfiguredDomain_IsRefusedNotRelayed()
    {
        using var h = new CoreHarness();

        var result = await h.Intake.AcceptAsync(TestMessages.Make(recipients: ["a@example.test", "victim@elsewhere.test"]), None);

        Assert.IsType<IntakeResult.Failed>(result);
        Assert.Equal(0, ((InMemorySpoolStore)h.Spool).Count);
    }

    [Fact]
    public void ReceivedHeader_HostileHeloName_IsSanitised()
    {
        var header = TestMessages.Text(ReceivedHeader.Build("mx.test", "evil\r\nBcc: x@y (z)", "192.0.2.1", "ID", null, secure: true, new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.FromHours(-5))));
        Assert.Equal("Received: from evilBcc:x@yz ([192.0.2.1])\r\n\tby mx.test (BackupMx) with ESMTPS id ID; Fri, 2 Jan 2026 03:04:05 -0500\r\n", header);
    }

    [Theory]
    [InlineData("2001:db8::1", true, false, "([IPv6:2001:db8::1])", "with ESMTP id")]
    [InlineData("192.0.2.1", false, false, "([192.0.2.1])", "with SMTP id")]
    [InlineData("2001:db8::2", false, true, "([IPv6:2001:db8::2])", "with SMTP id")]
    [InlineData("192.0.2.1", true, true, "([192.0.2.1])", "with ESMTPS id")]
    public void ReceivedHeader_AddressAndGreeting_TaggedLiteralAndProtocol(string client, bool extended, bool secure, string literal, string protocol)
    {
        var header = TestMessages.Text(ReceivedHeader.Build("mx.test", "c.test", client, "ID", null, secure, new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero), extended));

        Assert.StartsWith("Received: from c.test " + literal + "\r\n", header);
        Assert.Contains("(BackupMx) " + protocol + " ID;", header);
    }

    private sealed class FailingWakeUps : IWakeUpQueue
    {
        public Task<string?> ScheduleAsync(WakeUp wakeUp, DateTimeOffset dueAt, CancellationToken cancellationToken) => throw new TimeoutException("service bus unavailable");

        public Task CancelAsync(string token, CancellationToken cancellationToken) => Task.CompletedTask;
    }

    /// <summary>Schedules the first <c>succeeding</c> wake-ups, then fails like an unreachable Service Bus.</summary>
    private sealed class FailsAfter(IWakeUpQueue inner, int succeeding) : IWakeUpQueue
    {
        private int _calls;

        public Task<string?> ScheduleAsync(WakeUp wakeUp, DateTimeOffset dueAt, CancellationToken cancellationToken) =>
            ++_calls <= succeeding ? inner.ScheduleAsync(wakeUp, dueAt, cancellationToken) : throw new TimeoutException("service bus unavailable");

        public Task CancelAsync(string token, CancellationToken cancellationToken) => inner.CancelAsync(token, cancellationToken);
    }

    /// <summary>
    /// The n-th create fails; with <c>storedAnyway</c> the record was stored before the failure,
    /// as when the service committed it and the response was lost.
    /// </summary>
    private sealed class FailingCreate(ISpoolStore inner, int failOn, bool storedAnyway) : DelegatingSpoolStore(inner)
    {
        private int _creates;

        public bool FailReads { get; init; }

        public override async Task<SpoolRecord> CreateAsync(SpoolRecord record, CancellationToken cancellationToken)
        {
            if (++_creates != failOn)
            {
                return await base.CreateAsync(record, cancellationToken);
            }

            if (storedAnyway)
            {
                await base.CreateAsync(record, cancellationToken);
            }

            throw new TimeoutException("no response from the table service");
        }

        public override Task<SpoolRecord?> GetAsync(string domain, string queueId, CancellationToken cancellationToken) =>
            FailReads ? throw new TimeoutException("no response from the table service") : base.GetAsync(domain, queueId, cancellationToken);
    }

    /// <summary>A status table that cannot be reached.</summary>
    private sealed class UnreadableStatuses : IPrimaryStatusStore
    {
        public Task<VersionedPrimaryStatus?> GetAsync(string domain, CancellationToken cancellationToken) => throw new IOException("status table unavailable");

        public Task<bool> TrySetAsync(PrimaryStatus status, string? expectedVersion, CancellationToken cancellationToken) => throw new IOException("status table unavailable");

        public Task<IReadOnlyList<PrimaryStatus>> ListAsync(CancellationToken cancellationToken) => throw new IOException("status table unavailable");
    }

    /// <summary>Down when the intake first looks, Up from then on: a recovery during the write.</summary>
    private sealed class RecoversAfterFirstRead : IPrimaryStatusStore
    {
        private int _reads;

        public Task<VersionedPrimaryStatus?> GetAsync(string domain, CancellationToken cancellationToken)
        {
            var read = Interlocked.Increment(ref _reads);
            var status = new PrimaryStatus(domain, read == 1 ? PrimaryState.Down : PrimaryState.Up, null, null, null, null);
            return Task.FromResult<VersionedPrimaryStatus?>(new VersionedPrimaryStatus(status, read.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        }

        public Task<bool> TrySetAsync(PrimaryStatus status, string? expectedVersion, CancellationToken cancellationToken) => Task.FromResult(true);

        public Task<IReadOnlyList<PrimaryStatus>> ListAsync(CancellationToken cancellationToken) => Task.FromResult<IReadOnlyList<PrimaryStatus>>([]);
    }
}
