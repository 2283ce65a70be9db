// Recipient callouts through the function app.
//
// The receiver runs on Container Apps, where Microsoft does not support outbound SMTP on port
// 25; the function app, integrated into the virtual network, may send on 25. So instead of
// connecting to the primary, this verifier posts the address to the function app's
// VerifyRecipient endpoint (function key in x-functions-key) and takes its verdict. The table
// cache (TableCachedRecipientVerifier) sits in front of it, so a cached answer costs no request.
// Anything short of a well-formed verdict within the timeout (a refused connection, a 5xx, a
// 401 for a wrong key, a body we cannot read) is Unknown: the same as a primary that cannot be
// reached, which RecipientPolicy answers with 450 4.1.1 unless the domain accepts unverified
// recipients. The function's refusal text is kept in the result for the logs; the sender gets
// RecipientPolicy's own generic reply.
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Serialization;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BackupMx.Receiver.Callouts;

public sealed partial class FunctionRecipientVerifier : IRecipientVerifier, IDisposable
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        Converters = { new JsonStringEnumConverter() },
    };

    private readonly HttpClient _http;
    private readonly IOptions<CalloutOptions> _options;
    private readonly TimeProvider _time;
    private readonly ILogger<FunctionRecipientVerifier> _logger;

    /// <param name="http">Owned by the verifier; its own Timeout is not relied on (CalloutTimeout is).</param>
    public FunctionRecipientVerifier(HttpClient http, IOptions<CalloutOptions> options, TimeProvider time, ILogger<FunctionRecipientVerifier> logger)
    {
        _http = http;
        _options = options;
        _time = time;
        _logger = logger;
    }

    public async Task<VerificationResult> VerifyAsync(string domain, string address, CancellationToken cancellationToken)
    {
        var options = _options.Value;
        using var deadline = new CancellationTokenSource(options.CalloutTimeout, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, options.CalloutUrl)
            {
                Content = JsonContent.Create(new CalloutRequest(address), options: Json),
            };
            request.Headers.Add("x-functions-key", options.CalloutKey);
            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseContentRead, linked.Token).ConfigureAwait(false);
            if (response.StatusCode != HttpStatusCode.OK)
            {
                LogFunctionRefused(_logger, domain, (int)response.StatusCode);
                return Unknown("4.4.3", "callout service unavailable");
            }

            var answer = await response.Content.ReadFromJsonAsync<CalloutResponse>(Json, linked.Token).ConfigureAwait(false);
            if (answer?.Outcome is not { } outcome || !Enum.IsDefined(outcome))
            {
                LogUnreadableAnswer(_logger, domain);
                return Unknown("4.4.3", "callout service unavailable");
            }

            var reply = answer.Reply is { } r ? new SmtpReply(r.Code, r.EnhancedCode, r.Text ?? string.Empty) : null;
            return new VerificationResult(outcome, reply);
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            LogTimedOut(_logger, domain, options.CalloutTimeout);
            return Unknown("4.4.2", "callout service timed out");
        }
        catch (Exception ex) when (ex is HttpRequestException or JsonException or NotSupportedException or IOException)
        {
            LogFunctionUnreachable(_logger, ex, domain);
            return Unknown("4.4.3", "callout service unavailable");
        }
    }

    public void Dispose() => _http.Dispose();

    private static VerificationResult Unknown(string enhancedCode, string text) =>
        new(VerificationOutcome.Unknown, SmtpReply.LocalTransient(enhancedCode, text));

    private sealed record CalloutRequest(string Address);

    private sealed record CalloutReply(int Code, string? EnhancedCode, string? Text);

    private sealed record CalloutResponse(string? Domain, VerificationOutcome? Outcome, CalloutReply? Reply);

    [LoggerMessage(EventId = 7000, Level = LogLevel.Warning, Message = "Callout for {Domain}: the function app answered {Status}; recipient unverified")]
    private static partial void LogFunctionRefused(ILogger logger, string domain, int status);

    [LoggerMessage(EventId = 7001, Level = LogLevel.Warning, Message = "Callout for {Domain}: the function app's answer could not be read; recipient unverified")]
    private static partial void LogUnreadableAnswer(ILogger logger, string domain);

    [LoggerMessage(EventId = 7002, Level = LogLevel.Warning, Message = "Callout for {Domain}: no answer from the function app within {Timeout}; recipient unverified")]
    private static partial void LogTimedOut(ILogger logger, string domain, TimeSpan timeout);

    [LoggerMessage(EventId = 7003, Level = LogLevel.Warning, Message = "Callout for {Domain}: the function app could not be reached; recipient unverified")]
    private static partial void LogFunctionUnreachable(ILogger logger, Exception exception, string domain);
}
