using BackupMx.Smtp.Protocol;

namespace BackupMx.Smtp.Tests;

public sealed class EnvelopeLineTests
{
    [Theory]
    [InlineData("MAIL FROM:<a@remote.test>\r\n", "Mail", "a@remote.test", "")]
    [InlineData("mail from:<> SIZE=10 body=8BITMIME\r\n", "Mail", "", "SIZE=10 body=8BITMIME")]
    [InlineData("MAIL FROM: <a@remote.test>  RET=HDRS ", "Mail", "a@remote.test", "RET=HDRS")]
    [InlineData("RCPT TO:<\"a> b NOTIFY=NEVER\"@example.test> NOTIFY=SUCCESS", "Rcpt", "\"a> b NOTIFY=NEVER\"@example.test", "NOTIFY=SUCCESS")]
    [InlineData("RCPT TO:<\"q\\\"> x\"@example.test> ORCPT=rfc822;a>b", "Rcpt", "\"q\\\"> x\"@example.test", "ORCPT=rfc822;a>b")]
    [InlineData("RCPT TO:<@relay.test:u@example.test> NOTIFY", "Rcpt", "@relay.test:u@example.test", "NOTIFY=")]
    public void Parse_Line_PathAndParametersAfterIt(string line, string verb, string path, string parameters)
    {
        var parsed = EnvelopeLine.Parse(line);

        Assert.NotNull(parsed);
        Assert.Equal(Enum.Parse<EnvelopeVerb>(verb), parsed.Verb);
        Assert.Equal(path, parsed.Path);
        Assert.Equal(EnvelopeLineProblem.None, parsed.Problem);
        Assert.Equal(parameters, string.Join(' ', parsed.Parameters.Select(p => p.Key + "=" + p.Value)));
    }

    [Theory]
    [InlineData("MAIL FROM:<a@remote.test> SIZE=1 size=2", "RepeatedParameter")]
    [InlineData("MAIL FROM:<a@remote.test> FOO=1 FOO=2", "RepeatedParameter")]
    [InlineData("MAIL FROM:<a@remote.test> FOO=1 SIZE=1 SIZE=1", "RepeatedParameter")]
    [InlineData("RCPT TO:<u@example.test> NOTIFY NOTIFY=NEVER", "RepeatedParameter")]
    [InlineData("MAIL FROM:<a@remote.test> NOTIFY=NEVER", "UnknownParameter")]
    [InlineData("MAIL FROM:<a@remote.test> =x", "UnknownParameter")]
    [InlineData("RCPT TO:<u@example.test> ENVID=x", "UnknownParameter")]
    [InlineData("RCPT TO:<u@example.test> SMTPUTF8", "UnknownParameter")]
    [InlineData("RCPT TO:<\"SIZE=1 SIZE=1\"@example.test> NOTIFY=NEVER", "None")]
    public void Parse_Parameters_Problem(string line, string expected)
    {
        Assert.Equal(Enum.Parse<EnvelopeLineProblem>(expected), EnvelopeLine.Parse(line)!.Problem);
    }

    [Theory]
    [InlineData("DATA")]
    [InlineData("MAILX FROM:<a@remote.test>")]
    [InlineData("RCPT TO:user@example.test")]
    [InlineData("RCPT TO:<\"unterminated>@example.test")]
    [InlineData("MAIL FROM:<a@remote.test")]
    public void Parse_NotAnEnvelopeLine_Null(string line)
    {
        Assert.Null(EnvelopeLine.Parse(line));
    }
}
