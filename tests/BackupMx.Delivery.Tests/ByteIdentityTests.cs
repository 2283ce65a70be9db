using System.Text;
using BackupMx.Core.Model;
using BackupMx.Testing;
using MimeKit;
using MimeKit.Cryptography;
using Org.BouncyCastle.Crypto;
using Org.BouncyCastle.Crypto.Generators;
using Org.BouncyCastle.Security;

namespace BackupMx.Delivery.Tests;

/// <summary>Rule 3: the primary receives exactly the bytes we stored.</summary>
public sealed class ByteIdentityTests
{
    private static readonly string LongWord = new('x', 1200);

    public static TheoryData<string, string> TrickyMessages => new()
    {
        {
            "folded and long headers",
            "Received: from a.example (a.example [192.0.2.1])\r\n\tby b.example with ESMTP id 1234;\r\n\tMon, 1 Jan 2024 00:00:00 +0000\r\n" +
            "From: Alice <alice@sender.org>\r\nTo: bob@example.com\r\nSubject: =?UTF-8?B?w6lsw6h2ZQ==?= and a very long subject that goes on and on and on past seventy-eight characters without folding\r\n" +
            $"X-Long: {LongWord}\r\nX-Folded:  a\r\n    b\r\n\tc\r\nX-Trailing-Space: value   \r\n\r\nbody\r\n"
        },
        {
            "8-bit body without declaration",
            "From: alice@sender.org\r\nTo: bob@example.com\r\nSubject: 8bit\r\n\r\ncaf\u00e9 \u00fcber na\u00efve\r\n\u00ff\u00fe\r\n"
        },
        {
            "8-bit declared, long body line",
            "From: alice@sender.org\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" +
            $"caf\u00e9\r\n{LongWord}\r\n"
        },
        {
            "Bcc, Resent-Bcc and Content-Length headers",
            "From: alice@sender.org\r\nTo: bob@example.com\r\nBcc: carol@example.com\r\nResent-Bcc: dave@example.com\r\nContent-Length: 6\r\nSubject: hidden\r\n\r\nbody\r\n"
        },
        {
            "dot lines",
            "From: alice@sender.org\r\nSubject: dots\r\n\r\n.\r\n..\r\n.leading dot\r\n. \r\nend\r\n"
        },
        {
            "multipart with preamble and odd boundaries",
            "From: alice@sender.org\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"=_b\"\r\n\r\npreamble\r\n--=_b\r\nContent-Type: text/plain\r\n\r\nline one  \r\n\r\n--=_b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAEC\r\nAwQF\r\n--=_b--\r\nepilogue\r\n"
        },
        {
            "quoted-printable soft breaks",
            "From: alice@sender.org\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nsoft=\r\nbreak =C3=A9=20\r\n"
        },
    };

    [Theory]
    [MemberData(nameof(TrickyMessages))]
    public async Task DeliverAsync_TrickyMessage_ArrivesByteIdentical(string name, string text)
    {
        var body = Encoding.Latin1.GetBytes(text);
        var received = await DeliverAsync(body);
        Assert.True(body.AsSpan().SequenceEqual(received), $"{name}: bytes changed on the way");
    }

    [Fact]
    public async Task DeliverAsync_NonSeekableBody_ArrivesByteIdentical()
    {
        var body = Encoding.Latin1.GetBytes("From: a@b.c\r\nSubject: blob\r\n\r\n.x\r\ncaf\u00e9\r\n");
        await using var primary = new FakePrimary();
        await primary.StartAsync();
        var result = await TestDelivery.Transport(TestDelivery.Config(primary.HostPort)).DeliverAsync(TestDelivery.Request(body, seekable: false), CancellationToken.None);
        Assert.True(result.Outcomes[0].Reply.IsSuccess, result.Outcomes[0].Reply.ToString());
        Assert.Equal(body, primary.Messages.Single().Data);
    }

    [Fact]
    public async Task DeliverAsync_NoFinalCrLf_OnlyTheEndOfDataLineBreakIsAdded()
    {
        // DATA must end with CRLF "." CRLF (RFC 5321 §4.1.1.4), so a message without a final
        // line break can only arrive with one added; nothing else may change.
        var body = Encoding.ASCII.GetBytes("From: a@b.c\r\nSubject: x\r\n\r\nno newline at the end");
        var received = await DeliverAsync(body);
        Assert.Equal([.. body, (byte)'\r', (byte)'\n'], received);
    }

    [Fact]
    public async Task DeliverAsync_DkimSignedMessage_StillVerifiesAtThePrimary()
    {
        var generator = new RsaKeyPairGenerator();
        generator.Init(new KeyGenerationParameters(new SecureRandom(), 2048));
        var keys = generator.GenerateKeyPair();

        var message = new MimeMessage();
        message.From.Add(new MailboxAddress("Alice", "alice@sender.org"));
        message.To.Add(new MailboxAddress("Bob", "bob@example.com"));
        message.Subject = "Signed, with a subject long enough that a careless relay would refold it somewhere";
        message.Date = new DateTimeOffset(2024, 1, 1, 0, 0, 0, TimeSpan.Zero);
        message.Body = new TextPart("plain") { Text = ".a dot line\r\ncaf\u00e9 au lait\r\n" + LongWord + "\r\n", ContentTransferEncoding = ContentEncoding.EightBit };
        var signer = new DkimSigner(keys.Private, "sender.org", "test")
        {
            HeaderCanonicalizationAlgorithm = DkimCanonicalizationAlgorithm.Simple,
            BodyCanonicalizationAlgorithm = DkimCanonicalizationAlgorithm.Simple,
        };
        var format = FormatOptions.Default.Clone();
        format.NewLineFormat = NewLineFormat.Dos;
        signer.Sign(format, message, [HeaderId.From, HeaderId.To, HeaderId.Subject, HeaderId.Date]);
        using var stored = new MemoryStream();
        await message.WriteToAsync(format, stored);
        var body = stored.ToArray();
        Assert.True(await VerifyAsync(body, keys.Public), "the test message must verify before it is sent");

        var received = await DeliverAsync(body);

        Assert.Equal(body, received);
        Assert.True(await VerifyAsync(received, keys.Public));
    }

    private static async Task<bool> VerifyAsync(byte[] data, AsymmetricKeyParameter publicKey)
    {
        using var message = await MimeMessage.LoadAsync(new MemoryStream(data));
        var signature = message.Headers[message.Headers.IndexOf(HeaderId.DkimSignature)];
        return await new DkimVerifier(new TestKeyLocator(publicKey)).VerifyAsync(message, signature);
    }

    private static async Task<byte[]> DeliverAsync(byte[] body)
    {
        await using var primary = new FakePrimary();
        await primary.StartAsync();
        var transport = TestDelivery.Transport(TestDelivery.Config(primary.HostPort));
        var result = await transport.DeliverAsync(TestDelivery.Request(body, parameters: new MailParameters { Body = "8BITMIME" }), CancellationToken.None);
        Assert.True(result.Outcomes[0].Reply.IsSuccess, result.Outcomes[0].Reply.ToString());
        return primary.Messages.Single().Data;
    }

    private sealed class TestKeyLocator(AsymmetricKeyParameter key) : DkimPublicKeyLocatorBase
    {
        public override AsymmetricKeyParameter LocatePublicKey(string methods, string domain, string selector, CancellationToken cancellationToken = default) => key;

        public override Task<AsymmetricKeyParameter> LocatePublicKeyAsync(string methods, string domain, string selector, CancellationToken cancellationToken = default) => Task.FromResult(key);
    }
}
