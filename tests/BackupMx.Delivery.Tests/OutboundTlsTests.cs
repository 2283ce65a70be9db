using BackupMx.Core.Configuration;
using BackupMx.Core.Model;
using BackupMx.Delivery.Smtp;
using BackupMx.Testing;

namespace BackupMx.Delivery.Tests;

/// <summary>Per-domain outbound TLS against a primary with a self-signed certificate.</summary>
public sealed class OutboundTlsTests : IAsyncLifetime
{
    private static readonly byte[] Body = TestDelivery.Ascii("From: alice@sender.org\r\nTo: bob@example.com\r\nSubject: tls\r\n\r\nhello\r\n");
    private readonly FakePrimary _primary = new() { OfferStartTls = true };

    public Task InitializeAsync() => _primary.StartAsync();

    public async Task DisposeAsync() => await _primary.DisposeAsync();

    private async Task<SmtpReply> DeliverAsync(OutboundTlsMode mode, bool? validate = null)
    {
        var options = TestDelivery.Config(_primary.HostPort);
        options.Domains[0].OutboundTls = mode;
        options.Domains[0].ValidateCertificate = validate;
        var result = await TestDelivery.Transport(options).DeliverAsync(TestDelivery.Request(Body), CancellationToken.None);
        return Assert.Single(result.Outcomes).Reply;
    }

    [Fact]
    public async Task Opportunistic_SelfSignedCertificate_EncryptsWithoutValidating()
    {
        var reply = await DeliverAsync(OutboundTlsMode.Opportunistic);

        Assert.True(reply.IsSuccess, reply.ToString());
        var message = Assert.Single(_primary.Messages);
        Assert.True(message.Secure);
        Assert.Equal(Body, message.Data);
        Assert.Equal(1, _primary.ConnectionCount);
    }

    [Fact]
    public async Task Opportunistic_ValidationAskedForAndCertificateUntrusted_FallsBackToPlainText()
    {
        var reply = await DeliverAsync(OutboundTlsMode.Opportunistic, validate: true);

        Assert.True(reply.IsSuccess, reply.ToString());
        Assert.False(Assert.Single(_primary.Messages).Secure);
        Assert.Equal(2, _primary.ConnectionCount);
    }

    [Fact]
    public async Task Opportunistic_NotOffered_PlainText()
    {
        _primary.OfferStartTls = false;

        var reply = await DeliverAsync(OutboundTlsMode.Opportunistic);

        Assert.True(reply.IsSuccess, reply.ToString());
        Assert.False(Assert.Single(_primary.Messages).Secure);
    }

    [Fact]
    public async Task Required_NotOffered_Transient474AndNothingSent()
    {
        _primary.OfferStartTls = false;

        var reply = await DeliverAsync(OutboundTlsMode.Required);

        Assert.Equal(451, reply.Code);
        Assert.Equal("4.7.4", reply.EnhancedCode);
        Assert.Contains("does not offer STARTTLS", reply.Text, StringComparison.Ordinal);
        Assert.Empty(_primary.Messages);
        Assert.DoesNotContain(_primary.Commands, c => c.StartsWith("MAIL", StringComparison.OrdinalIgnoreCase));
    }

    [Fact]
    public async Task Required_UntrustedCertificate_Transient475NoPlainTextRetry()
    {
        // ValidateCertificate unset: validated, because TLS is required.
        var reply = await DeliverAsync(OutboundTlsMode.Required);

        Assert.Equal(451, reply.Code);
        Assert.Equal("4.7.5", reply.EnhancedCode);
        Assert.Contains("not verified", reply.Text, StringComparison.Ordinal);
        Assert.Empty(_primary.Messages);
        Assert.Equal(1, _primary.ConnectionCount);
        Assert.DoesNotContain(_primary.Commands, c => c.StartsWith("MAIL", StringComparison.OrdinalIgnoreCase));
    }

    [Fact]
    public async Task Required_BrokenHandshake_Transient475NoPlainTextRetry()
    {
        _primary.BreakTlsHandshake = true;

        var reply = await DeliverAsync(OutboundTlsMode.Required, validate: false);

        Assert.Equal(451, reply.Code);
        Assert.Equal("4.7.5", reply.EnhancedCode);
        Assert.Empty(_primary.Messages);
        Assert.Equal(1, _primary.ConnectionCount);
    }

    [Fact]
    public async Task Required_ValidationTurnedOff_DeliversEncrypted()
    {
        var reply = await DeliverAsync(OutboundTlsMode.Required, validate: false);

        Assert.True(reply.IsSuccess, reply.ToString());
        Assert.True(Assert.Single(_primary.Messages).Secure);
    }

    [Fact]
    public async Task Disabled_Offered_NeverSendsStartTls()
    {
        var reply = await DeliverAsync(OutboundTlsMode.Disabled);

        Assert.True(reply.IsSuccess, reply.ToString());
        Assert.False(Assert.Single(_primary.Messages).Secure);
        Assert.DoesNotContain(_primary.Commands, c => c.Equals("STARTTLS", StringComparison.OrdinalIgnoreCase));
    }

    [Fact]
    public void ConfiguredTlsPolicy_Defaults_ValidateOnlyWhenRequired()
    {
        var options = TestDelivery.Config();
        options.Domains.Add(new DomainOptions { Name = "strict.example", OutboundTls = OutboundTlsMode.Required });
        options.Domains.Add(new DomainOptions { Name = "pinned.example", ValidateCertificate = true });
        options.Domains.Add(new DomainOptions { Name = "off.example", OutboundTls = OutboundTlsMode.Disabled });
        var policy = new ConfiguredTlsPolicy(Microsoft.Extensions.Options.Options.Create(options));

        Assert.Equal(new DeliveryTls(DeliveryTlsMode.Opportunistic, false), policy.GetTls(MessageKind.Relay, "example.com"));
        Assert.Equal(new DeliveryTls(DeliveryTlsMode.Required, true), policy.GetTls(MessageKind.Relay, "strict.example"));
        Assert.Equal(new DeliveryTls(DeliveryTlsMode.Opportunistic, true), policy.GetTls(MessageKind.Relay, "pinned.example"));
        Assert.Equal(DeliveryTlsMode.Disabled, policy.GetTls(MessageKind.Relay, "off.example").Mode);

        // A DSN to a sender domain that happens to share a name with a configured domain's settings.
        Assert.Equal(DeliveryTls.Opportunistic, policy.GetTls(MessageKind.Dsn, "strict.example"));
    }
}
