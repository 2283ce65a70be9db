// Recipient callouts on behalf of the receiver.
//
// Microsoft supports outbound SMTP on port 25 from Functions with virtual network integration,
// not from other PaaS resources such as Container Apps, so the receiver does not call primaries
// out itself: it asks this function, which runs the embedded server's verifier (MailKit, the
// route relayed mail takes) from the function app's subnet and NAT address. The host checks the
// function key before the worker sees the request. The caller names only an address: the domain
// must be one we relay, and the host probed is that domain's primary as configured (or its MX
// below ours), never one the caller chooses, so the endpoint cannot probe arbitrary servers.
// Every verdict is answered with 200; 400 and 404 mean the request itself was refused, and the
// receiver treats anything but a 200 verdict as "unknown" (450 4.1.1 to the sender, as when the
// primary cannot be reached).
using System.Net;
using System.Text.Json;
using BackupMx.Core.Configuration;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Azure.Functions.Worker.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BackupMx.Functions;

/// <summary>Body of POST /api/verify-recipient.</summary>
public sealed record VerifyRecipientRequest(string? Address);

/// <summary>The primary's reply to RCPT (or ours, for a callout that got none).</summary>
public sealed record VerifyRecipientReply(int Code, string? EnhancedCode, string Text);

/// <summary>Answer of POST /api/verify-recipient: Exists, DoesNotExist (with the primary's refusal) or Unknown.</summary>
public sealed record VerifyRecipientResponse(string Domain, VerificationOutcome Outcome, VerifyRecipientReply? Reply);

public sealed partial class VerifyRecipientFunction(
    IRecipientVerifier verifier,
    IOptions<BackupMxOptions> options,
    IOptions<FunctionsOptions> functionsOptions,
    TimeProvider time,
    ILogger<VerifyRecipientFunction> logger)
{
    public const string Name = "VerifyRecipient";

    /// <summary>RFC 5321 §4.5.3.1: 64 octets of local part, 255 of domain, and the '@'.</summary>
    public const int MaxAddressLength = 64 + 1 + 255;

    // A request is one short JSON object; anything longer is not ours.
    private const int MaxBodyLength = 4096;

    [Function(Name)]
    public async Task<HttpResponseData> Run(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = "verify-recipient")] HttpRequestData request,
        CancellationToken cancellationToken)
    {
        var address = await ReadAddressAsync(request, cancellationToken).ConfigureAwait(false);
        if (address is null)
        {
            return await JsonAsync(request, HttpStatusCode.BadRequest, new ErrorResponse("expected {\"address\": \"local@domain\"}"), cancellationToken).ConfigureAwait(false);
        }

        var at = address.LastIndexOf('@');
        var domain = options.Value.FindDomain(address[(at + 1)..].TrimEnd('.'));
        if (domain is null)
        {
            LogNotConfigured(logger);
            return await JsonAsync(request, HttpStatusCode.NotFound, new ErrorResponse("domain is not configured"), cancellationToken).ConfigureAwait(false);
        }

        var result = await VerifyAsync(domain.Name, address, cancellationToken).ConfigureAwait(false);
        var reply = result.Reply is { } r ? new VerifyRecipientReply(r.Code, r.EnhancedCode, r.Text) : null;
        return await JsonAsync(request, HttpStatusCode.OK, new VerifyRecipientResponse(domain.Name, result.Outcome, reply), cancellationToken).ConfigureAwait(false);
    }

    // The receiver waits for this answer while a sender waits for its RCPT reply, so the callout
    // has a deadline of its own; past it the answer is Unknown, like a primary that never answered.
    private async Task<VerificationResult> VerifyAsync(string domain, string address, CancellationToken cancellationToken)
    {
        using var deadline = new CancellationTokenSource(functionsOptions.Value.CalloutTimeout, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        try
        {
            var result = await verifier.VerifyAsync(domain, address, linked.Token).ConfigureAwait(false);
            LogVerified(logger, domain, result.Outcome);
            return result;
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            LogTimedOut(logger, domain, functionsOptions.Value.CalloutTimeout);
            return new VerificationResult(VerificationOutcome.Unknown, SmtpReply.LocalTransient("4.4.2", "callout timed out"));
        }
    }

    private static async Task<HttpResponseData> JsonAsync<T>(HttpRequestData request, HttpStatusCode status, T value, CancellationToken cancellationToken)
    {
        var response = request.CreateResponse(status);
        response.Headers.Add("Content-Type", "application/json; charset=utf-8");
        await JsonSerializer.SerializeAsync(response.Body, value, QueueAdminFunctions.Json, cancellationToken).ConfigureAwait(false);
        return response;
    }

    private static async Task<string?> ReadAddressAsync(HttpRequestData request, CancellationToken cancellationToken)
    {
        var buffer = new byte[MaxBodyLength + 1];
        var length = 0;
        int read;
        while (length < buffer.Length && (read = await request.Body.ReadAsync(buffer.AsMemory(length), cancellationToken).ConfigureAwait(false)) > 0)
        {
            length += read;
        }

        if (length > MaxBodyLength)
        {
            return null;
        }

        VerifyRecipientRequest? body;
        try
        {
            body = JsonSerializer.Deserialize<VerifyRecipientRequest>(buffer.AsSpan(0, length), QueueAdminFunctions.Json);
        }
        catch (JsonException)
        {
            return null;
        }

        var address = body?.Address;
        if (string.IsNullOrEmpty(address) || address.Length > MaxAddressLength)
        {
            return null;
        }

        var at = address.LastIndexOf('@');
        return at <= 0 || at == address.Length - 1 ? null : address;
    }

    // The address itself stays out of these logs: the receiver logs the RCPT verdicts it gives.
    [LoggerMessage(EventId = 6200, Level = LogLevel.Debug, Message = "Callout for {Domain}: {Outcome}")]
    private static partial void LogVerified(ILogger logger, string domain, VerificationOutcome outcome);

    [LoggerMessage(EventId = 6201, Level = LogLevel.Warning, Message = "Callout for {Domain} gave no answer within {Timeout}")]
    private static partial void LogTimedOut(ILogger logger, string domain, TimeSpan timeout);

    [LoggerMessage(EventId = 6202, Level = LogLevel.Warning, Message = "Callout requested for a domain that is not configured; refused")]
    private static partial void LogNotConfigured(ILogger logger);
}
