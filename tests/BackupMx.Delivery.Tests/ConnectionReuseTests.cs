using BackupMx.Testing;
using Microsoft.Extensions.Time.Testing;

namespace BackupMx.Delivery.Tests;

/// <summary>Several messages per primary connection (Delivery:IdleConnectionTimeout).</summary>
public sealed class ConnectionReuseTests : IAsyncLifetime
{
    private static readonly byte[] Body = TestDelivery.Ascii("From: alice@sender.org\r\nTo: bob@example.com\r\nSubject: hi\r\n\r\nhello\r\n");
    private readonly FakePrimary _primary = new();
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 27, 12, 0, 0, TimeSpan.Zero));

    public Task InitializeAsync() => _primary.StartAsync();

    public async Task DisposeAsync() => await _primary.DisposeAsync();

    private MailKitTransport Transport(TimeSpan? idle = null)
    {
        var config = TestDelivery.Config(_primary.HostPort);
        config.Delivery.IdleConnectionTimeout = idle ?? TimeSpan.FromSeconds(5);
        return TestDelivery.Transport(config, time: _time);
    }

    [Fact]
    public async Task DeliverAsync_SeveralMessagesInSequence_ShareOneConnection()
    {
        await using var transport = Transport();

        for (var i = 0; i < 3; i++)
        {
            var result = await transport.DeliverAsync(TestDelivery.Request(Body, recipients: [$"user{i}@example.com"]), CancellationToken.None);
            Assert.True(result.ReplyFor($"user{i}@example.com").IsSuccess);
        }

        Assert.Equal(1, _primary.ConnectionCount);
        Assert.Equal(["user0@example.com", "user1@example.com", "user2@example.com"], _primary.Messages.Select(m => Assert.Single(m.AcceptedRecipients)));
        Assert.Equal(1, transport.IdleConnections);
    }

    [Fact]
    public async Task DeliverAsync_IdleTimeoutZero_OneConnectionPerMessage()
    {
        await using var transport = Transport(TimeSpan.Zero);

        await transport.DeliverAsync(TestDelivery.Request(Body), CancellationToken.None);
        await transport.DeliverAsync(TestDelivery.Request(Body), CancellationToken.None);

        Assert.Equal(2, _primary.Messages.Count);
        Assert.Equal(2, _primary.ConnectionCount);
        Assert.Equal(0, transport.IdleConnections);
    }

    [Fact]
    public async Task DeliverAsync_PooledConnectionClosedWhileIdle_SentOnceOnFreshConnection()
    {
        await using var transport = Transport();
        await transport.DeliverAsync(TestDelivery.Request(Body, recipients: ["first@example.com"]), CancellationToken.None);
        Assert.Equal(1, transport.IdleConnections);

        // The primary restarts: the pooled connection is dead, which the client only learns when it writes.
        await _primary.StopAsync();
        await _primary.StartAsync();

        var result = await transport.DeliverAsync(TestDelivery.Request(Body, recipients: ["second@example.com"]), CancellationToken.None);

        Assert.True(result.ReplyFor("second@example.com").IsSuccess);
        Assert.Equal(["first@example.com", "second@example.com"], _primary.Messages.Select(m => Assert.Single(m.AcceptedRecipients)));
        Assert.Equal(2, _primary.ConnectionCount);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task DeliverAsync_PooledConnectionStale_OpensTheBodyOnceAndSendsItUnchanged(bool seekable)
    {
        await using var transport = Transport();
        await transport.DeliverAsync(TestDelivery.Request(Body, recipients: ["first@example.com"]), CancellationToken.None);
        await _primary.StopAsync();
        await _primary.StartAsync();

        var opens = 0;
        var request = TestDelivery.Request(Body, recipients: ["second@example.com"], seekable: seekable);
        var open = request.OpenBody;
        request = request with
        {
            OpenBody = ct =>
            {
                Interlocked.Increment(ref opens);
                return open(ct);
            },
        };
        var result = await transport.DeliverAsync(request, CancellationToken.None);

        Assert.True(result.ReplyFor("second@example.com").IsSuccess);
        Assert.Equal(1, opens);
        Assert.Equal(2, _primary.ConnectionCount);
        Assert.Equal(Body, _primary.Messages[^1].Data);
    }

    [Fact]
    public async Task DeliverAsync_RecipientRefusedButMessageTaken_ConnectionReused()
    {
        // After the final 250 the server is at the start of a new transaction (RFC 5321 §4.1.1.4),
        // whatever some RCPT replies said; the transaction is written by us, not MailKit.
        _primary.Reply("gone@example.com", 550, "5.1.1 No such user");
        await using var transport = Transport();

        var first = await transport.DeliverAsync(TestDelivery.Request(Body, recipients: ["bob@example.com", "gone@example.com"]), CancellationToken.None);
        var second = await transport.DeliverAsync(TestDelivery.Request(Body, recipients: ["bob@example.com"]), CancellationToken.None);

        Assert.Equal(550, first.ReplyFor("gone@example.com").Code);
        Assert.True(second.ReplyFor("bob@example.com").IsSuccess);
        Assert.Equal(1, _primary.ConnectionCount);
    }

    [Fact]
    public async Task DeliverAsync_DataRefused_NextMessageGetsItsOwnReplyOnAFreshConnection()
    {
        _primary.DataReply = new FakeReply(451, "4.3.0 Try later");
        await using var transport = Transport();

        var refused = await transport.DeliverAsync(TestDelivery.Request(Body), CancellationToken.None);
        _primary.DataReply = new FakeReply(250, "2.0.0 queued");
        var accepted = await transport.DeliverAsync(TestDelivery.Request(Body), CancellationToken.None);

        Assert.All(refused.Outcomes, o => Assert.Equal(451, o.Reply.Code));
        Assert.All(accepted.Outcomes, o => Assert.True(o.Reply.IsSuccess));
        Assert.Equal(2, _primary.ConnectionCount);
    }

    [Fact]
    public async Task IdleConnection_PastTheIdleTimeout_IsClosed()
    {
        await using var transport = Transport(TimeSpan.FromSeconds(5));
        await transport.DeliverAsync(TestDelivery.Request(Body), CancellationToken.None);
        Assert.Equal(1, transport.IdleConnections);

        _time.Advance(TimeSpan.FromSeconds(6));

        Assert.Equal(0, transport.IdleConnections);
        await transport.DeliverAsync(TestDelivery.Request(Body), CancellationToken.None);
        Assert.Equal(2, _primary.ConnectionCount);
    }
}
