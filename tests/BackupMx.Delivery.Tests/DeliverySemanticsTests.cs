using System.Net;
using BackupMx.Core.Model;
using BackupMx.Testing;

namespace BackupMx.Delivery.Tests;

/// <summary>How one attempt uses the route and the session: the next MX for deferred recipients, follow-up transactions after a 452.</summary>
public sealed class DeliverySemanticsTests : IAsyncLifetime
{
    private static readonly byte[] Body = TestDelivery.Ascii("From: alice@sender.org\r\nSubject: hi\r\n\r\nhello\r\n");
    private readonly FakePrimary _first = new();
    private FakePrimary _second = null!;

    public async Task InitializeAsync()
    {
        await _first.StartAsync();

        // The same port on another loopback address: MX hosts share the delivery port.
        _second = new FakePrimary(IPAddress.Parse("127.0.0.2"), _first.Port);
        await _second.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await _first.DisposeAsync();
        await _second.DisposeAsync();
    }

    private MailKitTransport MxTransport(int sessionLimit = 2)
    {
        var options = TestDelivery.Config(port: _first.Port);
        options.Delivery.MxSessionLimit = sessionLimit;
        var dns = new ScriptedDns()
            .WithMx("example.com", (10, "mx1.example.com"), (20, "mx2.example.com"))
            .WithAddress("mx1.example.com", "127.0.0.1")
            .WithAddress("mx2.example.com", "127.0.0.2");
        return TestDelivery.Transport(options, dns);
    }

    [Fact]
    public async Task DeliverAsync_FirstMxDefersARecipient_SecondMxTakesItInTheSameAttempt()
    {
        _first.Reply("later@example.com", 451, "4.3.0 Try again later");

        var result = await MxTransport().DeliverAsync(TestDelivery.Request(Body, recipients: ["bob@example.com", "later@example.com"]), CancellationToken.None);

        Assert.True(result.ReplyFor("bob@example.com").IsSuccess);
        Assert.True(result.ReplyFor("later@example.com").IsSuccess, result.ReplyFor("later@example.com").ToString());
        Assert.Equal(["bob@example.com"], _first.Messages.Single().AcceptedRecipients);
        Assert.Equal(["later@example.com"], _second.Messages.Single().AcceptedRecipients);
    }

    [Fact]
    public async Task DeliverAsync_FirstMxRefusesMail_SecondMxTakesTheMessage()
    {
        _first.MailFromReply = new FakeReply(451, "4.7.1 Greylisted");

        var result = await MxTransport().DeliverAsync(TestDelivery.Request(Body), CancellationToken.None);

        Assert.True(result.ReplyFor("bob@example.com").IsSuccess);
        Assert.Single(_second.Messages);
    }

    [Fact]
    public async Task DeliverAsync_SessionLimitOne_DeferredRecipientWaitsForTheNextAttempt()
    {
        _first.DefaultRecipientReply = new FakeReply(451, "4.3.0 Try again later");

        var result = await MxTransport(sessionLimit: 1).DeliverAsync(TestDelivery.Request(Body), CancellationToken.None);

        Assert.Equal(new SmtpReply(451, "4.3.0", "Try again later"), result.ReplyFor("bob@example.com"));
        Assert.Equal(0, _second.ConnectionCount);
    }

    [Fact]
    public async Task DeliverAsync_FirstMxLosesTheConnectionAfterData_NotSentToTheSecond()
    {
        // The first host may have taken it: a second copy is not sent within the attempt.
        _first.DropAfterData = true;

        var result = await MxTransport().DeliverAsync(TestDelivery.Request(Body), CancellationToken.None);

        Assert.True(result.ReplyFor("bob@example.com").IsTransient);
        Assert.Equal(0, _second.ConnectionCount);
    }

    [Fact]
    public async Task DeliverAsync_MoreRecipientsThanThePrimaryTakes_FollowUpTransactionsOnOneConnection()
    {
        _first.MaxRecipientsPerTransaction = 3;
        var recipients = Enumerable.Range(1, 10).Select(i => $"r{i}@example.com").ToArray();
        var transport = TestDelivery.Transport(TestDelivery.Config(_first.HostPort));

        var result = await transport.DeliverAsync(TestDelivery.Request(Body, recipients: recipients), CancellationToken.None);

        Assert.All(result.Outcomes, o => Assert.True(o.Reply.IsSuccess, o.Reply.ToString()));
        Assert.Equal(4, _first.Messages.Count);
        Assert.Equal(recipients, _first.Messages.SelectMany(m => m.AcceptedRecipients));
        Assert.Equal(1, _first.ConnectionCount);
    }

    [Fact]
    public async Task DeliverAsync_452WithoutProgress_NoEndlessFollowUps()
    {
        _first.DefaultRecipientReply = new FakeReply(452, "4.3.1 Insufficient system storage");
        var transport = TestDelivery.Transport(TestDelivery.Config(_first.HostPort));

        var result = await transport.DeliverAsync(TestDelivery.Request(Body, recipients: ["a@example.com", "b@example.com"]), CancellationToken.None);

        Assert.All(result.Outcomes, o => Assert.Equal(452, o.Reply.Code));
        Assert.Equal(1, _first.Commands.Count(c => c.StartsWith("MAIL ", StringComparison.Ordinal)));
    }
}

public sealed class ConnectionLimitTests
{
    private static readonly byte[] Body = TestDelivery.Ascii("From: alice@sender.org\r\nSubject: hi\r\n\r\nhello\r\n");

    [Fact]
    public async Task DeliverAsync_PrimaryTakesTwoSessions_EveryMessageDeliveredInItsFirstAttempt()
    {
        await using var primary = new FakePrimary { MaxConcurrentSessions = 2 };
        await primary.StartAsync();
        await using var transport = TestDelivery.Transport(TestDelivery.Config(primary.HostPort));

        var results = await Task.WhenAll(Enumerable.Range(0, 12).Select(i =>
            Task.Run(() => transport.DeliverAsync(TestDelivery.Request(Body, recipients: [$"r{i}@example.com"]), CancellationToken.None))));

        Assert.All(results, r => Assert.True(r.Outcomes[0].Reply.IsSuccess, r.Outcomes[0].Reply.ToString()));
        Assert.Equal(12, primary.Messages.Count);
        Assert.True(primary.PeakSessions <= 2);
    }

    [Fact]
    public async Task DeliverAsync_421GreetingEveryTime_ServerBusyNotReached()
    {
        await using var primary = new FakePrimary { Greeting = new FakeReply(421, "4.7.0 too many connections") };
        await primary.StartAsync();
        await using var transport = TestDelivery.Transport(TestDelivery.Config(primary.HostPort));

        var result = await transport.DeliverAsync(TestDelivery.Request(Body), CancellationToken.None);

        Assert.True(result.ServerBusy);
        Assert.False(result.ReachedServer);
        Assert.True(result.Outcomes[0].Reply.IsTransient);
    }
}
