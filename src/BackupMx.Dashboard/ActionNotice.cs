using System.Globalization;
using BackupMx.Core.Spool;

namespace BackupMx.Dashboard;

/// <summary>A line at the top of a page that says what the last button did; a problem is announced at once.</summary>
public sealed record PageNotice(string Text, bool Problem);

/// <summary>
/// The outcome of a dashboard action, carried from the POST to the page it redirects to (POST, then
/// 303, then GET, so a reload repeats nothing). The query holds only words from fixed sets and
/// numbers; the queue id and domain it names are HTML-encoded like everything else on the page.
/// </summary>
public static class ActionNotice
{
    public const string Hold = "hold";
    public const string Release = "release";
    public const string Delete = "delete";

    /// <summary>
    /// How long a hold or delete waits for a delivery in progress to end: a delivery attempt usually
    /// ends within seconds, and a browser waits this long for a page without giving up.
    /// </summary>
    public static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    public static string Query(string op, LedgerChange outcome, string queueId) =>
        $"op={op}&outcome={Outcome(outcome)}&id={Html.Url(queueId)}";

    public static string DomainQuery(string op, string domain, int changed, int busy) =>
        string.Create(CultureInfo.InvariantCulture, $"op={op}&changed={changed}&busy={busy}&domain={Html.Url(domain)}");

    /// <summary>The notice the query of a redirect after an action asks for; <paramref name="query"/> gives a parameter's value or null.</summary>
    public static PageNotice? From(Func<string, string?> query)
    {
        ArgumentNullException.ThrowIfNull(query);
        if (int.TryParse(query("flushed"), NumberStyles.None, CultureInfo.InvariantCulture, out var flushed))
        {
            var domain = (query("domain") ?? "");
            return new(
                flushed > 0
                    ? string.Create(CultureInfo.InvariantCulture, $"Flushed {domain}: {flushed} message(s) are due now and go out within seconds if the primary answers.")
                    : $"Flushed {domain}: nothing to do, its messages are already due, held or being delivered.",
                Problem: false);
        }

        var op = (query("op") ?? "");
        if (op is not (Hold or Release or Delete))
        {
            return null;
        }

        if (int.TryParse(query("changed"), NumberStyles.None, CultureInfo.InvariantCulture, out var changed)
            && int.TryParse(query("busy"), NumberStyles.None, CultureInfo.InvariantCulture, out var busy))
        {
            return ForDomain(op, (query("domain") ?? ""), changed, busy);
        }

        var id = (query("id") ?? "");
        return query("outcome") switch
        {
            "done" => new(op switch
            {
                Hold => $"Held {id}: it is not delivered, flushed or expired until it is released.",
                Release => $"Released {id}: it is due now and goes out within seconds if the primary answers.",
                _ => $"Deleted {id}: it was removed from the spool without being delivered, and no one was told.",
            }, Problem: false),
            "unchanged" => new(op == Hold ? $"{id} was already held." : $"{id} was not held; nothing changed.", Problem: false),
            "notfound" => new($"{id} is no longer queued: it was delivered, bounced, expired or deleted.", Problem: true),
            "busy" => new(string.Create(CultureInfo.InvariantCulture, $"{id} is being delivered right now and its delivery did not end within {Wait.TotalSeconds:0} seconds, so it was not {(op == Hold ? "held" : op == Delete ? "deleted" : "released")}. Nothing changed; try again in a minute (if the delivery succeeds, the message leaves the queue)."), Problem: true),
            _ => null,
        };
    }

    private static PageNotice ForDomain(string op, string domain, int changed, int busy)
    {
        var verb = op == Hold ? "Held" : "Released";
        var text = op == Hold
            ? string.Create(CultureInfo.InvariantCulture, $"{verb} {changed} message(s) of {domain}: they are not delivered until released.")
            : string.Create(CultureInfo.InvariantCulture, $"{verb} {changed} message(s) of {domain}: they are due now.");
        if (busy > 0)
        {
            text += string.Create(CultureInfo.InvariantCulture, $" {busy} message(s) were being delivered, their deliveries did not end within {Wait.TotalSeconds:0} seconds, and they were not changed; try again in a minute.");
        }

        return new(text, Problem: busy > 0);
    }

    private static string Outcome(LedgerChange outcome) => outcome switch
    {
        LedgerChange.Done => "done",
        LedgerChange.Unchanged => "unchanged",
        LedgerChange.NotFound => "notfound",
        _ => "busy",
    };
}
