using System.Net.Sockets;
using System.Text;
using BackupMx.Testing;

namespace BackupMx.Delivery.Tests;

public sealed class FakePrimaryTests
{
    private static async Task<string> ReadReplyAsync(StreamReader reader)
    {
        var text = new StringBuilder();
        while (true)
        {
            var line = await reader.ReadLineAsync() ?? throw new IOException("closed");
            text.AppendLine(line);
            if (line.Length < 4 || line[3] == ' ')
            {
                return text.ToString();
            }
        }
    }

    [Fact]
    public async Task Data_RawClient_RecordsWireBytesAfterDotUnstuffing()
    {
        await using var primary = new FakePrimary();
        await primary.StartAsync();
        using var client = new TcpClient();
        await client.ConnectAsync(primary.Host, primary.Port);
        var stream = client.GetStream();
        using var reader = new StreamReader(stream, Encoding.ASCII);
        async Task SendAsync(string s) => await stream.WriteAsync(Encoding.Latin1.GetBytes(s));

        Assert.StartsWith("220", await ReadReplyAsync(reader));
        await SendAsync("EHLO client.test\r\n");
        Assert.Contains("DSN", await ReadReplyAsync(reader));
        await SendAsync("MAIL FROM:<> BODY=8BITMIME ENVID=abc+2Bdef\r\n");
        Assert.StartsWith("250", await ReadReplyAsync(reader));
        await SendAsync("RCPT TO:<bob@example.com> NOTIFY=FAILURE ORCPT=rfc822;bob@example.com\r\n");
        Assert.StartsWith("250", await ReadReplyAsync(reader));
        await SendAsync("DATA\r\n");
        Assert.StartsWith("354", await ReadReplyAsync(reader));

        // A first line with a stuffed dot, a dot line, 8-bit bytes, trailing spaces and a bare LF.
        await SendAsync("..first\r\nSubject: x  \r\n\r\n..\r\n...two\r\ncaf\u00e9 \t\r\nbare\nend\r\n.\r\n");
        Assert.StartsWith("250", await ReadReplyAsync(reader));

        var message = Assert.Single(await primary.WaitForMessagesAsync(1, TimeSpan.FromSeconds(5)));
        Assert.Equal(Encoding.Latin1.GetBytes(".first\r\nSubject: x  \r\n\r\n.\r\n..two\r\ncaf\u00e9 \t\r\nbare\nend\r\n"), message.Data);
        Assert.Equal(string.Empty, message.MailFrom);
        Assert.Equal("abc+2Bdef", message.MailParameters["ENVID"]);
        Assert.Equal("FAILURE", message.Recipients[0].Parameters["NOTIFY"]);
        Assert.Equal("client.test", message.HeloName);
    }

    [Fact]
    public async Task StopAsync_ThenStartAsync_RefusesThenAcceptsOnTheSamePort()
    {
        await using var primary = new FakePrimary();
        await primary.StartAsync();
        var port = primary.Port;
        await primary.StopAsync();

        using (var refused = new TcpClient())
        {
            await Assert.ThrowsAnyAsync<SocketException>(() => refused.ConnectAsync(primary.Host, port));
        }

        await primary.StartAsync();
        Assert.Equal(port, primary.Port);
        using var accepted = new TcpClient();
        await accepted.ConnectAsync(primary.Host, port);
        using var reader = new StreamReader(accepted.GetStream(), Encoding.ASCII);
        Assert.StartsWith("220", await reader.ReadLineAsync());
    }

    [Fact]
    public async Task WaitForMessagesAsync_NothingArrives_ThrowsTimeout()
    {
        await using var primary = new FakePrimary();
        await primary.StartAsync();
        await Assert.ThrowsAsync<TimeoutException>(() => primary.WaitForMessagesAsync(1, TimeSpan.FromMilliseconds(100)));
    }
}
