using System.Text.RegularExpressions;
using BackupMx.Receiver;
using BackupMx.Smtp;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace BackupMx.Functions.Tests;

/// <summary>
/// Container Apps TCP ingress hides the client's address, so infra/main.bicep turns the
/// receiver's per-client limits off: one sender must not be able to get everyone refused.
/// </summary>
public sealed partial class ReceiverClientLimitTests
{
    [Fact]
    public void MainBicep_ReceiverPerClientLimits_AreTheTotalLimitAndOff()
    {
        var settings = ClientLimitSettings();

        Assert.Equal(settings["BackupMx__Smtp__MaxConnections"], settings["BackupMx__Smtp__MaxConnectionsPerIp"]);
        Assert.Equal("'0'", settings["BackupMx__Smtp__MaxMessagesPerMinutePerIp"]);

        var main = MainBicep();
        var receiver = Regex.Match(main, @"^module receiver '[^']+' = \{(?<body>.*?)^\}", RegexOptions.Multiline | RegexOptions.Singleline);
        Assert.Matches(@"settings: union\([^\r\n]*\breceiverClientLimitSettings\b", receiver.Groups["body"].Value);
    }

    [Fact]
    public void ReceiverHost_WithTheClientLimitsOfMainBicep_StartsWithPerClientLimitsOff()
    {
        var maxConnections = Regex.Match(MainBicep(), @"^var receiverMaxConnections = (?<n>\d+)\r?$", RegexOptions.Multiline).Groups["n"].Value;
        Assert.NotEmpty(maxConnections);

        var builder = ReceiverHost.CreateBuilder(["--environment", "Development"]);
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["BackupMx:HostName"] = "mx.backup.test",
            ["BackupMx:Domains:0:Name"] = "example.test",
            ["BackupMx:Azure:BlobServiceUri"] = "https://account.blob.core.windows.net",
            ["BackupMx:Azure:TableServiceUri"] = "https://account.table.core.windows.net",
            ["BackupMx:Azure:ServiceBusNamespace"] = "backupmx.servicebus.windows.net",
            ["BackupMx:Smtp:Endpoints:0"] = "127.0.0.1:2525",
            ["BackupMx:Smtp:MaxConnections"] = maxConnections,
            ["BackupMx:Smtp:MaxConnectionsPerIp"] = maxConnections,
            ["BackupMx:Smtp:MaxMessagesPerMinutePerIp"] = "0",
        });
        using var host = builder.Build();

        host.Services.GetRequiredService<IStartupValidator>().Validate();
        var options = host.Services.GetRequiredService<IOptions<SmtpReceiverOptions>>().Value;
        Assert.Equal(options.MaxConnections, options.MaxConnectionsPerIp);
        Assert.Equal(0, options.MaxMessagesPerMinutePerIp);
    }

    private static string MainBicep() => File.ReadAllText(Path.Combine(AzureYamlTests.RepoRoot, "infra", "main.bicep"));

    /// <summary>Key to Bicep expression in the receiverClientLimitSettings object of main.bicep.</summary>
    private static Dictionary<string, string> ClientLimitSettings()
    {
        var block = Regex.Match(MainBicep(), @"^var receiverClientLimitSettings = \{(?<body>.*?)^\}", RegexOptions.Multiline | RegexOptions.Singleline);
        Assert.True(block.Success, "infra/main.bicep declares no receiverClientLimitSettings.");
        return SettingLine().Matches(block.Groups["body"].Value)
            .ToDictionary(m => m.Groups["key"].Value, m => m.Groups["value"].Value.Trim(), StringComparer.Ordinal);
    }

    [GeneratedRegex(@"^\s*(?<key>\w+): (?<value>[^\r\n]+)$", RegexOptions.Multiline)]
    private static partial Regex SettingLine();
}
