using BackupMx.Core.Ports;
using BackupMx.Testing.Fakes;
using Microsoft.Extensions.DependencyInjection;

namespace BackupMx.Smtp.Tests;

/// <summary>The reserved mailbox "postmaster" (RFC 5321 §4.5.1), at each served domain and without a domain.</summary>
public sealed class PostmasterTests
{
    [Fact]
    public async Task Rcpt_PostmasterAnyCase_AcceptedDespiteRecipientsList()
    {
        await using var host = await ReceiverHost.StartAsync(new()
        {
            ["BackupMx:Domains:0:Recipients:0"] = "alice@example.test",
            ["BackupMx:Domains:1:Recipients:0"] = "bob@other.test",
        });
        await using var client = await host.ConnectInTransactionAsync();

        Assert.StartsWith("250", await client.CommandAsync("RCPT TO:<postmaster@example.test>"));
        Assert.StartsWith("250", await client.CommandAsync("RCPT TO:<PostMaster@Other.Test>"));
        Assert.StartsWith("550 5.1.1 ", await client.CommandAsync("RCPT TO:<carol@example.test>"));
        Assert.StartsWith("550 5.7.1 ", await client.CommandAsync("RCPT TO:<postmaster@elsewhere.test>"));
        Assert.StartsWith("250", await client.DataAsync("Subject: x\r\n\r\nx\r\n.\r\n"));

        Assert.Equal(
            ["postmaster@example.test", "PostMaster@Other.Test"],
            (await host.RecordsAsync()).SelectMany(r => r.Recipients).Select(r => r.Address).Order(StringComparer.OrdinalIgnoreCase));
    }

    [Fact]
    public async Task Rcpt_PostmasterWithCallouts_AcceptedWithoutAskingThePrimary()
    {
        var verifier = new ScriptedRecipientVerifier { Outcome = _ => VerificationOutcome.DoesNotExist };
        await using var host = await ReceiverHost.StartAsync(
            new() { ["BackupMx:Domains:0:VerifyRecipients"] = "true" },
            configureServices: s => s.AddSingleton<IRecipientVerifier>(verifier));
        await using var client = await host.ConnectInTransactionAsync();

        Assert.StartsWith("250", await client.CommandAsync("RCPT TO:<POSTMASTER@example.test>"));
        Assert.StartsWith("250", await client.CommandAsync("RCPT TO:<Postmaster>"));
        Assert.Empty(verifier.Calls);
    }

    [Theory]
    [InlineData("RCPT TO:<Postmaster>")]
    [InlineData("RCPT TO:<postmaster>")]
    [InlineData("rcpt to:<POSTMASTER>")]
    public async Task Rcpt_PostmasterWithoutDomain_StoredAtFirstDomain(string command)
    {
        await using var host = await ReceiverHost.StartAsync(new() { ["BackupMx:Domains:0:Recipients:0"] = "alice@example.test" });
        await using var client = await host.ConnectInTransactionAsync();

        Assert.StartsWith("250", await client.CommandAsync(command));
        Assert.StartsWith("250", await client.DataAsync("Subject: x\r\n\r\nx\r\n.\r\n"));

        Assert.Equal("postmaster@example.test", Assert.Single(Assert.Single(await host.RecordsAsync()).Recipients).Address);
    }

    [Fact]
    public async Task Rcpt_PostmasterWithoutDomainAndParameters_ParametersKept()
    {
        await using var host = await ReceiverHost.StartAsync();
        await using var client = await host.ConnectInTransactionAsync();

        // Pipelined behind it, so the rewritten line must leave the rest of the input in place.
        await client.SendRawAsync("RCPT TO:<Postmaster> NOTIFY=FAILURE ORCPT=rfc822;Postmaster\r\nRCPT TO:<user@example.test>\r\nDATA\r\n");
        Assert.StartsWith("250", await client.ReadReplyAsync());
        Assert.StartsWith("250", await client.ReadReplyAsync());
        Assert.StartsWith("354", await client.ReadReplyAsync());
        await client.SendRawAsync("Subject: x\r\n\r\nx\r\n.\r\n");
        Assert.StartsWith("250", await client.ReadReplyAsync());

        var recipients = Assert.Single(await host.RecordsAsync()).Recipients;
        Assert.Equal(["postmaster@example.test", "user@example.test"], recipients.Select(r => r.Address));
        Assert.Equal("FAILURE", recipients[0].Notify);
        Assert.Equal("rfc822;Postmaster", recipients[0].OriginalRecipient);
    }

    [Fact]
    public async Task Rcpt_PostmasterWithoutDomain_GoesToConfiguredPostmasterDomain()
    {
        await using var host = await ReceiverHost.StartAsync(new() { ["BackupMx:Smtp:PostmasterDomain"] = "OTHER.test" });
        await using var client = await host.ConnectInTransactionAsync();

        Assert.StartsWith("250", await client.CommandAsync("RCPT TO:<Postmaster>"));
        Assert.StartsWith("250", await client.DataAsync("Subject: x\r\n\r\nx\r\n.\r\n"));

        Assert.Equal("postmaster@other.test", Assert.Single(Assert.Single(await host.RecordsAsync()).Recipients).Address);
    }

    [Fact]
    public async Task Start_PostmasterDomainNotServed_FailsNamingTheKey()
    {
        var error = await Assert.ThrowsAsync<Microsoft.Extensions.Options.OptionsValidationException>(
            () => ReceiverHost.StartAsync(new() { ["BackupMx:Smtp:PostmasterDomain"] = "elsewhere.test" }));

        Assert.Contains("BackupMx:Smtp:PostmasterDomain", error.Message);
    }

    [Theory]
    [InlineData("RCPT TO:<postmaster@>")]
    [InlineData("RCPT TO:<\"postmaster\">")]
    [InlineData("RCPT TO:<postmaster.x>")]
    public async Task Rcpt_OtherPathsWithoutDomain_StillRefused(string command)
    {
        await using var host = await ReceiverHost.StartAsync();
        await using var client = await host.ConnectInTransactionAsync();

        Assert.StartsWith("501 5.1.3 ", await client.CommandAsync(command));
    }
}
