// The operator's HTTP API in Azure mode: the same views and the same flush as the
// embedded host's `queue` and `flush` commands. Function-level keys guard it
// (the host checks the key before the worker sees the request). Only configured
// domains are addressable, so the API cannot be used to probe or flush anything else.
using System.Net;
using System.Text.Json;
using System.Text.Json.Serialization;
using BackupMx.Core.Configuration;
using BackupMx.Core.Inspection;
using BackupMx.Core.Monitoring;
using BackupMx.Core.Ports;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Azure.Functions.Worker.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BackupMx.Functions;

/// <summary>One line of GET /api/queue.</summary>
public sealed record DomainSummaryResponse(
    string Domain,
    int Messages,
    int Recipients,
    double? OldestAgeSeconds,
    PrimaryState PrimaryState,
    DateTimeOffset? PrimaryStateSince,
    string? LastError);

/// <summary>Answer of POST /api/queue/{domain}/flush.</summary>
public sealed record FlushResponse(string Domain, int Flushed);

public sealed record ErrorResponse(string Error);

public sealed partial class QueueAdminFunctions(
    QueueInspector inspector,
    DomainFlusher flusher,
    IOptions<BackupMxOptions> options,
    ILogger<QueueAdminFunctions> logger,
    AdminRole adminRole)
{
    public const string SummaryName = "QueueSummary";
    public const string ListName = "QueueList";
    public const string FlushName = "QueueFlush";

    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        Converters = { new JsonStringEnumConverter() },
    };

    [Function(SummaryName)]
    public async Task<HttpResponseData> Summary(
        [HttpTrigger(AuthorizationLevel.Function, "get", Route = "queue")] HttpRequestData request,
        CancellationToken cancellationToken)
    {
        if (await adminRole.DenyAsync(request, cancellationToken).ConfigureAwait(false) is { } denied)
        {
            return denied;
        }

        var summaries = await inspector.SummarizeAsync(cancellationToken).ConfigureAwait(false);
        var body = summaries.Select(s => new DomainSummaryResponse(
            s.Domain, s.Messages, s.Recipients, s.OldestAge?.TotalSeconds, s.PrimaryState, s.PrimaryStateSince, s.LastError)).ToList();
        return await JsonAsync(request, HttpStatusCode.OK, body, cancellationToken).ConfigureAwait(false);
    }

    [Function(ListName)]
    public async Task<HttpResponseData> List(
        [HttpTrigger(AuthorizationLevel.Function, "get", Route = "queue/{domain}")] HttpRequestData request,
        string domain,
        CancellationToken cancellationToken)
    {
        if (await adminRole.DenyAsync(request, cancellationToken).ConfigureAwait(false) is { } denied)
        {
            return denied;
        }

        var configured = options.Value.FindDomain(domain);
        if (configured is null)
        {
            return await NotConfiguredAsync(request, cancellationToken).ConfigureAwait(false);
        }

        var messages = await inspector.ListAsync(configured.Name, cancellationToken).ConfigureAwait(false);
        return await JsonAsync(request, HttpStatusCode.OK, messages, cancellationToken).ConfigureAwait(false);
    }

    [Function(FlushName)]
    public async Task<HttpResponseData> Flush(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = "queue/{domain}/flush")] HttpRequestData request,
        string domain,
        CancellationToken cancellationToken)
    {
        if (await adminRole.DenyAsync(request, cancellationToken).ConfigureAwait(false) is { } denied)
        {
            return denied;
        }

        var configured = options.Value.FindDomain(domain);
        if (configured is null)
        {
            return await NotConfiguredAsync(request, cancellationToken).ConfigureAwait(false);
        }

        var flushed = await flusher.FlushAsync(configured.Name, "operator request (admin API)", cancellationToken).ConfigureAwait(false);
        LogFlushRequested(logger, configured.Name, flushed);
        return await JsonAsync(request, HttpStatusCode.OK, new FlushResponse(configured.Name, flushed), cancellationToken).ConfigureAwait(false);
    }

    // The reply does not echo the requested name back: it came from the caller and needs no reflecting.
    private static Task<HttpResponseData> NotConfiguredAsync(HttpRequestData request, CancellationToken cancellationToken) =>
        JsonAsync(request, HttpStatusCode.NotFound, new ErrorResponse("domain is not configured"), cancellationToken);

    // Serialized here rather than with WriteAsJsonAsync so that the output does not depend on the
    // worker's configured serializer: enums as names, camelCase, the same in tests and in Azure.
    internal static async Task<HttpResponseData> JsonAsync<T>(HttpRequestData request, HttpStatusCode status, T value, CancellationToken cancellationToken)
    {
        var response = request.CreateResponse(status);
        response.Headers.Add("Content-Type", "application/json; charset=utf-8");
        await JsonSerializer.SerializeAsync(response.Body, value, Json, cancellationToken).ConfigureAwait(false);
        return response;
    }

    [LoggerMessage(EventId = 6100, Level = LogLevel.Information, Message = "Admin API flushed {Domain}: {Count} message(s) due now")]
    private static partial void LogFlushRequested(ILogger logger, string domain, int count);
}
