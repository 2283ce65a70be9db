using System.Globalization;
using System.Text;

namespace BackupMx.Smtp.Tests;

/// <summary>SMTPUTF8 (RFC 6531): internationalized addresses are accepted and stored as the client wrote them.</summary>
public sealed class SmtpUtf8Tests
{
    private static readonly string BuecherALabel = new IdnMapping().GetAscii("bücher.test");

    private static async Task<string> Utf8CommandAsync(RawSmtpClient client, string line)
    {
        await client.SendRawAsync(Encoding.UTF8.GetBytes(line + "\r\n"));
        return await client.ReadReplyAsync();
    }

    [Fact]
    public async Task Rcpt_Utf8LocalPartWithSmtpUtf8_StoredAsReceived()
    {
        await using var host = await ReceiverHost.StartAsync();
        await using var client = await host.ConnectAsync();
        await client.CommandAsync("EHLO client.test");

        Assert.StartsWith("250", await Utf8CommandAsync(client, "MAIL FROM:<jösé@bücher.example> SMTPUTF8 BODY=8BITMIME"));
        Assert.StartsWith("250", await Utf8CommandAsync(client, "RCPT TO:<δοκιμή@example.test> NOTIFY=FAILURE"));
        Assert.StartsWith("250", await client.DataAsync("Subject: x\r\n\r\nhi\r\n.\r\n"));

        var record = Assert.Single(await host.RecordsAsync());
        Assert.Equal("jösé@bücher.example", record.Sender);
        Assert.True(record.Parameters.SmtpUtf8);
        var recipient = Assert.Single(record.Recipients);
        Assert.Equal("δοκιμή@example.test", recipient.Address);
        Assert.Equal("FAILURE", recipient.Notify);
    }

    [Fact]
    public async Task Rcpt_ULabelDomainConfiguredAsALabel_Accepted()
    {
        await using var host = await ReceiverHost.StartAsync(new() { ["BackupMx:Domains:2:Name"] = BuecherALabel });
        await using var client = await host.ConnectAsync();
        await client.CommandAsync("EHLO client.test");

        Assert.StartsWith("250", await Utf8CommandAsync(client, "MAIL FROM:<a@remote.test> SMTPUTF8"));
        Assert.StartsWith("250", await Utf8CommandAsync(client, "RCPT TO:<leser@bücher.test>"));
        Assert.StartsWith("250", await client.DataAsync("Subject: x\r\n\r\nhi\r\n.\r\n"));

        var record = Assert.Single(await host.RecordsAsync());
        Assert.Equal("leser@bücher.test", Assert.Single(record.Recipients).Address);
        Assert.Equal(BuecherALabel, record.Domain);
    }

    [Fact]
    public async Task Rcpt_ALabelDomainConfiguredAsULabel_Accepted()
    {
        await using var host = await ReceiverHost.StartAsync(new() { ["BackupMx:Domains:2:Name"] = "bücher.test" });
        await using var client = await host.ConnectAsync();
        await client.CommandAsync("EHLO client.test");

        Assert.StartsWith("250", await client.CommandAsync("MAIL FROM:<a@remote.test>"));
        Assert.StartsWith("250", await client.CommandAsync($"RCPT TO:<leser@{BuecherALabel}>"));
    }

    [Fact]
    public async Task Rcpt_UnconfiguredIdn_RefusedAsRelay()
    {
        await using var host = await ReceiverHost.StartAsync();
        await using var client = await host.ConnectAsync();
        await client.CommandAsync("EHLO client.test");

        Assert.StartsWith("250", await Utf8CommandAsync(client, "MAIL FROM:<a@remote.test> SMTPUTF8"));
        Assert.StartsWith("550 5.7.1", await Utf8CommandAsync(client, "RCPT TO:<leser@bücher.test>"));
    }

    [Fact]
    public async Task Rcpt_Utf8AddressWhenMailHadNoSmtpUtf8_553()
    {
        await using var host = await ReceiverHost.StartAsync();
        await using var client = await host.ConnectAsync();
        await client.CommandAsync("EHLO client.test");

        Assert.StartsWith("250", await client.CommandAsync("MAIL FROM:<a@remote.test>"));
        Assert.StartsWith("553 5.6.7", await Utf8CommandAsync(client, "RCPT TO:<δοκιμή@example.test>"));
    }

    [Fact]
    public async Task Mail_SmtpUtf8WithAsciiAddresses_ParameterKept()
    {
        await using var host = await ReceiverHost.StartAsync();
        await using var client = await host.ConnectAsync();
        await client.CommandAsync("EHLO client.test");

        await client.BeginAsync(mailParameters: " SMTPUTF8");
        Assert.StartsWith("250", await client.DataAsync("Subject: grüße\r\n\r\nhi\r\n.\r\n"));

        Assert.True(Assert.Single(await host.RecordsAsync()).Parameters.SmtpUtf8);
    }

    [Fact]
    public async Task Mail_SmtpUtf8WithAValue_501()
    {
        await using var host = await ReceiverHost.StartAsync();
        await using var client = await host.ConnectAsync();
        await client.CommandAsync("EHLO client.test");

        Assert.StartsWith("501 5.5.4", await client.CommandAsync("MAIL FROM:<a@remote.test> SMTPUTF8=YES"));
    }
}
