namespace BackupMx.Smtp.Tests;

/// <summary>
/// Every kind of line the session input answers or rewrites itself, split across two TCP segments
/// at every byte position, with the next command in the second segment: SmtpServer must only ever
/// see whole lines, whatever the segmentation.
/// </summary>
public sealed class SplitLineTests
{
    public static TheoryData<string, bool> Lines => new()
    {
        // The line, and whether it needs a transaction (MAIL given) first.
        { "RCPT TO:<postmaster>", true },
        { "RCPT TO:<Postmaster> NOTIFY=NEVER", true },
        { "VRFY someone", false },
        { "VRFY", false },
        { "ETRN example.test", false },
        { "NOOP with an argument", false },
        { "MAIL FROM:<a@remote.test> SIZE=10 SIZE=20", false },
        { "RCPT TO:<u@example.test> FOO=bar", true },
        { "MAIL FROM:<\u00fc@remote.test>", false },
        { "RCPT TO:<\"a\\q\"@example.test>", true },
        { "RCPT TO:<\"a\\\"\"@example.test>", true },
        { "RCPT TO:<u@example.test.>", true },
        { "NOOP " + new string('x', 600), false },
        { "RCPT TO:<u@example.test>", true },
    };

    [Theory]
    [MemberData(nameof(Lines))]
    public async Task Line_SplitAtEveryByte_SameReplyAndSessionGoesOn(string line, bool inTransaction)
    {
        await using var host = await ReceiverHost.StartAsync(new() { ["BackupMx:Smtp:MaxCommandsPerSession"] = "100000" });
        await using var client = await host.ConnectAsync();
        Assert.StartsWith("250", await client.CommandAsync("EHLO client.test"));

        await SetUpAsync(client, inTransaction);
        var expected = Code(await client.CommandAsync(line));
        Assert.StartsWith("250", await client.CommandAsync("NOOP"));

        var bytes = System.Text.Encoding.Latin1.GetBytes(line + "\r\n");
        for (var cut = 1; cut < bytes.Length; cut++)
        {
            await SetUpAsync(client, inTransaction);
            await client.SendRawAsync(bytes[..cut]);

            // Long enough for the server to read the first segment on its own.
            await Task.Delay(5);
            await client.SendRawAsync([.. bytes[cut..], .. "NOOP\r\n"u8]);
            var reply = await client.TryReadReplyAsync();
            Assert.True(reply is not null, $"connection closed after a split at {cut}");
            Assert.Equal(expected, Code(reply));
            Assert.StartsWith("250", await client.ReadReplyAsync());
        }
    }

    [Fact]
    public async Task CommandLimit_LastLineSplitAtEveryByte_421()
    {
        await using var host = await ReceiverHost.StartAsync(new() { ["BackupMx:Smtp:MaxCommandsPerSession"] = "10" });
        var bytes = "NOOP\r\n"u8.ToArray();
        for (var cut = 1; cut < bytes.Length; cut++)
        {
            await using var client = await host.ConnectAsync();
            for (var i = 0; i < 10; i++)
            {
                Assert.StartsWith("250", await client.CommandAsync("NOOP"));
            }

            await client.SendRawAsync(bytes[..cut]);
            await Task.Delay(5);
            await client.SendRawAsync(bytes[cut..]);
            Assert.StartsWith("421 4.7.0 ", await client.ReadReplyAsync());
            Assert.Null(await client.TryReadReplyAsync());
        }
    }

    private static async Task SetUpAsync(RawSmtpClient client, bool inTransaction)
    {
        Assert.StartsWith("250", await client.CommandAsync("RSET"));
        if (inTransaction)
        {
            Assert.StartsWith("250", await client.CommandAsync("MAIL FROM:<a@remote.test>"));
        }
    }

    // The code and the enhanced code: the text may say more (ETRN counts).
    private static string Code(string? reply) => reply is null ? "(closed)" : reply.Split(' ')[0] + (reply.Length > 4 && char.IsAsciiDigit(reply[4]) ? " " + reply.Split(' ')[1] : string.Empty);
}
