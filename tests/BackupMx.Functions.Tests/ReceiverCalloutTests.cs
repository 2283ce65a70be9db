using System.Text;
using BackupMx.Receiver;
using BackupMx.Testing;
using BackupMx.Testing.Azurite;
using BackupMx.Testing.Fakes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using BackupMx.Core.Ports;

namespace BackupMx.Functions.Tests;

/// <summary>
/// VerifyRecipients on the Azure-mode receiver as it is composed: RCPT is answered after a
/// callout to the primary (over loopback SMTP), and two receiver replicas share the answers
/// through the verifications table in Azurite, so the second asks the primary nothing.
/// </summary>
[Collection(AzuriteFixture.CollectionName)]
public sealed class ReceiverCalloutTests(AzuriteFixture azurite) : IAsyncLifetime
{
    private static readonly byte[] Body = Encoding.ASCII.GetBytes("From: alice@sender.test\r\nSubject: callout\r\n\r\nHello\r\n");

    private readonly FakePrimary _primary = new();
    private readonly List<IHost> _replicas = [];
    private Dictionary<string, string?> _settings = null!;

    public async Task InitializeAsync()
    {
        await _primary.StartAsync();
        _primary.Reply("nobody@example.test", 550, "5.1.1 No such user");
        _settings = AzureModeSettings.Create(azurite, "example.test", _primary.HostPort);
        _settings["BackupMx:Domains:0:VerifyRecipients"] = "true";
        _settings["BackupMx:Azure:VerificationsTable"] = AzuriteFixture.UniqueName("verifications");
    }

    public async Task DisposeAsync()
    {
        foreach (var replica in _replicas)
        {
            await replica.StopAsync();
            replica.Dispose();
        }

        await _primary.DisposeAsync();
    }

    [Fact]
    public async Task Rcpt_WithVerifyRecipients_CallsThePrimaryOutAndAnswersByItsReply()
    {
        var port = await StartReplicaAsync();

        var result = await SmtpSender.SendAsync(port, "alice@sender.test", ["bob@example.test", "nobody@example.test"], Body);

        Assert.StartsWith("250", result.RecipientReplies[0], StringComparison.Ordinal);
        Assert.StartsWith("550 5.1.1", result.RecipientReplies[1], StringComparison.Ordinal);
        Assert.True(result.Accepted, result.DataReply);
        Assert.Contains("RCPT TO:<bob@example.test>", _primary.Commands);
        Assert.Contains("RCPT TO:<nobody@example.test>", _primary.Commands);

        // A callout, not a delivery: the primary got no DATA.
        Assert.Empty(_primary.Messages);
    }

    [Fact]
    public async Task Rcpt_OnASecondReplica_AnsweredFromTheSharedTableWithoutACallout()
    {
        var first = await StartReplicaAsync();
        var second = await StartReplicaAsync();
        await SmtpSender.SendAsync(first, "alice@sender.test", ["bob@example.test", "nobody@example.test"], Body);
        var connections = _primary.ConnectionCount;
        Assert.True(connections > 0);

        var result = await SmtpSender.SendAsync(second, "alice@sender.test", ["bob@example.test", "nobody@example.test"], Body);

        Assert.StartsWith("250", result.RecipientReplies[0], StringComparison.Ordinal);
        Assert.StartsWith("550 5.1.1", result.RecipientReplies[1], StringComparison.Ordinal);
        Assert.Equal(connections, _primary.ConnectionCount);
    }

    private async Task<int> StartReplicaAsync()
    {
        var port = FreePort.Next();
        var settings = new Dictionary<string, string?>(_settings) { ["BackupMx:Smtp:Endpoints:0"] = $"127.0.0.1:{port}" };
        var builder = ReceiverHost.CreateBuilder(settings.Select(s => $"--{s.Key}={s.Value}").ToArray());

        // No Service Bus emulator: wake-ups go to memory, as in the other Azure-mode tests.
        var queue = new RecordingWakeUpQueue(TimeProvider.System);
        builder.Services.Replace(ServiceDescriptor.Singleton<IWakeUpQueue>(queue));
        builder.Services.Replace(ServiceDescriptor.Singleton<IWakeUpSource>(queue));
        var host = builder.Build();
        _replicas.Add(host);
        await host.StartAsync();
        return port;
    }
}
