using BackupMx.Delivery.DnsCheck;

namespace BackupMx.Delivery.Tests.DnsCheck;

public sealed class MtaStsPolicyTests
{
    [Theory]
    [InlineData("backup.example.net", "backup.example.net", true)]
    [InlineData("BACKUP.example.net.", "backup.example.NET", true)]
    [InlineData("*.example.net", "backup.example.net", true)]
    [InlineData("*.example.net", "a.backup.example.net", false)]
    [InlineData("*.example.net", "example.net", false)]
    [InlineData("mail.example.net", "backup.example.net", false)]
    public void PatternMatches_Rfc8461Wildcards(string pattern, string host, bool expected) =>
        Assert.Equal(expected, MtaStsPolicy.PatternMatches(pattern, host));

    [Fact]
    public void Parse_CrlfPolicyWithUnknownKeys_ReadsModeMxAndMaxAge()
    {
        var policy = MtaStsPolicy.Parse("version: STSv1\r\nmode: testing\r\nmx: a.example.com\r\nfuture: x\r\nmx: *.example.net\r\nmax_age: 86400\r\n", out var error);

        Assert.Null(error);
        Assert.NotNull(policy);
        Assert.Equal(("testing", 86400L), (policy.Mode, policy.MaxAge));
        Assert.Equal(["a.example.com", "*.example.net"], policy.MxPatterns);
        Assert.True(policy.IsActive);
    }

    [Theory]
    [InlineData("version: STSv1\nmode: enforce\nmax_age: 1\n", "no mx line")]
    [InlineData("version: STSv1\nmode: enforce\nmx: a.example\n", "max_age is missing")]
    [InlineData("version: STSv1\nmode: enforce\nmx: a.example\nmax_age: soon\n", "max_age 'soon'")]
    [InlineData("<html>", "not 'key: value'")]
    public void Parse_InvalidPolicy_SaysWhy(string text, string expected)
    {
        Assert.Null(MtaStsPolicy.Parse(text, out var error));
        Assert.Contains(expected, error, StringComparison.Ordinal);
    }
}
