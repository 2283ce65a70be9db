using BackupMx.Core.Ports;
using BackupMx.Testing.Fakes;
using Microsoft.Extensions.DependencyInjection;
using BackupMx.Testing;

namespace BackupMx.Smtp.Tests;

public sealed class RecipientValidationTests
{
    [Fact]
    public async Task Rcpt_RecipientsList_UnknownGets550AtRcptTime()
    {
        await using var host = await ReceiverHost.StartAsync(new()
        {
            ["BackupMx:Domains:0:Recipients:0"] = "alice@example.test",
            ["BackupMx:Domains:0:Recipients:1"] = "*@EXAMPLE.TEST",
            ["BackupMx:Domains:1:Recipients:0"] = "bob@other.test",
        });
        await using var client = await host.ConnectInTransactionAsync();

        Assert.StartsWith("250", await client.CommandAsync("RCPT TO:<anyone@example.test>"));
        Assert.StartsWith("250", await client.CommandAsync("RCPT TO:<bob@Other.Test>"));
        var refused = await client.CommandAsync("RCPT TO:<carol@other.test>");
        Assert.StartsWith("550 5.1.1 ", refused);
        Assert.DoesNotContain("carol", refused, StringComparison.Ordinal);

        Assert.StartsWith("250", await client.DataAsync("Subject: x\r\n\r\nx\r\n.\r\n"));
        var records = await host.RecordsAsync();
        Assert.Equal(2, records.Count);
        Assert.DoesNotContain(records.SelectMany(r => r.Recipients), r => r.Address.StartsWith("carol", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Rcpt_VerifyRecipients_CalloutDecidesAndIsCached()
    {
        var verifier = new ScriptedRecipientVerifier
        {
            Outcome = a => a.StartsWith("alice", StringComparison.Ordinal) ? VerificationOutcome.Exists : VerificationOutcome.DoesNotExist,
        };
        await using var host = await ReceiverHost.StartAsync(
            new() { ["BackupMx:Domains:0:VerifyRecipients"] = "true" },
            configureServices: s => s.AddSingleton<IRecipientVerifier>(verifier));
        await using var client = await host.ConnectInTransactionAsync();

        Assert.StartsWith("250", await client.CommandAsync("RCPT TO:<alice@example.test>"));
        Assert.StartsWith("550 5.1.1 ", await client.CommandAsync("RCPT TO:<ghost@example.test>"));
        Assert.StartsWith("550 5.1.1 ", await client.CommandAsync("RCPT TO:<ghost@example.test>"));
        Assert.StartsWith("250", await client.CommandAsync("RCPT TO:<alice@example.test>"));
        Assert.StartsWith("250", await client.CommandAsync("RCPT TO:<anyone@other.test>"));

        Assert.Equal(["alice@example.test", "ghost@example.test"], verifier.Calls.Order());
    }

    [Fact]
    public async Task Rcpt_PrimaryUnreachable_VerifiedAcceptedUnknown450()
    {
        var verifier = new ScriptedRecipientVerifier { Outcome = _ => VerificationOutcome.Exists };
        await using var host = await ReceiverHost.StartAsync(
            new() { ["BackupMx:Domains:0:VerifyRecipients"] = "true" },
            configureServices: s => s.AddSingleton<IRecipientVerifier>(verifier));
        await using var client = await host.ConnectInTransactionAsync();
        Assert.StartsWith("250", await client.CommandAsync("RCPT TO:<alice@example.test>"));

        verifier.Outcome = _ => VerificationOutcome.Unknown;

        Assert.StartsWith("250", await client.CommandAsync("RCPT TO:<alice@example.test>"));
        Assert.StartsWith("450 4.1.1 ", await client.CommandAsync("RCPT TO:<bob@example.test>"));
        // The session is not penalised for a deferred recipient.
        Assert.StartsWith("250", await client.DataAsync("Subject: x\r\n\r\nx\r\n.\r\n"));
    }

    [Fact]
    public async Task Rcpt_PrimaryUnreachableAcceptUnverified_Accepted()
    {
        var verifier = new ScriptedRecipientVerifier();
        await using var host = await ReceiverHost.StartAsync(
            new()
            {
                ["BackupMx:Domains:0:VerifyRecipients"] = "true",
                ["BackupMx:Domains:0:AcceptUnverifiedWhenPrimaryDown"] = "true",
            },
            configureServices: s => s.AddSingleton<IRecipientVerifier>(verifier));
        await using var client = await host.ConnectInTransactionAsync();

        Assert.StartsWith("250", await client.CommandAsync("RCPT TO:<bob@example.test>"));
    }

    [Fact]
    public async Task Rcpt_VerifyWithoutVerifierImplementation_Deferred()
    {
        await using var host = await ReceiverHost.StartAsync(new() { ["BackupMx:Domains:0:VerifyRecipients"] = "true" });
        await using var client = await host.ConnectInTransactionAsync();

        Assert.StartsWith("450 4.1.1 ", await client.CommandAsync("RCPT TO:<bob@example.test>"));
    }

    [Theory]
    [InlineData(PrimaryState.Up, "450 4.7.1 ")]
    [InlineData(PrimaryState.Down, "250")]
    [InlineData(PrimaryState.Unknown, "250")]
    public async Task Rcpt_AcceptOnlyWhenPrimaryDown_FollowsMonitor(PrimaryState state, string expected)
    {
        await using var host = await ReceiverHost.StartAsync(new() { ["BackupMx:Domains:0:AcceptOnlyWhenPrimaryDown"] = "true" });
        await host.Get<IPrimaryStatusStore>().OverwriteAsync(new PrimaryStatus("example.test", state, null, null, null, null), CancellationToken.None);
        await using var client = await host.ConnectInTransactionAsync();

        Assert.StartsWith(expected, await client.CommandAsync("RCPT TO:<alice@example.test>"));
        Assert.StartsWith("250", await client.CommandAsync("RCPT TO:<alice@other.test>"));
    }

    [Fact]
    public async Task Rcpt_PrimaryUpOptionOff_Accepted()
    {
        await using var host = await ReceiverHost.StartAsync();
        await host.Get<IPrimaryStatusStore>().OverwriteAsync(new PrimaryStatus("example.test", PrimaryState.Up, null, null, null, null), CancellationToken.None);
        await using var client = await host.ConnectInTransactionAsync();

        Assert.StartsWith("250", await client.CommandAsync("RCPT TO:<alice@example.test>"));
    }

    [Fact]
    public async Task Rcpt_ManyRefusedByPolicy_SessionStaysOpen()
    {
        await using var host = await ReceiverHost.StartAsync(new() { ["BackupMx:Domains:0:Recipients:0"] = "alice@example.test" });
        await using var client = await host.ConnectInTransactionAsync();

        for (var i = 0; i < 20; i++)
        {
            Assert.StartsWith("550 5.1.1 ", await client.CommandAsync($"RCPT TO:<u{i}@example.test>"));
        }

        Assert.StartsWith("250", await client.CommandAsync("RCPT TO:<alice@example.test>"));
        Assert.StartsWith("250", await client.DataAsync("Subject: x\r\n\r\nx\r\n.\r\n"));
    }
}
