using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using BackupMx.Core.Model;
using BackupMx.Delivery.Routing;
using BackupMx.Testing;

namespace BackupMx.Delivery.Tests;

public sealed class MailKitTransportTests : IAsyncLifetime
{
    private static readonly byte[] Body = TestDelivery.Ascii("From: alice@sender.org\r\nTo: bob@example.com\r\nSubject: hi\r\n\r\nhello\r\n");
    private readonly FakePrimary _primary = new();

    public Task InitializeAsync() => _primary.StartAsync();

    public async Task DisposeAsync() => await _primary.DisposeAsync();

    private MailKitTransport Transport() => TestDelivery.Transport(TestDelivery.Config(_primary.HostPort));

    [Fact]
    public async Task DeliverAsync_MixedRecipientReplies_EachRecipientGetsItsOwnReply()
    {
        _primary.Reply("later@example.com", 451, "4.2.0 Mailbox busy").Reply("gone@example.com", 550, "5.1.1 No such user");

        var result = await Transport().DeliverAsync(TestDelivery.Request(Body, recipients: ["bob@example.com", "later@example.com", "gone@example.com"]), CancellationToken.None);

        Assert.True(result.ReachedServer);
        Assert.Equal("127.0.0.1", result.RemoteHost);
        var ok = result.ReplyFor("bob@example.com");
        Assert.Equal(250, ok.Code);
        Assert.Equal("queued", ok.Text);
        Assert.Equal(new SmtpReply(451, "4.2.0", "Mailbox busy"), result.ReplyFor("later@example.com"));
        Assert.Equal(new SmtpReply(550, "5.1.1", "No such user"), result.ReplyFor("gone@example.com"));
        var message = Assert.Single(_primary.Messages);
        Assert.Equal(["bob@example.com"], message.AcceptedRecipients);
    }

    [Fact]
    public async Task DeliverAsync_AllRecipients451_TransientRcptRepliesNot554()
    {
        _primary.DefaultRecipientReply = new FakeReply(451, "4.3.0 Try again later");

        var result = await Transport().DeliverAsync(TestDelivery.Request(Body, recipients: ["a@example.com", "b@example.com"]), CancellationToken.None);

        Assert.All(result.Outcomes, o => Assert.Equal(new SmtpReply(451, "4.3.0", "Try again later"), o.Reply));
        Assert.True(result.ReachedServer);
        Assert.Empty(_primary.Messages);
    }

    [Fact]
    public async Task DeliverAsync_452TooManyRecipients_TransientForThoseOnly()
    {
        _primary.Reply("c@example.com", 452, "4.5.3 Too many recipients");

        var result = await Transport().DeliverAsync(TestDelivery.Request(Body, recipients: ["a@example.com", "b@example.com", "c@example.com"]), CancellationToken.None);

        Assert.True(result.ReplyFor("a@example.com").IsSuccess);
        Assert.True(result.ReplyFor("b@example.com").IsSuccess);
        var deferred = result.ReplyFor("c@example.com");
        Assert.True(deferred.IsTransient);
        Assert.Equal("4.5.3", deferred.EnhancedCode);
    }

    [Fact]
    public async Task DeliverAsync_ConnectionRefused_TransientAndNotReached()
    {
        await _primary.StopAsync();

        var result = await Transport().DeliverAsync(TestDelivery.Request(Body, recipients: ["a@example.com", "b@example.com"]), CancellationToken.None);

        Assert.False(result.ReachedServer);
        Assert.False(result.Undeliverable);
        Assert.All(result.Outcomes, o =>
        {
            Assert.True(o.Reply.IsTransient);
            Assert.False(o.Reply.FromRemote);
        });
    }

    [Fact]
    public async Task DeliverAsync_PrimaryComesBack_DeliversOnTheNextAttempt()
    {
        await _primary.StopAsync();
        var transport = Transport();
        Assert.True((await transport.DeliverAsync(TestDelivery.Request(Body), CancellationToken.None)).Outcomes[0].Reply.IsTransient);

        await _primary.StartAsync();
        var result = await transport.DeliverAsync(TestDelivery.Request(Body), CancellationToken.None);

        Assert.True(result.Outcomes[0].Reply.IsSuccess);
        await _primary.WaitForMessagesAsync(1, TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task DeliverAsync_DropAfterData_TransientAndReached()
    {
        _primary.DropAfterData = true;

        var result = await Transport().DeliverAsync(TestDelivery.Request(Body), CancellationToken.None);

        var reply = Assert.Single(result.Outcomes).Reply;
        Assert.True(reply.IsTransient);
        Assert.False(reply.FromRemote);
        Assert.Contains("may have been accepted", reply.Text, StringComparison.Ordinal);
        Assert.True(result.ReachedServer);
        Assert.Single(_primary.Messages);
    }

    [Fact]
    public async Task DeliverAsync_DropAfterData_RefusedRecipientKeepsItsReply()
    {
        _primary.DropAfterData = true;
        _primary.Reply("gone@example.com", 550, "5.1.1 No such user");

        var result = await Transport().DeliverAsync(TestDelivery.Request(Body, recipients: ["bob@example.com", "gone@example.com"]), CancellationToken.None);

        Assert.True(result.ReplyFor("bob@example.com").IsTransient);
        Assert.Equal(550, result.ReplyFor("gone@example.com").Code);
    }

    [Fact]
    public async Task DeliverAsync_NullSender_SentAsEmptyReversePath()
    {
        var result = await Transport().DeliverAsync(TestDelivery.Request(Body, sender: string.Empty), CancellationToken.None);

        Assert.True(result.Outcomes[0].Reply.IsSuccess);
        Assert.Equal(string.Empty, _primary.Messages.Single().MailFrom);
        Assert.Contains(_primary.Commands, c => c.StartsWith("MAIL FROM:<> ", StringComparison.Ordinal) || c == "MAIL FROM:<>");
    }

    [Fact]
    public async Task DeliverAsync_ServerOffersDsn_EnvidRetNotifyAndOrcptPassedOn()
    {
        var parameters = new MailParameters { EnvelopeId = "id+with=specials", Ret = "HDRS", Body = "8BITMIME" };

        await Transport().DeliverAsync(
            TestDelivery.Request(Body, parameters: parameters, recipients: ["bob@example.com", "carol@example.com"], shape: r => r.Address == "bob@example.com" ? new RecipientState { Address = r.Address, Notify = "SUCCESS,FAILURE" } : r),
            CancellationToken.None);

        var message = _primary.Messages.Single();
        Assert.Equal("id+2Bwith+3Dspecials", message.MailParameters["ENVID"]);
        Assert.Equal("HDRS", message.MailParameters["RET"]);
        Assert.Equal(Body.Length.ToString(System.Globalization.CultureInfo.InvariantCulture), message.MailParameters["SIZE"]);
        var bob = message.Recipients.Single(r => r.Address == "bob@example.com");
        Assert.Equal("SUCCESS,FAILURE", bob.Parameters["NOTIFY"]);
        Assert.Equal("rfc822;bob@example.com", bob.Parameters["ORCPT"]);
        Assert.Empty(message.Recipients.Single(r => r.Address == "carol@example.com").Parameters);
        Assert.Equal(TestDelivery.OurHost, message.HeloName);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task DeliverAsync_Delivered_ResultSaysWhetherThePrimaryOffersDsn(bool offered)
    {
        _primary.AdvertiseDsn = offered;

        var result = await Transport().DeliverAsync(TestDelivery.Request(Body, shape: r => new RecipientState { Address = r.Address, Notify = "SUCCESS" }), CancellationToken.None);

        Assert.True(result.ReplyFor("bob@example.com").IsSuccess);
        Assert.Equal(offered, result.RemoteOffersDsn);
        Assert.Equal(offered, _primary.Messages.Single().Recipients[0].Parameters.ContainsKey("NOTIFY"));
    }

    [Fact]
    public async Task DeliverAsync_ReusedConnectionWithoutDsn_StillReportedWithoutDsn()
    {
        _primary.AdvertiseDsn = false;
        await using var transport = Transport();
        await transport.DeliverAsync(TestDelivery.Request(Body), CancellationToken.None);

        var second = await transport.DeliverAsync(TestDelivery.Request(Body), CancellationToken.None);

        Assert.True(second.Outcomes[0].Reply.IsSuccess);
        Assert.False(second.RemoteOffersDsn);
        Assert.Equal(1, _primary.ConnectionCount);
    }

    [Fact]
    public async Task DeliverAsync_ServerWithoutDsn_NoDsnParameters()
    {
        _primary.AdvertiseDsn = false;
        var parameters = new MailParameters { EnvelopeId = "abc", Ret = "FULL" };

        await Transport().DeliverAsync(TestDelivery.Request(Body, parameters: parameters, shape: r => new RecipientState { Address = r.Address, Notify = "NEVER" }), CancellationToken.None);

        var message = _primary.Messages.Single();
        Assert.False(message.MailParameters.ContainsKey("ENVID"));
        Assert.False(message.MailParameters.ContainsKey("RET"));
        Assert.Empty(message.Recipients[0].Parameters);
    }

    [Fact]
    public async Task DeliverAsync_Declared8BitPart_SendsBody8BitMime()
    {
        var body = System.Text.Encoding.Latin1.GetBytes("From: a@b.c\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\ncaf\u00e9\r\n");

        await Transport().DeliverAsync(TestDelivery.Request(body, parameters: new MailParameters { Body = "8BITMIME" }), CancellationToken.None);

        Assert.Equal("8BITMIME", _primary.Messages.Single().MailParameters["BODY"]);
    }

    [Fact]
    public async Task DeliverAsync_MailFromRefused_EveryRecipientGetsThatReply()
    {
        _primary.MailFromReply = new FakeReply(451, "4.7.1 Greylisted");

        var result = await Transport().DeliverAsync(TestDelivery.Request(Body, recipients: ["a@example.com", "b@example.com"]), CancellationToken.None);

        Assert.All(result.Outcomes, o => Assert.Equal(new SmtpReply(451, "4.7.1", "Greylisted"), o.Reply));
    }

    [Fact]
    public async Task DeliverAsync_DataRefused_AcceptedRecipientsGetTheDataReply()
    {
        _primary.DataReply = new FakeReply(552, "5.3.4 Message too big");
        _primary.Reply("later@example.com", 451, "4.2.0 Busy");

        var result = await Transport().DeliverAsync(TestDelivery.Request(Body, recipients: ["bob@example.com", "later@example.com"]), CancellationToken.None);

        Assert.Equal(new SmtpReply(552, "5.3.4", "Message too big"), result.ReplyFor("bob@example.com"));
        Assert.Equal(451, result.ReplyFor("later@example.com").Code);
    }

    [Fact]
    public async Task DeliverAsync_Greeting421_TransientAndNotReached()
    {
        _primary.Greeting = new FakeReply(421, "4.3.2 Too busy");

        var result = await Transport().DeliverAsync(TestDelivery.Request(Body), CancellationToken.None);

        Assert.False(result.ReachedServer);
        Assert.True(result.Outcomes[0].Reply.IsTransient);
        Assert.Contains("421", result.Outcomes[0].Reply.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DeliverAsync_BrokenHandshake_FallsBackToPlainText()
    {
        _primary.OfferStartTls = true;
        _primary.BreakTlsHandshake = true;

        var result = await Transport().DeliverAsync(TestDelivery.Request(Body), CancellationToken.None);

        Assert.True(result.Outcomes[0].Reply.IsSuccess, result.Outcomes[0].Reply.ToString());
        Assert.Equal(2, _primary.ConnectionCount);
    }

    [Fact]
    public async Task DeliverAsync_MxRoute_SkipsDeadAddressAndOurselves()
    {
        // 127.0.0.2 has no listener: that MX is refused and the next one of equal preference is tried.
        var dns = new ScriptedDns()
            .WithMx("example.com", (10, "dead.example.com"), (10, "primary.example.com"), (20, TestDelivery.OurHost), (30, "other.example.com"))
            .WithAddress("dead.example.com", "127.0.0.2")
            .WithAddress("primary.example.com", "127.0.0.1");
        var transport = TestDelivery.Transport(TestDelivery.Config(port: _primary.Port), dns);

        var result = await transport.DeliverAsync(TestDelivery.Request(Body), CancellationToken.None);

        Assert.True(result.Outcomes[0].Reply.IsSuccess, result.Outcomes[0].Reply.ToString());
        Assert.Equal("primary.example.com", result.RemoteHost);
    }

    [Fact]
    public async Task DeliverAsync_OnlyMxAtOurPreference_TransientConfigurationError()
    {
        var dns = new ScriptedDns().WithMx("example.com", (10, TestDelivery.OurHost), (10, "peer-backup.example.com"));

        var result = await TestDelivery.Transport(TestDelivery.Config(port: _primary.Port), dns).DeliverAsync(TestDelivery.Request(Body), CancellationToken.None);

        Assert.True(result.Outcomes[0].Reply.IsTransient);
        Assert.False(result.Undeliverable);
        Assert.False(result.ReachedServer);
    }

    [Fact]
    public async Task DeliverAsync_RelayToNullMx_TransientNotUndeliverable()
    {
        var dns = new ScriptedDns().WithMx("example.com", (0, "."));

        var result = await TestDelivery.Transport(TestDelivery.Config(), dns).DeliverAsync(TestDelivery.Request(Body), CancellationToken.None);

        Assert.False(result.Undeliverable);
        Assert.True(result.Outcomes[0].Reply.IsTransient);
    }

    [Fact]
    public async Task DeliverAsync_DsnToNullMx_Undeliverable556()
    {
        var dns = new ScriptedDns().WithMx("sender.org", (0, "."));

        var result = await TestDelivery.Transport(TestDelivery.Config(), dns).DeliverAsync(
            TestDelivery.Request(Body, sender: string.Empty, recipients: ["alice@sender.org"], kind: MessageKind.Dsn, domain: "sender.org"),
            CancellationToken.None);

        Assert.True(result.Undeliverable);
        var reply = result.Outcomes.Single().Reply;
        Assert.Equal(556, reply.Code);
        Assert.Equal("5.1.10", reply.EnhancedCode);
    }

    [Fact]
    public async Task DeliverAsync_DsnToDomainWithoutMx_FallsBackToAddressRecords()
    {
        var dns = new ScriptedDns().WithMx("sender.org").WithAddress("sender.org", "127.0.0.1");

        var result = await TestDelivery.Transport(TestDelivery.Config(), dns, smtpPort: _primary.Port).DeliverAsync(
            TestDelivery.Request(Body, sender: string.Empty, recipients: ["alice@sender.org"], kind: MessageKind.Dsn, domain: "sender.org"),
            CancellationToken.None);

        Assert.True(result.Outcomes[0].Reply.IsSuccess, result.Outcomes[0].Reply.ToString());
        Assert.Equal("sender.org", result.RemoteHost);
    }

    [Fact]
    public async Task DeliverAsync_DsnToSendersMx_GoesToTheSmtpPortNotThePrimariesPort()
    {
        // Two servers on loopback: the primary listens on Delivery:Port, the sender's MX on the port
        // that stands for 25. A DSN belongs to the sender's MX, whatever Delivery:Port says.
        await using var senderMx = new FakePrimary();
        await senderMx.StartAsync();
        var dns = new ScriptedDns().WithMx("sender.org", (10, "mx.sender.org")).WithAddress("mx.sender.org", "127.0.0.1");

        var result = await TestDelivery.Transport(TestDelivery.Config(port: _primary.Port), dns, smtpPort: senderMx.Port).DeliverAsync(
            TestDelivery.Request(Body, sender: string.Empty, recipients: ["alice@sender.org"], kind: MessageKind.Dsn, domain: "sender.org"),
            CancellationToken.None);

        Assert.True(result.Outcomes[0].Reply.IsSuccess, result.Outcomes[0].Reply.ToString());
        Assert.Equal(["alice@sender.org"], senderMx.Messages.Single().AcceptedRecipients);
        Assert.Empty(_primary.Messages);
    }

    [Fact]
    public async Task DeliverAsync_RelayByMx_GoesToThePrimariesPortNotTheSmtpPort()
    {
        await using var other = new FakePrimary();
        await other.StartAsync();
        var dns = new ScriptedDns().WithMx("example.com", (10, "mx.example.com")).WithAddress("mx.example.com", "127.0.0.1");

        var result = await TestDelivery.Transport(TestDelivery.Config(port: _primary.Port), dns, smtpPort: other.Port).DeliverAsync(TestDelivery.Request(Body), CancellationToken.None);

        Assert.True(result.Outcomes[0].Reply.IsSuccess, result.Outcomes[0].Reply.ToString());
        Assert.Single(_primary.Messages);
        Assert.Empty(other.Messages);
    }

    [Fact]
    public async Task DeliverAsync_DsnWithSmartHost_GoesThroughTheSmartHost()
    {
        var dns = new ScriptedDns().WithMx("sender.org", (10, "mx.sender.org"));
        var options = TestDelivery.Config(smartHost: _primary.HostPort);

        var result = await TestDelivery.Transport(options, dns).DeliverAsync(
            TestDelivery.Request(Body, sender: string.Empty, recipients: ["alice@sender.org"], kind: MessageKind.Dsn, domain: "sender.org"),
            CancellationToken.None);

        Assert.True(result.Outcomes[0].Reply.IsSuccess);
        Assert.Equal(["alice@sender.org"], _primary.Messages.Single().AcceptedRecipients);
    }

    [Fact]
    public async Task DeliverAsync_SilentServer_TimesOutTransient()
    {
        using var silent = new TcpListener(IPAddress.Loopback, 0);
        silent.Start();
        var port = ((IPEndPoint)silent.LocalEndpoint).Port;
        var options = TestDelivery.Config($"127.0.0.1:{port}");
        options.Delivery.Timeout = TimeSpan.FromMilliseconds(300);

        var result = await TestDelivery.Transport(options).DeliverAsync(TestDelivery.Request(Body), CancellationToken.None);

        Assert.True(result.Outcomes[0].Reply.IsTransient);
        Assert.False(result.ReachedServer);
    }

    [Fact]
    public async Task DeliverAsync_SilentServer_WaitsDeliveryTimeoutNotProbeTimeout()
    {
        // A sender with mail in hand waits as long as Delivery:Timeout says; only probes are short.
        using var silent = new SilentServer();
        var options = TestDelivery.Config(silent.HostPort);
        options.Delivery.Timeout = TimeSpan.FromSeconds(1.5);
        options.Delivery.ProbeTimeout = TimeSpan.FromMilliseconds(200);

        var clock = Stopwatch.StartNew();
        var result = await TestDelivery.Transport(options).DeliverAsync(TestDelivery.Request(Body), CancellationToken.None);
        clock.Stop();

        Assert.Equal(SmtpReply.LocalTransient("4.4.1", "127.0.0.1: no greeting within 1.5 s"), result.Outcomes[0].Reply);
        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(1.3), $"gave up after {clock.Elapsed}");
    }

    [Fact]
    public async Task DeliverAsync_Rcpt552MailboxFull_PermanentButTooManyRecipientsIsTransient()
    {
        // RFC 5321 §4.2.2: 552 is a permanent "exceeded storage allocation"; §4.5.3.1.10: the
        // RFC 821 "too many recipients" 552 is to be treated as 452.
        _primary.Reply("full@example.com", 552, "5.2.2 Mailbox full").Reply("extra@example.com", 552, "5.5.3 Too many recipients");

        var result = await Transport().DeliverAsync(TestDelivery.Request(Body, recipients: ["bob@example.com", "full@example.com", "extra@example.com"]), CancellationToken.None);

        Assert.True(result.ReplyFor("bob@example.com").IsSuccess);
        Assert.Equal(new SmtpReply(552, "5.2.2", "Mailbox full"), result.ReplyFor("full@example.com"));
        var extra = result.ReplyFor("extra@example.com");
        Assert.Equal(452, extra.Code);
        Assert.Equal("4.5.3", extra.EnhancedCode);
    }

    [Theory]
    [InlineData("a b@example.com")] // a quoted local part stored without its quotes (before the receiver kept them)
    [InlineData("a..b@example.com")]
    [InlineData("\"a\r\nRSET\"@example.com")] // would end the RCPT line early
    [InlineData("a@example.com.")] // MimeKit drops the dot: a different address would go out
    [InlineData("a(comment)@example.com")]
    public async Task DeliverAsync_UnwritableRecipient_Local553ForItOthersDelivered(string bad)
    {
        var result = await Transport().DeliverAsync(TestDelivery.Request(Body, recipients: ["bob@example.com", bad, "carol@example.com"]), CancellationToken.None);

        Assert.True(result.ReachedServer);
        Assert.False(result.DecidedLocally);
        Assert.True(result.ReplyFor("bob@example.com").IsSuccess);
        Assert.True(result.ReplyFor("carol@example.com").IsSuccess);
        Assert.Equal(new SmtpReply(553, "5.1.3", "Bad recipient address syntax", FromRemote: false), result.ReplyFor(bad));
        Assert.Equal(["bob@example.com", "carol@example.com"], _primary.Messages.Single().AcceptedRecipients);
        Assert.DoesNotContain(_primary.Commands, c => c.StartsWith("RSET", StringComparison.Ordinal));
        Assert.Equal(2, _primary.Commands.Count(c => c.StartsWith("RCPT TO:", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task DeliverAsync_OnlyUnwritableRecipients_DecidedLocallyWithoutConnecting()
    {
        var result = await Transport().DeliverAsync(TestDelivery.Request(Body, recipients: ["a b@example.com", "c..d@example.com"]), CancellationToken.None);

        Assert.True(result.DecidedLocally);
        Assert.False(result.ReachedServer);
        Assert.False(result.Undeliverable);
        Assert.All(result.Outcomes, o => Assert.Equal(new SmtpReply(553, "5.1.3", "Bad recipient address syntax", FromRemote: false), o.Reply));
        Assert.Equal(0, _primary.ConnectionCount);
    }

    [Theory]
    [InlineData("alice smith@sender.org")]
    [InlineData("alice@@sender.org")]
    public async Task DeliverAsync_UnwritableSender_Local553For5_1_7UndeliverableWithoutConnecting(string sender)
    {
        var result = await Transport().DeliverAsync(TestDelivery.Request(Body, sender: sender, recipients: ["bob@example.com", "carol@example.com"]), CancellationToken.None);

        Assert.True(result.Undeliverable);
        Assert.True(result.DecidedLocally);
        Assert.False(result.ReachedServer);
        Assert.All(result.Outcomes, o => Assert.Equal(new SmtpReply(553, "5.1.7", "Bad sender's mailbox address syntax", FromRemote: false), o.Reply));
        Assert.Equal(2, result.Outcomes.Count);
        Assert.Equal(0, _primary.ConnectionCount);
    }

    [Fact]
    public async Task DeliverAsync_QuotedLocalParts_SentExactlyAsStored()
    {
        var result = await Transport().DeliverAsync(
            TestDelivery.Request(Body, sender: "\"alice smith\"@sender.org", recipients: ["\"a b\"@example.test", "\"x\\\"y\"@example.test"]),
            CancellationToken.None);

        Assert.All(result.Outcomes, o => Assert.True(o.Reply.IsSuccess, o.Reply.ToString()));
        Assert.Contains("MAIL FROM:<\"alice smith\"@sender.org>", _primary.Commands.Single(c => c.StartsWith("MAIL ", StringComparison.Ordinal)), StringComparison.Ordinal);
        var rcpts = _primary.Commands.Where(c => c.StartsWith("RCPT ", StringComparison.Ordinal)).ToList();
        Assert.Equal(["RCPT TO:<\"a b\"@example.test>", "RCPT TO:<\"x\\\"y\"@example.test>"], rcpts);
    }

    [Fact]
    public async Task DeliverAsync_OrcptNamingTheRecipient_GoesOutAsTheClientWroteIt()
    {
        // MailKit 4.18.2 derives ORCPT from the RCPT address (docs/how-it-works.md, On the wire); when the
        // client's ORCPT names that same address, what it derives is the client's value.
        await Transport().DeliverAsync(
            TestDelivery.Request(Body, recipients: ["b+x@example.test"], shape: r => new RecipientState { Address = r.Address, Notify = "FAILURE", OriginalRecipient = "rfc822;b+2Bx@example.test" }),
            CancellationToken.None);

        Assert.Equal("RCPT TO:<b+x@example.test> NOTIFY=FAILURE ORCPT=rfc822;b+2Bx@example.test", _primary.Commands.Single(c => c.StartsWith("RCPT ", StringComparison.Ordinal)));
    }
}
