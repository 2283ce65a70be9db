using BackupMx.Testing;
using MimeKit;
using MimeKit.Cryptography;
using Org.BouncyCastle.Crypto;
using Org.BouncyCastle.Crypto.Generators;
using Org.BouncyCastle.Security;

namespace BackupMx.EndToEnd.Tests;

[Collection(EndToEndCollection.Name)]
public sealed class DkimTests
{
    [Theory]
    [InlineData(DkimCanonicalizationAlgorithm.Simple)]
    [InlineData(DkimCanonicalizationAlgorithm.Relaxed)]
    public async Task DkimSignedMessage_SpooledWhilePrimaryDown_StillVerifiesAtThePrimary(DkimCanonicalizationAlgorithm canonicalization)
    {
        var generator = new RsaKeyPairGenerator();
        generator.Init(new KeyGenerationParameters(new SecureRandom(), 2048));
        var keys = generator.GenerateKeyPair();

        var message = new MimeMessage();
        message.From.Add(new MailboxAddress("Alice", "alice@sender.test"));
        message.To.Add(new MailboxAddress("Bob", "bob@example.test"));
        message.Subject = "A signed message with a subject long enough that a careless relay would fold it somewhere else";
        message.Date = new DateTimeOffset(2026, 11, 27, 12, 0, 0, TimeSpan.Zero);
        message.Body = new TextPart("plain")
        {
            Text = ".a dot line\r\ncaf\u00e9 au lait   \r\n\tindented\r\n" + new string('y', 900) + "\r\n",
            ContentTransferEncoding = ContentEncoding.EightBit,
        };
        var signer = new DkimSigner(keys.Private, "sender.test", "sel")
        {
            HeaderCanonicalizationAlgorithm = canonicalization,
            BodyCanonicalizationAlgorithm = canonicalization,
        };
        var format = FormatOptions.Default.Clone();
        format.NewLineFormat = NewLineFormat.Dos;
        signer.Sign(format, message, [HeaderId.From, HeaderId.To, HeaderId.Subject, HeaderId.Date]);
        using var buffer = new MemoryStream();
        await message.WriteToAsync(format, buffer);
        var signed = buffer.ToArray();
        Assert.True(await VerifyAsync(signed, keys.Public), "the test message must verify before it is sent");

        using var spool = new TempFolder();
        await using var primary = new FakePrimary();
        await primary.StartAsync();
        await primary.StopAsync();
        var time = new TimerAwareTimeProvider(DateTimeOffset.UtcNow);
        await using var relay = await RelayHost.StartAsync(spool.Path, primary.Port, time, extraArgs: BacklogTests.ProbeIntervalArg);

        var result = await SmtpSender.SendAsync(relay.SmtpPort, "alice@sender.test", ["bob@example.test"], signed, "BODY=8BITMIME");
        Assert.True(result.Accepted, result.DataReply);

        // The first attempt may still be failing when the probe flushes the domain; it is then due
        // again as soon as it has failed, not on its retry 5 minutes of fake time away.
        await time.WaitForTimerAsync(BacklogTests.ProbeInterval, 0);
        await primary.StartAsync();
        time.Advance(BacklogTests.ProbeInterval);
        var received = Assert.Single(await primary.WaitForMessagesAsync(1, TimeSpan.FromSeconds(30)));

        var (_, original) = Messages.SplitReceived(received.Data);
        Assert.Equal(signed, original);
        Assert.True(await VerifyAsync(received.Data, keys.Public), "the DKIM signature must still verify at the primary");
    }

    private static async Task<bool> VerifyAsync(byte[] data, AsymmetricKeyParameter publicKey)
    {
        using var message = await MimeMessage.LoadAsync(new MemoryStream(data));
        var signature = message.Headers[message.Headers.IndexOf(HeaderId.DkimSignature)];
        return await new DkimVerifier(new TestKeyLocator(publicKey)).VerifyAsync(message, signature);
    }

    private sealed class TestKeyLocator(AsymmetricKeyParameter key) : DkimPublicKeyLocatorBase
    {
        public override AsymmetricKeyParameter LocatePublicKey(string methods, string domain, string selector, CancellationToken cancellationToken = default) => key;

        public override Task<AsymmetricKeyParameter> LocatePublicKeyAsync(string methods, string domain, string selector, CancellationToken cancellationToken = default) => Task.FromResult(key);
    }
}
