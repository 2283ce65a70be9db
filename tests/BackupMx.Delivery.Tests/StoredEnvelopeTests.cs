using System.Text;
using BackupMx.Core.Model;
using BackupMx.Testing;

namespace BackupMx.Delivery.Tests;

/// <summary>The envelope reaches the primary as the client gave it (rule 3), asserted on the primary's side of the conversation.</summary>
public sealed class StoredEnvelopeTests : IAsyncLifetime
{
    private static readonly byte[] Body = TestDelivery.Ascii("From: alice@sender.org\r\nTo: bob@example.com\r\nSubject: hi\r\n\r\nhello\r\n");
    private readonly FakePrimary _primary = new();

    public Task InitializeAsync() => _primary.StartAsync();

    public async Task DisposeAsync() => await _primary.DisposeAsync();

    private MailKitTransport Transport() => TestDelivery.Transport(TestDelivery.Config(_primary.HostPort));

    private IEnumerable<string> Commands(string verb) => _primary.Commands.Where(c => c.StartsWith(verb, StringComparison.Ordinal));

    [Fact]
    public async Task DeliverAsync_OrcptNamingAnotherAddress_PassedOnUnchanged()
    {
        var result = await Transport().DeliverAsync(
            TestDelivery.Request(Body, recipients: ["dave@example.com"], shape: r => new RecipientState { Address = r.Address, Notify = "SUCCESS,FAILURE", OriginalRecipient = "rfc822;orig+2Bdave@example.test" }),
            CancellationToken.None);

        Assert.True(result.ReplyFor("dave@example.com").IsSuccess);
        Assert.Equal(["RCPT TO:<dave@example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;orig+2Bdave@example.test"], Commands("RCPT "));
    }

    [Fact]
    public async Task DeliverAsync_EightBitWithoutMimeHeaders_Body8BitMimeAsStored()
    {
        var body = Encoding.Latin1.GetBytes("From: a@b.c\r\nSubject: no MIME headers\r\n\r\ncaf\u00e9\r\n");

        var result = await Transport().DeliverAsync(TestDelivery.Request(body, parameters: new MailParameters { Body = "8BITMIME" }), CancellationToken.None);

        Assert.True(result.Outcomes[0].Reply.IsSuccess);
        var message = _primary.Messages.Single();
        Assert.Equal("8BITMIME", message.MailParameters["BODY"]);
        Assert.Equal(body, message.Data);
    }

    [Fact]
    public async Task DeliverAsync_PerRecipientNotify_EachRecipientKeepsItsOwn()
    {
        string?[] notify = ["SUCCESS", null, "NEVER", "DELAY,FAILURE"];
        string[] recipients = ["a@example.com", "b@example.com", "c@example.com", "d@example.com"];

        await Transport().DeliverAsync(
            TestDelivery.Request(Body, recipients: recipients, shape: r => new RecipientState { Address = r.Address, Notify = notify[Array.IndexOf(recipients, r.Address)] }),
            CancellationToken.None);

        Assert.Equal(
            [
                "RCPT TO:<a@example.com> NOTIFY=SUCCESS ORCPT=rfc822;a@example.com",
                "RCPT TO:<b@example.com>",
                "RCPT TO:<c@example.com> NOTIFY=NEVER ORCPT=rfc822;c@example.com",
                "RCPT TO:<d@example.com> NOTIFY=DELAY,FAILURE ORCPT=rfc822;d@example.com",
            ],
            Commands("RCPT "));
    }

    [Fact]
    public async Task DeliverAsync_AllMailParameters_OneMailCommandInTheirOrder()
    {
        var parameters = new MailParameters { Body = "8BITMIME", Ret = "FULL", EnvelopeId = "QQ314159", DeclaredSize = 10 };

        await Transport().DeliverAsync(TestDelivery.Request(Body, parameters: parameters), CancellationToken.None);

        // SIZE is the stored length (our Received header included), not what the client declared.
        Assert.Equal([$"MAIL FROM:<alice@sender.org> SIZE={Body.Length} BODY=8BITMIME RET=FULL ENVID=QQ314159"], Commands("MAIL "));
    }

    [Fact]
    public async Task DeliverAsync_SmtpUtf8ToServerOfferingIt_AddressesAndParameterAsStored()
    {
        _primary.AdvertiseSmtpUtf8 = true;
        var body = Encoding.UTF8.GetBytes("From: jösé@bücher.example\r\nSubject: grüße\r\n\r\nhallo\r\n");

        var result = await Transport().DeliverAsync(
            TestDelivery.Request(body, sender: "jösé@bücher.example", recipients: ["δοκιμή@example.com", "bob@example.com"], parameters: new MailParameters { SmtpUtf8 = true, Body = "8BITMIME" }),
            CancellationToken.None);

        Assert.All(result.Outcomes, o => Assert.True(o.Reply.IsSuccess, o.Reply.ToString()));
        Assert.Equal([$"MAIL FROM:<jösé@bücher.example> SMTPUTF8 SIZE={body.Length} BODY=8BITMIME"], Commands("MAIL "));
        Assert.Equal(["RCPT TO:<δοκιμή@example.com>", "RCPT TO:<bob@example.com>"], Commands("RCPT "));
        Assert.Equal(body, _primary.Messages.Single().Data);
    }

    [Fact]
    public async Task DeliverAsync_Utf8RecipientToServerWithoutSmtpUtf8_ThatRecipientFails567OthersDelivered()
    {
        var result = await Transport().DeliverAsync(
            TestDelivery.Request(Body, recipients: ["δοκιμή@example.com", "bob@example.com"], parameters: new MailParameters { SmtpUtf8 = true }),
            CancellationToken.None);

        var refused = result.ReplyFor("δοκιμή@example.com");
        Assert.True(refused.IsPermanent);
        Assert.Equal("5.6.7", refused.EnhancedCode);
        Assert.True(result.ReplyFor("bob@example.com").IsSuccess);
        Assert.Equal(["bob@example.com"], _primary.Messages.Single().AcceptedRecipients);
        Assert.DoesNotContain("SMTPUTF8", Commands("MAIL ").Single(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task DeliverAsync_Utf8HeadersToServerWithoutSmtpUtf8_EveryRecipientFails567()
    {
        var body = Encoding.UTF8.GetBytes("From: alice@sender.org\r\nSubject: grüße\r\n\r\nhallo\r\n");

        var result = await Transport().DeliverAsync(TestDelivery.Request(body, parameters: new MailParameters { SmtpUtf8 = true, Body = "8BITMIME" }), CancellationToken.None);

        Assert.Equal("5.6.7", result.ReplyFor("bob@example.com").EnhancedCode);
        Assert.True(result.ReplyFor("bob@example.com").IsPermanent);
        Assert.Empty(Commands("MAIL "));
    }

    [Fact]
    public async Task DeliverAsync_EightBitToServerWithout8BitMime_DeferredWithAClearError()
    {
        _primary.Advertise8BitMime = false;
        var body = Encoding.Latin1.GetBytes("From: a@b.c\r\n\r\ncaf\u00e9\r\n");

        var result = await Transport().DeliverAsync(TestDelivery.Request(body, parameters: new MailParameters { Body = "8BITMIME" }), CancellationToken.None);

        var reply = result.ReplyFor("bob@example.com");
        Assert.True(reply.IsTransient);
        Assert.Equal("4.6.3", reply.EnhancedCode);
        Assert.Contains("8BITMIME", reply.Text, StringComparison.Ordinal);
        Assert.Empty(_primary.Messages);
    }

    [Fact]
    public async Task DeliverAsync_Declared8BitButSevenBitDataToServerWithout8BitMime_SentWithoutBody()
    {
        _primary.Advertise8BitMime = false;

        var result = await Transport().DeliverAsync(TestDelivery.Request(Body, parameters: new MailParameters { Body = "8BITMIME" }), CancellationToken.None);

        Assert.True(result.ReplyFor("bob@example.com").IsSuccess);
        Assert.False(_primary.Messages.Single().MailParameters.ContainsKey("BODY"));
    }

    [Fact]
    public async Task DeliverAsync_530ToRecipient_ThatReplyNotConnectionLost()
    {
        _primary.Reply("locked@example.com", 530, "5.7.0 Authentication required");

        var result = await Transport().DeliverAsync(TestDelivery.Request(Body, recipients: ["locked@example.com", "bob@example.com"]), CancellationToken.None);

        Assert.Equal(new SmtpReply(530, "5.7.0", "Authentication required"), result.ReplyFor("locked@example.com"));
        Assert.True(result.ReplyFor("bob@example.com").IsSuccess);
    }

    [Fact]
    public async Task DeliverAsync_530AfterData_ThatReplyNotConnectionLost()
    {
        _primary.DataReply = new FakeReply(530, "5.7.0 Authentication required");

        var result = await Transport().DeliverAsync(TestDelivery.Request(Body), CancellationToken.None);

        Assert.Equal(new SmtpReply(530, "5.7.0", "Authentication required"), result.ReplyFor("bob@example.com"));
    }

    [Fact]
    public async Task DeliverAsync_BodyWithDotLinesAndBareLf_EveryLineStartDotStuffed()
    {
        // The bare-LF line "." must not end the data at a server that takes LF as a line end.
        var body = TestDelivery.Ascii("Subject: x\r\n\r\n.one\r\nx\n.\r\nend\r\n");

        await Transport().DeliverAsync(TestDelivery.Request(body), CancellationToken.None);

        Assert.Equal(body, _primary.Messages.Single().Data);
    }
}
