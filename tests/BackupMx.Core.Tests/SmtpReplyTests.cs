using BackupMx.Core.Configuration;
using BackupMx.Core.Model;

namespace BackupMx.Core.Tests;

public sealed class SmtpReplyTests
{
    [Theory]
    [InlineData(250, "2.0.0 Ok: queued", "2.0.0", "Ok: queued")]
    [InlineData(550, "5.1.1 <bob@x>: no such user", "5.1.1", "<bob@x>: no such user")]
    [InlineData(451, "4.7.1 Try later", "4.7.1", "Try later")]
    [InlineData(550, "no enhanced code", null, "no enhanced code")]
    [InlineData(550, "4.1.1 class does not match", null, "4.1.1 class does not match")]
    [InlineData(421, "", null, "")]
    public void Parse_TakesEnhancedCodeOnlyWhenItMatchesTheClass(int code, string text, string? enhanced, string rest)
    {
        var reply = SmtpReply.Parse(code, text);
        Assert.Equal(code, reply.Code);
        Assert.Equal(enhanced, reply.EnhancedCode);
        Assert.Equal(rest, reply.Text);
    }

    [Theory]
    [InlineData(250, true, false, false, "2.0.0")]
    [InlineData(421, false, true, false, "4.0.0")]
    [InlineData(452, false, true, false, "4.0.0")]
    [InlineData(550, false, false, true, "5.0.0")]
    [InlineData(554, false, false, true, "5.0.0")]
    public void Classification_FollowsTheFirstDigit(int code, bool success, bool transient, bool permanent, string status)
    {
        var reply = SmtpReply.Parse(code, "text");
        Assert.Equal(success, reply.IsSuccess);
        Assert.Equal(transient, reply.IsTransient);
        Assert.Equal(permanent, reply.IsPermanent);
        Assert.Equal(status, reply.StatusCode);
    }

    [Fact]
    public void ToString_IncludesCodeEnhancedCodeAndText()
    {
        Assert.Equal("550 5.1.1 no such user", new SmtpReply(550, "5.1.1", "no such user").ToString());
        Assert.Equal("421 bye", new SmtpReply(421, null, "bye").ToString());
    }

    [Theory]
    [InlineData("mx.example.test", 25, "mx.example.test", 25)]
    [InlineData("mx.example.test:2526", 25, "mx.example.test", 2526)]
    [InlineData("127.0.0.1:2526", 25, "127.0.0.1", 2526)]
    [InlineData("[::1]:2526", 25, "::1", 2526)]
    [InlineData("::1", 587, "::1", 587)]
    public void HostPort_TryParse_Valid(string text, int defaultPort, string host, int port)
    {
        Assert.True(HostPort.TryParse(text, defaultPort, out var parsed));
        Assert.Equal(new HostPort(host, port), parsed);
    }

    [Theory]
    [InlineData("")]
    [InlineData("host:")]
    [InlineData("host:0")]
    [InlineData("host:70000")]
    [InlineData("[::1")]
    [InlineData("bad host:25")]
    public void HostPort_TryParse_Invalid(string text)
    {
        Assert.False(HostPort.TryParse(text, 25, out _));
    }

    [Fact]
    public void QueueId_New_IsValidSortableAndUnique()
    {
        var t = new DateTimeOffset(2026, 11, 27, 12, 0, 0, TimeSpan.Zero);
        var ids = Enumerable.Range(0, 1000).Select(i => QueueId.New(t.AddMilliseconds(i))).ToList();
        Assert.All(ids, id => Assert.True(QueueId.IsValid(id)));
        Assert.Equal(ids, ids.Order(StringComparer.Ordinal));
        Assert.Equal(ids.Count, ids.Distinct().Count());
        Assert.False(QueueId.IsValid("../../etc/passwd"));
        Assert.False(QueueId.IsValid("short"));
    }
}
