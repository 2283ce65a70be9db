using System.Net;
using System.Text.Json;
using Azure.Data.Tables;
using BackupMx.Azure;
using BackupMx.Core.Configuration;
using BackupMx.Core.Ports;
using BackupMx.Functions.Tests.Fakes;
using BackupMx.Receiver.Callouts;
using BackupMx.Testing;
using BackupMx.Testing.Azurite;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace BackupMx.Functions.Tests;

/// <summary>The receiver's callouts through the function app, against a real HTTP listener on loopback.</summary>
[Collection(AzuriteFixture.CollectionName)]
public sealed class FunctionRecipientVerifierTests(AzuriteFixture azurite) : IAsyncLifetime
{
    private const string Key = "test-function-key";

    private readonly LocalHttpServer _function = new();
    private readonly FakeTimeProvider _time = new(DateTimeOffset.UtcNow);

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _function.DisposeAsync();

    [Fact]
    public async Task VerifyAsync_FunctionAnswersExists_ExistsAndTheRequestCarriesAddressAndKey()
    {
        _function.Answer(HttpStatusCode.OK, """{"domain":"example.test","outcome":"Exists","reply":{"code":250,"enhancedCode":"2.1.5","text":"OK"}}""");
        using var verifier = Verifier();

        var result = await verifier.VerifyAsync("example.test", "bob@example.test", CancellationToken.None);

        Assert.Equal(VerificationOutcome.Exists, result.Outcome);
        Assert.Equal(250, result.Reply!.Code);
        var request = Assert.Single(_function.Requests);
        Assert.Equal("POST", request.Method);
        Assert.Equal("/api/verify-recipient", request.Path);
        Assert.Equal(Key, request.FunctionKey);
        using var body = JsonDocument.Parse(request.Body);
        Assert.Equal("bob@example.test", body.RootElement.GetProperty("address").GetString());
    }

    [Fact]
    public async Task VerifyAsync_FunctionAnswersDoesNotExist_DoesNotExistWithThePrimarysReply()
    {
        _function.Answer(HttpStatusCode.OK, """{"domain":"example.test","outcome":"DoesNotExist","reply":{"code":550,"enhancedCode":"5.1.1","text":"No such user"}}""");
        using var verifier = Verifier();

        var result = await verifier.VerifyAsync("example.test", "nobody@example.test", CancellationToken.None);

        Assert.Equal(VerificationOutcome.DoesNotExist, result.Outcome);
        Assert.Equal(550, result.Reply!.Code);
        Assert.Equal("5.1.1", result.Reply.EnhancedCode);
        Assert.Equal("No such user", result.Reply.Text);
    }

    [Fact]
    public async Task VerifyAsync_FunctionAnswersUnknown_Unknown()
    {
        _function.Answer(HttpStatusCode.OK, """{"domain":"example.test","outcome":"Unknown","reply":{"code":451,"enhancedCode":"4.4.1","text":"no connection"}}""");
        using var verifier = Verifier();

        var result = await verifier.VerifyAsync("example.test", "bob@example.test", CancellationToken.None);

        Assert.Equal(VerificationOutcome.Unknown, result.Outcome);
        Assert.Equal(451, result.Reply!.Code);
    }

    [Theory]
    [InlineData(HttpStatusCode.InternalServerError, "")]
    [InlineData(HttpStatusCode.ServiceUnavailable, "")]
    [InlineData(HttpStatusCode.Unauthorized, "")]
    [InlineData(HttpStatusCode.NotFound, """{"error":"domain is not configured"}""")]
    [InlineData(HttpStatusCode.OK, "<html>not json</html>")]
    [InlineData(HttpStatusCode.OK, """{"outcome":"Maybe"}""")]
    [InlineData(HttpStatusCode.OK, """{"outcome":7}""")]
    [InlineData(HttpStatusCode.OK, "{}")]
    public async Task VerifyAsync_FunctionFailsOrAnswersNonsense_UnknownWithATransientReply(HttpStatusCode status, string body)
    {
        _function.Answer(status, body);
        using var verifier = Verifier();

        var result = await verifier.VerifyAsync("example.test", "bob@example.test", CancellationToken.None);

        Assert.Equal(VerificationOutcome.Unknown, result.Outcome);
        Assert.True(result.Reply!.IsTransient);
        Assert.Equal(1, _function.RequestCount);
    }

    [Fact]
    public async Task VerifyAsync_NothingListening_Unknown()
    {
        var port = FreePort.Next();
        using var verifier = Verifier(new Uri($"http://127.0.0.1:{port}/api/verify-recipient"));

        var result = await verifier.VerifyAsync("example.test", "bob@example.test", CancellationToken.None);

        Assert.Equal(VerificationOutcome.Unknown, result.Outcome);
        Assert.True(result.Reply!.IsTransient);
    }

    [Fact]
    public async Task VerifyAsync_FunctionNeverAnswers_UnknownOnceTheTimeoutPasses()
    {
        _function.NeverAnswer();
        using var verifier = Verifier();

        var verification = verifier.VerifyAsync("example.test", "bob@example.test", CancellationToken.None);
        while (_function.RequestCount == 0)
        {
            Assert.False(verification.IsCompleted, "the callout ended before the function got the request");
            await Task.Delay(10);
        }

        _time.Advance(new CalloutOptions().CalloutTimeout - TimeSpan.FromSeconds(1));
        await Task.Delay(50);
        Assert.False(verification.IsCompleted, "gave up before the timeout");
        _time.Advance(TimeSpan.FromSeconds(1));
        var result = await verification.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(VerificationOutcome.Unknown, result.Outcome);
        Assert.Equal("4.4.2", result.Reply!.EnhancedCode);
    }

    [Fact]
    public async Task VerifyAsync_BehindTheTableCache_ACachedAnswerDoesNotCallTheFunction()
    {
        _function.Answer(HttpStatusCode.OK, """{"domain":"example.test","outcome":"DoesNotExist","reply":{"code":550,"enhancedCode":"5.1.1","text":"No such user"}}""");
        var table = new TableServiceClient(azurite.ConnectionString).GetTableClient(AzuriteFixture.UniqueName("verifications"));
        await table.CreateIfNotExistsAsync();
        using var function = Verifier();
        var first = Cached(function, table);
        var second = Cached(function, table);

        Assert.Equal(VerificationOutcome.DoesNotExist, (await first.VerifyAsync("example.test", "nobody@example.test", CancellationToken.None)).Outcome);
        Assert.Equal(1, _function.RequestCount);

        Assert.Equal(VerificationOutcome.DoesNotExist, (await first.VerifyAsync("example.test", "nobody@example.test", CancellationToken.None)).Outcome);
        Assert.Equal(VerificationOutcome.DoesNotExist, (await second.VerifyAsync("example.test", "nobody@example.test", CancellationToken.None)).Outcome);
        Assert.Equal(1, _function.RequestCount);
    }

    [Fact]
    public async Task VerifyAsync_BehindTheTableCache_AFailedCalloutIsNotCached()
    {
        var table = new TableServiceClient(azurite.ConnectionString).GetTableClient(AzuriteFixture.UniqueName("verifications"));
        await table.CreateIfNotExistsAsync();
        using var function = Verifier();
        var cached = Cached(function, table);

        Assert.Equal(VerificationOutcome.Unknown, (await cached.VerifyAsync("example.test", "bob@example.test", CancellationToken.None)).Outcome);
        _function.Answer(HttpStatusCode.OK, """{"domain":"example.test","outcome":"Exists","reply":{"code":250,"enhancedCode":null,"text":"OK"}}""");

        Assert.Equal(VerificationOutcome.Exists, (await cached.VerifyAsync("example.test", "bob@example.test", CancellationToken.None)).Outcome);
        Assert.Equal(2, _function.RequestCount);
    }

    private FunctionRecipientVerifier Verifier(Uri? url = null) => new(
        new HttpClient(),
        Microsoft.Extensions.Options.Options.Create(new CalloutOptions { CalloutUrl = url ?? _function.Url, CalloutKey = Key }),
        _time,
        NullLogger<FunctionRecipientVerifier>.Instance);

    private TableCachedRecipientVerifier Cached(IRecipientVerifier inner, TableClient table) => new(
        inner,
        table,
        Microsoft.Extensions.Options.Options.Create(new BackupMxOptions()),
        _time,
        NullLogger<TableCachedRecipientVerifier>.Instance);
}
