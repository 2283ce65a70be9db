using BackupMx.Core.Configuration;
using BackupMx.Core.Intake;
using BackupMx.Core.Monitoring;
using BackupMx.Core.Ports;
using BackupMx.Testing.Fakes;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using BackupMx.Testing;

namespace BackupMx.Core.Tests;

public sealed class RecipientPolicyTests
{
    private static readonly CancellationToken None = CancellationToken.None;

    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 27, 12, 0, 0, TimeSpan.Zero));
    private readonly ScriptedRecipientVerifier _verifier = new();
    private readonly InMemoryPrimaryStatusStore _statuses = new();
    private readonly DomainOptions _domain = new() { Name = "example.test" };
    private readonly BackupMxOptions _options;

    public RecipientPolicyTests()
    {
        _options = new BackupMxOptions { HostName = "backup.test", Domains = [_domain, new DomainOptions { Name = "other.test" }] };
    }

    private RecipientPolicy Policy(IRecipientVerifier? verifier = null) =>
        new(Options.Create(_options), verifier ?? _verifier, _statuses, _time, NullLogger<RecipientPolicy>.Instance);

    private Task SetPrimaryAsync(PrimaryState state) =>
        _statuses.OverwriteAsync(new PrimaryStatus("example.test", state, _time.GetUtcNow(), _time.GetUtcNow(), null, null), None);

    [Theory]
    [InlineData("user@elsewhere.test")]
    [InlineData("user@sub.example.test")]
    [InlineData("no-at-sign")]
    [InlineData("@example.test")]
    [InlineData("user@")]
    [InlineData("user@.")]
    [InlineData("\"user@example.test\"@elsewhere.test")]
    [InlineData("user@example.test@elsewhere.test")]
    [InlineData("user@example.test.elsewhere.test")]
    [InlineData("user@.example.test")]
    [InlineData("user@[127.0.0.1]")]
    public async Task Evaluate_OtherDomainOrNoAddress_NotRelayed(string address)
    {
        var decision = await Policy().EvaluateAsync(address, None);

        Assert.Equal(RecipientVerdict.NotRelayed, decision.Verdict);
        Assert.Equal("550 5.7.1 Relaying denied", decision.Refusal!.ToString());
    }

    [Fact]
    public async Task Evaluate_NoRecipientPolicyConfigured_AnyAddressAccepted()
    {
        Assert.True((await Policy().EvaluateAsync("anyone@EXAMPLE.test.", None)).IsAccepted);
        Assert.Empty(_verifier.Calls);
    }

    [Fact]
    public async Task Evaluate_RecipientsList_ListedAcceptedOthers550()
    {
        _domain.Recipients = ["alice@example.test", "Bob@EXAMPLE.TEST"];
        var policy = Policy();

        Assert.True((await policy.EvaluateAsync("alice@example.test", None)).IsAccepted);
        Assert.True((await policy.EvaluateAsync("alice@Example.Test", None)).IsAccepted);
        Assert.True((await policy.EvaluateAsync("Bob@example.test", None)).IsAccepted);

        var unknown = await policy.EvaluateAsync("carol@example.test", None);
        Assert.Equal(RecipientVerdict.UnknownRecipient, unknown.Verdict);
        Assert.StartsWith("550 5.1.1 ", unknown.Refusal!.ToString());

        // The local part is compared as configured: only the primary knows whether case matters.
        Assert.False((await policy.EvaluateAsync("bob@example.test", None)).IsAccepted);

        // Other domains keep accepting anyone.
        Assert.True((await policy.EvaluateAsync("carol@other.test", None)).IsAccepted);
    }

    [Theory]
    [InlineData("postmaster@example.test")]
    [InlineData("Postmaster@example.test")]
    [InlineData("POSTMASTER@Example.Test.")]
    [InlineData("\"postmaster\"@example.test")]
    public async Task Evaluate_PostmasterNotInRecipientsList_Accepted(string address)
    {
        _domain.Recipients = ["alice@example.test"];

        Assert.True((await Policy().EvaluateAsync(address, None)).IsAccepted);
        Assert.False((await Policy().EvaluateAsync("postmasters@example.test", None)).IsAccepted);
    }

    [Theory]
    [InlineData(VerificationOutcome.DoesNotExist)]
    [InlineData(VerificationOutcome.Unknown)]
    public async Task Evaluate_PostmasterWithCallouts_AcceptedWithoutCallout(VerificationOutcome outcome)
    {
        _domain.VerifyRecipients = true;
        _verifier.Outcome = _ => outcome;

        Assert.True((await Policy().EvaluateAsync("PostMaster@example.test", None)).IsAccepted);
        Assert.Empty(_verifier.Calls);
    }

    [Fact]
    public async Task Evaluate_PostmasterWhilePrimaryUpAndAcceptOnlyWhenDown_DeferredToPrimary()
    {
        // 450 sends the client to the primary, which must accept postmaster itself: a deferral, not a refusal.
        _domain.AcceptOnlyWhenPrimaryDown = true;
        _domain.Recipients = ["alice@example.test"];
        await SetPrimaryAsync(PrimaryState.Up);

        Assert.Equal(RecipientVerdict.PrimaryIsUp, (await Policy().EvaluateAsync("postmaster@example.test", None)).Verdict);
    }

    [Fact]
    public async Task Evaluate_CatchAllListed_AnyLocalPartAccepted()
    {
        _domain.Recipients = ["*@example.test"];

        Assert.True((await Policy().EvaluateAsync("whoever@example.test", None)).IsAccepted);
    }

    [Fact]
    public async Task Evaluate_Verify_ExistsAcceptedAndCachedForPositiveDuration()
    {
        _domain.VerifyRecipients = true;
        _verifier.Outcome = _ => VerificationOutcome.Exists;
        var policy = Policy();

        Assert.True((await policy.EvaluateAsync("alice@example.test", None)).IsAccepted);
        _time.Advance(TimeSpan.FromDays(7) - TimeSpan.FromSeconds(1));
        Assert.True((await policy.EvaluateAsync("alice@example.test", None)).IsAccepted);
        Assert.Single(_verifier.Calls);

        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.True((await policy.EvaluateAsync("alice@example.test", None)).IsAccepted);
        Assert.Equal(2, _verifier.Calls.Count);
    }

    [Fact]
    public async Task Evaluate_Verify_DoesNotExist550AndCachedForNegativeDuration()
    {
        _domain.VerifyRecipients = true;
        _verifier.Outcome = _ => VerificationOutcome.DoesNotExist;
        var policy = Policy();

        var decision = await policy.EvaluateAsync("ghost@example.test", None);
        Assert.Equal(RecipientVerdict.UnknownRecipient, decision.Verdict);
        Assert.Equal(550, decision.Refusal!.Code);
        Assert.Equal("5.1.1", decision.Refusal.EnhancedCode);

        _time.Advance(TimeSpan.FromMinutes(59));
        Assert.False((await policy.EvaluateAsync("ghost@example.test", None)).IsAccepted);
        Assert.Single(_verifier.Calls);

        // After the negative period the primary is asked again, and may have created the mailbox.
        _time.Advance(TimeSpan.FromMinutes(1));
        _verifier.Outcome = _ => VerificationOutcome.Exists;
        Assert.True((await policy.EvaluateAsync("ghost@example.test", None)).IsAccepted);
        Assert.Equal(2, _verifier.Calls.Count);
    }

    [Fact]
    public async Task Evaluate_PrimaryUnreachable_VerifiedBeforeAcceptedOthers450()
    {
        _domain.VerifyRecipients = true;
        _verifier.Outcome = _ => VerificationOutcome.Exists;
        var policy = Policy();
        Assert.True((await policy.EvaluateAsync("alice@example.test", None)).IsAccepted);

        _verifier.Outcome = _ => VerificationOutcome.Unknown;
        _time.Advance(TimeSpan.FromDays(1));

        Assert.True((await policy.EvaluateAsync("alice@example.test", None)).IsAccepted);
        var unknown = await policy.EvaluateAsync("bob@example.test", None);
        Assert.Equal(RecipientVerdict.NotVerified, unknown.Verdict);
        Assert.Equal("450 4.1.1", $"{unknown.Refusal!.Code} {unknown.Refusal.EnhancedCode}");

        // An Unknown answer is not cached: the next RCPT asks again.
        Assert.False((await policy.EvaluateAsync("bob@example.test", None)).IsAccepted);
        Assert.Equal(3, _verifier.Calls.Count);
    }

    [Fact]
    public async Task Evaluate_PrimaryUnreachableAcceptUnverified_Accepted()
    {
        _domain.VerifyRecipients = true;
        _domain.AcceptUnverifiedWhenPrimaryDown = true;

        Assert.True((await Policy().EvaluateAsync("bob@example.test", None)).IsAccepted);
    }

    [Fact]
    public async Task Evaluate_VerifyWithMonitorSayingDown_NoCalloutMade()
    {
        _domain.VerifyRecipients = true;
        await SetPrimaryAsync(PrimaryState.Down);

        Assert.Equal(RecipientVerdict.NotVerified, (await Policy().EvaluateAsync("bob@example.test", None)).Verdict);
        Assert.Empty(_verifier.Calls);
    }

    [Fact]
    public async Task Evaluate_VerifierThrows_TreatedAsUnknown()
    {
        _domain.VerifyRecipients = true;
        var policy = Policy(new ThrowingVerifier());

        Assert.Equal(RecipientVerdict.NotVerified, (await policy.EvaluateAsync("bob@example.test", None)).Verdict);
    }

    [Fact]
    public async Task Evaluate_NullVerifier_DefersUnverified()
    {
        _domain.VerifyRecipients = true;

        Assert.Equal(RecipientVerdict.NotVerified, (await Policy(new ScriptedRecipientVerifier()).EvaluateAsync("bob@example.test", None)).Verdict);
    }

    [Fact]
    public async Task Evaluate_RecipientsListAndVerify_UnlistedRefusedWithoutCallout()
    {
        _domain.Recipients = ["alice@example.test"];
        _domain.VerifyRecipients = true;
        _verifier.Outcome = _ => VerificationOutcome.Exists;
        var policy = Policy();

        Assert.Equal(RecipientVerdict.UnknownRecipient, (await policy.EvaluateAsync("bob@example.test", None)).Verdict);
        Assert.True((await policy.EvaluateAsync("alice@example.test", None)).IsAccepted);
        Assert.Equal(["alice@example.test"], _verifier.Calls);
    }

    [Fact]
    public async Task Evaluate_ConcurrentSameAddress_OneCallout()
    {
        _domain.VerifyRecipients = true;
        _verifier.Outcome = _ => VerificationOutcome.Exists;
        var gate = new TaskCompletionSource();
        _verifier.Gate = gate.Task;
        var policy = Policy();

        var first = policy.EvaluateAsync("alice@example.test", None).AsTask();
        var second = policy.EvaluateAsync("alice@example.test", None).AsTask();
        gate.SetResult();

        Assert.True((await first).IsAccepted);
        Assert.True((await second).IsAccepted);
        Assert.Single(_verifier.Calls);
    }

    [Fact]
    public async Task Evaluate_CacheFull_LeastRecentlyUsedEvicted()
    {
        _domain.VerifyRecipients = true;
        _options.RecipientVerification.MaxCacheEntries = 2;
        _verifier.Outcome = _ => VerificationOutcome.Exists;
        var policy = Policy();

        await policy.EvaluateAsync("a@example.test", None);
        await policy.EvaluateAsync("b@example.test", None);
        await policy.EvaluateAsync("a@example.test", None);
        await policy.EvaluateAsync("c@example.test", None);
        Assert.Equal(2, policy.CachedRecipients);
        Assert.Equal(3, _verifier.Calls.Count);

        // b was the least recently used and went; a is still known.
        await policy.EvaluateAsync("a@example.test", None);
        Assert.Equal(3, _verifier.Calls.Count);
        await policy.EvaluateAsync("b@example.test", None);
        Assert.Equal(4, _verifier.Calls.Count);
    }

    [Theory]
    [InlineData(PrimaryState.Up, false)]
    [InlineData(PrimaryState.Down, true)]
    [InlineData(PrimaryState.Unknown, true)]
    public async Task Evaluate_AcceptOnlyWhenPrimaryDown_FollowsMonitor(PrimaryState state, bool accepted)
    {
        _domain.AcceptOnlyWhenPrimaryDown = true;
        await SetPrimaryAsync(state);

        var decision = await Policy().EvaluateAsync("alice@example.test", None);

        Assert.Equal(accepted, decision.IsAccepted);
        if (!accepted)
        {
            Assert.Equal(RecipientVerdict.PrimaryIsUp, decision.Verdict);
            Assert.Equal("450 4.7.1", $"{decision.Refusal!.Code} {decision.Refusal.EnhancedCode}");
        }
    }

    [Fact]
    public async Task Evaluate_AcceptOnlyWhenPrimaryDownNeverProbed_Accepted()
    {
        _domain.AcceptOnlyWhenPrimaryDown = true;

        Assert.True((await Policy().EvaluateAsync("alice@example.test", None)).IsAccepted);
    }

    [Fact]
    public async Task Evaluate_PrimaryUpButOptionOff_Accepted()
    {
        await SetPrimaryAsync(PrimaryState.Up);

        Assert.True((await Policy().EvaluateAsync("alice@example.test", None)).IsAccepted);
    }

    [Fact]
    public void AddBackupMxCore_RegistersNoVerifier_TheHostChoosesOne()
    {
        var configuration = new Microsoft.Extensions.Configuration.ConfigurationBuilder().Build();
        var services = BackupMx.Core.Hosting.CoreServiceCollectionExtensions.AddBackupMxCore(new Microsoft.Extensions.DependencyInjection.ServiceCollection(), configuration);

        Assert.DoesNotContain(services, d => d.ServiceType == typeof(IRecipientVerifier));
        Assert.Contains(services, d => d.ServiceType == typeof(RecipientPolicy));
    }

    private sealed class ThrowingVerifier : IRecipientVerifier
    {
        public Task<VerificationResult> VerifyAsync(string domain, string address, CancellationToken cancellationToken) =>
            throw new InvalidOperationException("callout broke");
    }
}
