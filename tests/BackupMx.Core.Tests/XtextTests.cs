using BackupMx.Core.Model;

namespace BackupMx.Core.Tests;

public sealed class XtextTests
{
    [Theory]
    [InlineData("", "")]
    [InlineData("plain", "plain")]
    [InlineData("QQ+2B1+3Dx", "QQ+1=x")]
    [InlineData("+20lead", " lead")]
    [InlineData("trail+2B", "trail+")]
    [InlineData("a<b>c;d", "a<b>c;d")]
    public void TryDecode_Valid_Decoded(string value, string expected)
    {
        Assert.True(Xtext.TryDecode(value, out var decoded));
        Assert.Equal(expected, decoded);
    }

    [Theory]
    [InlineData("bad+zz")]
    [InlineData("lower+2b")]
    [InlineData("short+2")]
    [InlineData("end+")]
    [InlineData("has=equals")]
    [InlineData("has space")]
    [InlineData("tab\there")]
    [InlineData("caf\u00e9")]
    public void TryDecode_Invalid_False(string value)
    {
        Assert.False(Xtext.TryDecode(value, out var decoded));
        Assert.Equal(string.Empty, decoded);
    }
}
