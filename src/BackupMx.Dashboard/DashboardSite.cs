using System.Globalization;
using BackupMx.Core.Inspection;
using BackupMx.Core.Monitoring;
using BackupMx.Core.Spool;

namespace BackupMx.Dashboard;

/// <summary>One request to the dashboard, as either host sees it.</summary>
/// <param name="Method">GET or POST.</param>
/// <param name="Path">The path below the dashboard's base, URL-encoded as sent ("/", "/domains/example.com").</param>
/// <param name="Query">A query parameter's value, or null.</param>
/// <param name="Form">A posted form field's value, or null (GET: always null).</param>
/// <param name="Referer">The Referer header, empty when absent.</param>
public sealed record DashboardRequest(string Method, string Path, Func<string, string?> Query, Func<string, string?> Form, string Referer);

/// <summary>What a host sends back: a page, an asset, or a redirect (303 with <paramref name="Location"/>).</summary>
/// <param name="Done">What a POST changed, for the host's log; null for GET.</param>
public sealed record DashboardResponse(int Status, string Body, string ContentType, string? Location, DashboardAction? Done);

/// <summary>What one button did: <paramref name="Op"/> flush, hold, release or delete; <paramref name="QueueId"/> null for a whole domain.</summary>
public sealed record DashboardAction(string Op, string Domain, string? QueueId, string Outcome);

/// <summary>
/// The dashboard's pages and buttons, with no web framework: the embedded endpoint and the function
/// app parse the HTTP request, check who may ask and whether a POST is the dashboard's own, and hand
/// the rest here. Reads go through <see cref="QueueInspector"/>, flush through <see cref="DomainFlusher"/>,
/// and hold, release and delete through <see cref="MessageOperations"/>, as the operator's commands and
/// the admin API do: a message being delivered is waited for up to <see cref="ActionNotice.Wait"/>.
/// </summary>
public sealed class DashboardSite(QueueInspector inspector, DomainFlusher flusher, MessageOperations operations, TimeProvider time)
{
    public const string HtmlContentType = "text/html; charset=utf-8";

    /// <summary>The answer, or null when <see cref="DashboardRequest.Path"/> is not a dashboard page (the host answers 404).</summary>
    public async Task<DashboardResponse?> HandleAsync(DashboardRequest request, DashboardPages pages, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(pages);
        var s = Segments(request.Path);
        var get = string.Equals(request.Method, "GET", StringComparison.OrdinalIgnoreCase);
        var post = string.Equals(request.Method, "POST", StringComparison.OrdinalIgnoreCase);
        if (get)
        {
            return s switch
            {
                [] => await HomeAsync(request, pages, cancellationToken).ConfigureAwait(false),
                ["assets", "admin.css"] => new(200, Assets.Css, "text/css; charset=utf-8", null, null),
                ["assets", "admin.js"] => new(200, Assets.Script, "text/javascript; charset=utf-8", null, null),
                ["domains", var d] => await DomainAsync(request, pages, d, cancellationToken).ConfigureAwait(false),
                ["domains", var d, "messages", var id] => await MessageAsync(request, pages, d, id, cancellationToken).ConfigureAwait(false),
                ["domains", var d, "messages", var id, "delete"] => await ConfirmDeleteAsync(pages, d, id, cancellationToken).ConfigureAwait(false),
                _ => null,
            };
        }

        if (post)
        {
            return s switch
            {
                ["domains", var d, "flush"] => await FlushAsync(request, pages, d, cancellationToken).ConfigureAwait(false),
                ["domains", var d, ActionNotice.Hold or ActionNotice.Release] => await ChangeDomainAsync(pages, d, s[2], cancellationToken).ConfigureAwait(false),
                ["domains", var d, "messages", var id, ActionNotice.Hold or ActionNotice.Release or ActionNotice.Delete] =>
                    await ChangeMessageAsync(request, pages, d, id, s[4], cancellationToken).ConfigureAwait(false),
                _ => null,
            };
        }

        return null;
    }

    private async Task<DashboardResponse> HomeAsync(DashboardRequest request, DashboardPages pages, CancellationToken ct)
    {
        var summaries = await inspector.SummarizeAsync(ct).ConfigureAwait(false);
        var quarantined = await inspector.ListQuarantinedAsync(null, ct).ConfigureAwait(false);
        return Page(200, pages.Home(summaries, quarantined, time.GetUtcNow(), ActionNotice.From(request.Query)));
    }

    private async Task<DashboardResponse> DomainAsync(DashboardRequest request, DashboardPages pages, string domain, CancellationToken ct)
    {
        var messages = await inspector.ListAsync(domain, ct).ConfigureAwait(false);
        var quarantined = await inspector.ListQuarantinedAsync(domain, ct).ConfigureAwait(false);
        return Page(200, pages.Domain(domain, messages, quarantined, time.GetUtcNow(), ActionNotice.From(request.Query)));
    }

    private async Task<DashboardResponse> MessageAsync(DashboardRequest request, DashboardPages pages, string domain, string queueId, CancellationToken ct)
    {
        var message = await FindAsync(domain, queueId, ct).ConfigureAwait(false);
        return Page(message is null ? 404 : 200, pages.Message(domain, message, queueId, ActionNotice.From(request.Query)));
    }

    // Deleting asks first, on a page of its own: no script, and the question is read out like any page.
    private async Task<DashboardResponse> ConfirmDeleteAsync(DashboardPages pages, string domain, string queueId, CancellationToken ct)
    {
        var message = await FindAsync(domain, queueId, ct).ConfigureAwait(false);
        return Page(message is null ? 404 : 200, pages.ConfirmDelete(domain, message, queueId));
    }

    private async Task<DashboardResponse> FlushAsync(DashboardRequest request, DashboardPages pages, string domain, CancellationToken ct)
    {
        var flushed = await flusher.FlushAsync(domain, "operator request (dashboard)", ct).ConfigureAwait(false);

        // Back to the page the button was on, which then says what happened.
        var back = request.Referer.Contains("/domains/", StringComparison.Ordinal) ? "/domains/" + Html.Url(domain) : "/";
        return SeeOther(
            pages,
            string.Create(CultureInfo.InvariantCulture, $"{back}?flushed={flushed}&domain={Html.Url(domain)}"),
            new DashboardAction("flush", domain, null, flushed.ToString(CultureInfo.InvariantCulture)));
    }

    /// <summary>
    /// Hold, release or delete of one message. A delete must carry confirm=yes, which only the
    /// confirmation page's form sends; without it the browser is sent to that page.
    /// </summary>
    private async Task<DashboardResponse> ChangeMessageAsync(DashboardRequest request, DashboardPages pages, string domain, string queueId, string op, CancellationToken ct)
    {
        var message = $"/domains/{Html.Url(domain)}/messages/{Html.Url(queueId)}";
        if (op == ActionNotice.Delete && request.Form("confirm") != "yes")
        {
            return SeeOther(pages, message + "/delete", null);
        }

        var record = await operations.FindAsync(queueId, ct).ConfigureAwait(false);
        var outcome = record is null || !string.Equals(record.Domain, domain, StringComparison.OrdinalIgnoreCase)
            ? LedgerChange.NotFound
            : (await operations.ChangeAsync(record, op, notify: false, ActionNotice.Wait, ct).ConfigureAwait(false)).Change;

        // A deleted message has no page left: back to its domain's list.
        var back = op == ActionNotice.Delete && outcome is LedgerChange.Done or LedgerChange.NotFound ? $"/domains/{Html.Url(domain)}" : message;
        return SeeOther(pages, back + "?" + ActionNotice.Query(op, outcome, queueId), new DashboardAction(op, domain, queueId, outcome.ToString()));
    }

    /// <summary>The same change for every message queued for the domain.</summary>
    private async Task<DashboardResponse> ChangeDomainAsync(DashboardPages pages, string domain, string op, CancellationToken ct)
    {
        var outcomes = await operations.ChangeDomainAsync(domain, op == ActionNotice.Hold, ActionNotice.Wait, ct).ConfigureAwait(false);
        var changed = outcomes.Count(o => o.Change == LedgerChange.Done);
        var busy = outcomes.Count(o => o.Change == LedgerChange.Busy);
        return SeeOther(
            pages,
            $"/domains/{Html.Url(domain)}?" + ActionNotice.DomainQuery(op, domain, changed, busy),
            new DashboardAction(op, domain, null, string.Create(CultureInfo.InvariantCulture, $"{changed} changed, {busy} being delivered and left alone")));
    }

    private async Task<QueuedMessageView?> FindAsync(string domain, string queueId, CancellationToken ct)
    {
        var messages = await inspector.ListAsync(domain, ct).ConfigureAwait(false);
        return messages.FirstOrDefault(m => string.Equals(m.QueueId, queueId, StringComparison.Ordinal));
    }

    private static DashboardResponse Page(int status, string html) => new(status, html, HtmlContentType, null, null);

    private static DashboardResponse SeeOther(DashboardPages pages, string path, DashboardAction? done) =>
        new(303, "", HtmlContentType, pages.Links.To(path), done);

    /// <summary>The path's segments, each URL-decoded (and a domain trimmed, as typed); none for the root.</summary>
    private static string[] Segments(string path) =>
        path.Split('/', StringSplitOptions.RemoveEmptyEntries).Select(p => Uri.UnescapeDataString(p).Trim()).ToArray();
}
