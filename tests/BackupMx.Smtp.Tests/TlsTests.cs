using System.Security.Authentication;
using MailKit.Security;
using MimeKit;

namespace BackupMx.Smtp.Tests;

public sealed class TlsTests
{
    private static List<string> Extensions(string ehloReply) => ehloReply.Split('\n').Skip(1).Select(l => l[4..]).ToList();

    [Fact]
    public async Task Ehlo_CertificateConfigured_OffersStartTlsButNotAuth()
    {
        using var certificate = new TestCertificate();
        await using var host = await ReceiverHost.StartAsync(certificate.Settings());
        await using var client = await host.ConnectAsync();

        var extensions = Extensions(await client.CommandAsync("EHLO client.test"));

        Assert.Contains("STARTTLS", extensions);
        Assert.DoesNotContain(extensions, e => e.StartsWith("AUTH", StringComparison.Ordinal));
    }

    [Fact]
    public async Task StartTls_Handshake_SecureSessionWithoutAuthOrSecondStartTls()
    {
        using var certificate = new TestCertificate();
        await using var host = await ReceiverHost.StartAsync(certificate.Settings());
        await using var client = await host.ConnectAsync();
        await client.CommandAsync("EHLO client.test");

        Assert.StartsWith("220", await client.CommandAsync("STARTTLS"));
        await client.UpgradeToTlsAsync();
        Assert.True(client.TlsProtocol >= SslProtocols.Tls12, client.TlsProtocol.ToString());

        var extensions = Extensions(await client.CommandAsync("EHLO client.test"));
        Assert.DoesNotContain("STARTTLS", extensions);
        Assert.DoesNotContain(extensions, e => e.StartsWith("AUTH", StringComparison.Ordinal));
        Assert.Contains("ETRN", extensions);
        Assert.StartsWith("502 5.5.1", await client.CommandAsync("AUTH PLAIN AGZvbwBiYXI="));
        Assert.StartsWith("5", await client.CommandAsync("STARTTLS"));

        Assert.StartsWith("250", await client.CommandAsync("MAIL FROM:<a@remote.test>"));
        Assert.StartsWith("250", await client.CommandAsync("RCPT TO:<user@example.test>"));
        Assert.StartsWith("250", await client.DataAsync("Subject: tls\r\n\r\nsecret\r\n.\r\n"));

        var record = Assert.Single(await host.RecordsAsync());
        var stored = System.Text.Encoding.Latin1.GetString(host.Bodies.Get(record.QueueId));
        Assert.Contains("with ESMTPS", stored[..stored.IndexOf("\r\nSubject:", StringComparison.Ordinal)]);
    }

    [Fact]
    public async Task StartTls_CommandPipelinedInSamePacket_DiscardedNotAnswered()
    {
        using var certificate = new TestCertificate();
        await using var host = await ReceiverHost.StartAsync(certificate.Settings());
        await using var client = await host.ConnectAsync();
        await client.CommandAsync("EHLO client.test");

        // CVE-2011-0411: a man in the middle appends plain text behind STARTTLS.
        await client.SendRawAsync("STARTTLS\r\nRSET\r\n");
        Assert.StartsWith("220", await client.ReadReplyAsync());
        await client.UpgradeToTlsAsync();

        // Had RSET survived the handshake, its 250 would be the first reply inside TLS.
        Assert.StartsWith("5", await client.CommandAsync("XYZZY"));
        Assert.StartsWith("250", await client.CommandAsync("NOOP"));
    }

    [Fact]
    public async Task StartTls_Tls11Client_HandshakeFails()
    {
        using var certificate = new TestCertificate();
        await using var host = await ReceiverHost.StartAsync(certificate.Settings());
        await using var client = await host.ConnectAsync();
        await client.CommandAsync("EHLO client.test");
        Assert.StartsWith("220", await client.CommandAsync("STARTTLS"));

#pragma warning disable SYSLIB0039 // An obsolete protocol on purpose: the server must refuse it.
        await Assert.ThrowsAnyAsync<Exception>(() => client.UpgradeToTlsAsync(SslProtocols.Tls11));
#pragma warning restore SYSLIB0039
    }

    [Fact]
    public async Task MailKit_StartTls_MessageMarkedSecure()
    {
        using var certificate = new TestCertificate();
        await using var host = await ReceiverHost.StartAsync(certificate.Settings());
        var message = new MimeMessage();
        message.From.Add(MailboxAddress.Parse("sender@remote.test"));
        message.To.Add(MailboxAddress.Parse("user@example.test"));
        message.Subject = "over tls";
        message.Body = new TextPart("plain") { Text = "hello\r\n" };

        using (var smtp = new MailKit.Net.Smtp.SmtpClient { LocalDomain = "client.test" })
        {
            smtp.ServerCertificateValidationCallback = (_, _, _, _) => true;
            await smtp.ConnectAsync("127.0.0.1", host.Port, SecureSocketOptions.StartTls);
            Assert.True(smtp.IsSecure);
            await smtp.SendAsync(message);
            await smtp.DisconnectAsync(true);
        }

        var record = Assert.Single(await host.RecordsAsync());
        Assert.Equal("client.test", record.HeloName);
        Assert.Contains("ESMTPS", System.Text.Encoding.Latin1.GetString(host.Bodies.Get(record.QueueId)));
    }

    [Fact]
    public async Task StartTls_Configured_NotRequiredOfClients()
    {
        using var certificate = new TestCertificate();
        await using var host = await ReceiverHost.StartAsync(certificate.Settings());
        await using var client = await host.ConnectAsync();

        // RFC 3207 §4: a publicly-referenced server must not require TLS.
        await client.BeginAsync();
        Assert.StartsWith("250", await client.DataAsync("Subject: plain\r\n\r\nx\r\n.\r\n"));
        Assert.Contains("with ESMTP ", System.Text.Encoding.Latin1.GetString(host.Bodies.Get(Assert.Single(await host.RecordsAsync()).QueueId)));
    }
}
