// The message operations of the operator's HTTP API in Azure mode: the same as the embedded host's
// show, hold, release and delete commands (BackupMx.Core.Spool.MessageOperations), guarded by
// function-level keys like the queue functions. Every change goes through the spool ledger.
using System.Globalization;
using System.Net;
using System.Text.Json;
using BackupMx.Core.Configuration;
using BackupMx.Core.Model;
using BackupMx.Core.Spool;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Azure.Functions.Worker.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BackupMx.Functions;

/// <summary>Answer of a hold, release or delete of one message.</summary>
/// <param name="Outcome">held, alreadyHeld, released, notHeld or deleted.</param>
/// <param name="DsnQueueId">The notice a delete with bounce=true queued, or null.</param>
public sealed record MessageChangeResponse(string QueueId, string Domain, string Outcome, bool? Held, DateTimeOffset? ExpiresAt, string? DsnQueueId);

/// <summary>One message of a domain's hold or release.</summary>
public sealed record DomainChangeItem(string QueueId, string Outcome);

public sealed record DomainChangeResponse(string Domain, IReadOnlyList<DomainChangeItem> Messages);

public sealed partial class MessageAdminFunctions(
    MessageOperations operations,
    SpoolLedger ledger,
    IOptions<BackupMxOptions> options,
    ILogger<MessageAdminFunctions> logger,
    AdminRole adminRole)
{
    public const string ShowName = "MessageShow";
    public const string HoldName = "MessageHold";
    public const string ReleaseName = "MessageRelease";
    public const string DeleteName = "MessageDelete";
    public const string DomainHoldName = "QueueHold";
    public const string DomainReleaseName = "QueueRelease";

    /// <summary>
    /// How long a hold or delete waits for a delivery in progress by default (<c>?wait=SECONDS</c>, at
    /// most <see cref="MaxWait"/>): well inside the HTTP trigger's own time limit.
    /// </summary>
    public static readonly TimeSpan DefaultWait = TimeSpan.FromSeconds(10);

    public static readonly TimeSpan MaxWait = TimeSpan.FromSeconds(60);

    [Function(ShowName)]
    public async Task<HttpResponseData> Show(
        [HttpTrigger(AuthorizationLevel.Function, "get", Route = "messages/{queueId}")] HttpRequestData request,
        string queueId,
        CancellationToken cancellationToken)
    {
        if (await adminRole.DenyAsync(request, cancellationToken).ConfigureAwait(false) is { } denied)
        {
            return denied;
        }

        ArgumentNullException.ThrowIfNull(request);
        if (!QueueId.IsValid(queueId))
        {
            return await NotFoundAsync(request, cancellationToken).ConfigureAwait(false);
        }

        var wholeBody = Flag(request, "body");
        var details = await operations.ShowAsync(queueId, wholeBody, cancellationToken).ConfigureAwait(false);
        return details is null
            ? await NotFoundAsync(request, cancellationToken).ConfigureAwait(false)
            : await QueueAdminFunctions.JsonAsync(request, HttpStatusCode.OK, details, cancellationToken).ConfigureAwait(false);
    }

    [Function(HoldName)]
    public Task<HttpResponseData> Hold(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = "messages/{queueId}/hold")] HttpRequestData request,
        string queueId,
        CancellationToken cancellationToken) =>
        ChangeAsync(request, queueId, "hold", cancellationToken);

    [Function(ReleaseName)]
    public Task<HttpResponseData> Release(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = "messages/{queueId}/release")] HttpRequestData request,
        string queueId,
        CancellationToken cancellationToken) =>
        ChangeAsync(request, queueId, "release", cancellationToken);

    [Function(DeleteName)]
    public Task<HttpResponseData> Delete(
        [HttpTrigger(AuthorizationLevel.Function, "delete", Route = "messages/{queueId}")] HttpRequestData request,
        string queueId,
        CancellationToken cancellationToken) =>
        ChangeAsync(request, queueId, "delete", cancellationToken);

    [Function(DomainHoldName)]
    public Task<HttpResponseData> HoldDomain(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = "queue/{domain}/hold")] HttpRequestData request,
        string domain,
        CancellationToken cancellationToken) =>
        ChangeDomainAsync(request, domain, hold: true, cancellationToken);

    [Function(DomainReleaseName)]
    public Task<HttpResponseData> ReleaseDomain(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = "queue/{domain}/release")] HttpRequestData request,
        string domain,
        CancellationToken cancellationToken) =>
        ChangeDomainAsync(request, domain, hold: false, cancellationToken);

    private async Task<HttpResponseData> ChangeAsync(HttpRequestData request, string queueId, string command, CancellationToken cancellationToken)
    {
        if (await adminRole.DenyAsync(request, cancellationToken).ConfigureAwait(false) is { } denied)
        {
            return denied;
        }

        ArgumentNullException.ThrowIfNull(request);
        var wait = Wait(request);
        if (wait is null)
        {
            return await QueueAdminFunctions.JsonAsync(request, HttpStatusCode.BadRequest, new ErrorResponse("wait must be a number of seconds from 0 to 60"), cancellationToken).ConfigureAwait(false);
        }

        var record = QueueId.IsValid(queueId) ? await operations.FindAsync(queueId, cancellationToken).ConfigureAwait(false) : null;
        if (record is null)
        {
            return await NotFoundAsync(request, cancellationToken).ConfigureAwait(false);
        }

        var (change, dsnId) = await operations.ChangeAsync(record, command, Flag(request, "bounce"), wait.Value, cancellationToken).ConfigureAwait(false);

        if (change == LedgerChange.NotFound)
        {
            return await NotFoundAsync(request, cancellationToken).ConfigureAwait(false);
        }

        if (change == LedgerChange.Busy)
        {
            return await QueueAdminFunctions.JsonAsync(request, HttpStatusCode.Conflict, new ErrorResponse("the message is being delivered; nothing was changed, try again"), cancellationToken).ConfigureAwait(false);
        }

        var after = command == "delete" ? null : await ledger.FindAsync(record.Domain, record.QueueId, cancellationToken).ConfigureAwait(false);
        var outcome = Outcome(command, change);
        LogChanged(logger, record.QueueId, record.Domain, outcome);
        return await QueueAdminFunctions.JsonAsync(
            request,
            HttpStatusCode.OK,
            new MessageChangeResponse(record.QueueId, record.Domain, outcome, after?.IsHeld, after?.ExpiresAt, dsnId),
            cancellationToken).ConfigureAwait(false);
    }

    private async Task<HttpResponseData> ChangeDomainAsync(HttpRequestData request, string domain, bool hold, CancellationToken cancellationToken)
    {
        if (await adminRole.DenyAsync(request, cancellationToken).ConfigureAwait(false) is { } denied)
        {
            return denied;
        }

        ArgumentNullException.ThrowIfNull(request);
        var configured = options.Value.FindDomain(domain);
        if (configured is null)
        {
            return await QueueAdminFunctions.JsonAsync(request, HttpStatusCode.NotFound, new ErrorResponse("domain is not configured"), cancellationToken).ConfigureAwait(false);
        }

        var outcomes = await operations.ChangeDomainAsync(configured.Name, hold, DefaultWait, cancellationToken).ConfigureAwait(false);
        var command = hold ? "hold" : "release";
        var items = outcomes.Select(o => new DomainChangeItem(o.QueueId, Outcome(command, o.Change))).ToList();
        LogDomainChanged(logger, configured.Name, command, items.Count(i => i.Outcome is "held" or "released"));
        return await QueueAdminFunctions.JsonAsync(request, HttpStatusCode.OK, new DomainChangeResponse(configured.Name, items), cancellationToken).ConfigureAwait(false);
    }

    internal static string Outcome(string command, LedgerChange change) => (command, change) switch
    {
        ("hold", LedgerChange.Done) => "held",
        ("hold", LedgerChange.Unchanged) => "alreadyHeld",
        ("release", LedgerChange.Done) => "released",
        ("release", LedgerChange.Unchanged) => "notHeld",
        ("delete", LedgerChange.Done) => "deleted",
        (_, LedgerChange.Busy) => "busy",
        (_, LedgerChange.NotFound) => "notFound",
        _ => JsonNamingPolicy.CamelCase.ConvertName(change.ToString()),
    };

    // The reply does not echo the requested id back: it came from the caller and needs no reflecting.
    private static Task<HttpResponseData> NotFoundAsync(HttpRequestData request, CancellationToken cancellationToken) =>
        QueueAdminFunctions.JsonAsync(request, HttpStatusCode.NotFound, new ErrorResponse("no such message in the spool"), cancellationToken);

    private static bool Flag(HttpRequestData request, string name) =>
        string.Equals(System.Web.HttpUtility.ParseQueryString(request.Url.Query)[name], "true", StringComparison.OrdinalIgnoreCase);

    private static TimeSpan? Wait(HttpRequestData request)
    {
        var given = System.Web.HttpUtility.ParseQueryString(request.Url.Query)["wait"];
        if (given is null)
        {
            return DefaultWait;
        }

        return int.TryParse(given, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds) && seconds <= MaxWait.TotalSeconds
            ? TimeSpan.FromSeconds(seconds)
            : null;
    }

    [LoggerMessage(EventId = 6110, Level = LogLevel.Information, Message = "Admin API: {QueueId} of {Domain} {Outcome}")]
    private static partial void LogChanged(ILogger logger, string queueId, string domain, string outcome);

    [LoggerMessage(EventId = 6111, Level = LogLevel.Information, Message = "Admin API: {Command} of {Domain} changed {Count} message(s)")]
    private static partial void LogDomainChanged(ILogger logger, string domain, string command, int count);
}
