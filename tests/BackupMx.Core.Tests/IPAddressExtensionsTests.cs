using System.Net;
using BackupMx.Core.Net;

namespace BackupMx.Core.Tests;

public sealed class IPAddressExtensionsTests
{
    [Theory]
    [InlineData("::ffff:192.0.2.1", "192.0.2.1")]
    [InlineData("192.0.2.1", "192.0.2.1")]
    [InlineData("2001:db8::1", "2001:db8::1")]
    [InlineData("::1", "::1")]
    [InlineData("::192.0.2.1", "::192.0.2.1")]
    public void Unmapped_Address_IPv4BehindMappingOnly(string address, string expected)
    {
        Assert.Equal(IPAddress.Parse(expected), IPAddress.Parse(address).Unmapped());
    }
}
