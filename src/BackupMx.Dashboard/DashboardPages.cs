using System.Globalization;
using System.Text;
using BackupMx.Core.Inspection;
using BackupMx.Core.Ports;
using static BackupMx.Dashboard.Html;

namespace BackupMx.Dashboard;

/// <summary>
/// The dashboard's pages as HTML: the domains, one domain's messages, one message. The part that
/// changes lives in <c>#live</c>, which the script swaps on refresh; controls in it have ids that
/// stay the same from one refresh to the next, so keyboard focus survives. Every URL goes through
/// <paramref name="links"/>, so the same markup serves the embedded endpoint and the function app.
/// </summary>
public sealed class DashboardPages(string hostName, string formToken, TimeSpan refresh, DashboardLinks links)
{
    /// <summary>What a message's page says once the message is not in the spool: on the page, and in place of a refresh that finds it gone.</summary>
    public const string MessageGone = "This message has left the spool: it was delivered, bounced, expired or deleted.";

    private int RefreshSeconds => (int)Math.Max(1, refresh.TotalSeconds);

    public DashboardLinks Links => links;

    /// <summary>A dashboard URL, HTML-encoded for an attribute.</summary>
    private string L(string path) => E(links.To(path));

    public string Home(IReadOnlyList<DomainQueueSummary> domains, IReadOnlyList<QuarantinedRecord> quarantined, DateTimeOffset now, PageNotice? notice)
    {
        var b = new StringBuilder();
        b.Append("<h1>Queue by domain</h1>\n");
        Notice(b, notice);
        RefreshControl(b);
        b.Append("<div id=\"live\">\n");
        b.Append("<table id=\"domains\">\n<caption>Domains, as of ").Append(E(Time(now))).Append("</caption>\n<thead><tr>")
            .Append("<th scope=\"col\">Domain</th><th scope=\"col\" class=\"num\">Messages</th><th scope=\"col\" class=\"num\">Recipients</th><th scope=\"col\">Oldest</th>")
            .Append("<th scope=\"col\">Primary</th><th scope=\"col\">Since</th><th scope=\"col\">Last error</th><th scope=\"col\">Action</th></tr></thead>\n<tbody>\n");
        foreach (var d in domains)
        {
            var key = Key(d.Domain);
            b.Append(CultureInfo.InvariantCulture, $"<tr data-domain=\"{E(d.Domain)}\">")
                .Append(CultureInfo.InvariantCulture, $"<th scope=\"row\"><a id=\"open-{key}\" href=\"{L($"/domains/{Url(d.Domain)}")}\">{E(d.Domain)}</a></th>")
                .Append(CultureInfo.InvariantCulture, $"<td class=\"num\" data-field=\"messages\">{d.Messages}</td>")
                .Append(CultureInfo.InvariantCulture, $"<td class=\"num\" data-field=\"recipients\">{d.Recipients}</td>")
                .Append("<td data-field=\"oldest\">").Append(E(Age(d.OldestAge))).Append("</td>")
                .Append("<td data-field=\"primary\">").Append(State(d.PrimaryState)).Append("</td>")
                .Append("<td data-field=\"since\">").Append(E(Time(d.PrimaryStateSince))).Append("</td>")
                .Append("<td data-field=\"error\">").Append(E(d.LastError ?? "-")).Append("</td><td>");
            FlushForm(b, d.Domain, d.Messages > 0);
            b.Append("</td></tr>\n");
        }

        b.Append("</tbody>\n</table>\n");
        if (domains.Count == 0)
        {
            b.Append("<p>No domains are configured and nothing is queued.</p>\n");
        }

        Quarantined(b, quarantined);
        b.Append("</div>\n");
        return Page("Queue", hostName, b.ToString(), RefreshSeconds, links);
    }

    public string Domain(string domain, IReadOnlyList<QueuedMessageView> messages, IReadOnlyList<QuarantinedRecord> quarantined, DateTimeOffset now, PageNotice? notice)
    {
        var b = new StringBuilder();
        b.Append("<p><a href=\"").Append(L("/")).Append("\">All domains</a></p>\n<h1>Queued for ").Append(E(domain)).Append("</h1>\n");
        Notice(b, notice);
        RefreshControl(b);
        b.Append("<div id=\"live\">\n<p class=\"actions\">");
        FlushForm(b, domain, messages.Count > 0);
        if (messages.Any(m => m.HeldAt is null))
        {
            b.Append(' ');
            PostForm(b, $"/domains/{Url(domain)}/hold", "hold-all", "Hold all", "messages of " + domain);
        }

        if (messages.Any(m => m.HeldAt is not null))
        {
            b.Append(' ');
            PostForm(b, $"/domains/{Url(domain)}/release", "release-all", "Release all", "held messages of " + domain);
        }

        b.Append("</p>\n");
        if (messages.Count == 0)
        {
            b.Append(CultureInfo.InvariantCulture, $"<p id=\"empty\">Nothing queued for {E(domain)} as of {E(Time(now))}.</p>\n");
        }
        else
        {
            b.Append("<table id=\"messages\">\n<caption>").Append(messages.Count.ToString(CultureInfo.InvariantCulture)).Append(" message(s), as of ").Append(E(Time(now))).Append("</caption>\n<thead><tr>")
                .Append("<th scope=\"col\">Queue id</th><th scope=\"col\">Sender</th><th scope=\"col\">Waiting recipients</th><th scope=\"col\">Received</th>")
                .Append("<th scope=\"col\">Next attempt</th><th scope=\"col\" class=\"num\">Attempts</th><th scope=\"col\" class=\"num\">Size</th><th scope=\"col\">Last error</th><th scope=\"col\">Actions</th></tr></thead>\n<tbody>\n");
            foreach (var m in messages)
            {
                b.Append(CultureInfo.InvariantCulture, $"<tr data-queue-id=\"{E(m.QueueId)}\">")
                    .Append(CultureInfo.InvariantCulture, $"<th scope=\"row\"><a id=\"msg-{Key(m.QueueId)}\" href=\"{L($"/domains/{Url(domain)}/messages/{Url(m.QueueId)}")}\">{E(m.QueueId)}</a></th>")
                    .Append("<td>").Append(E(Sender(m.Sender))).Append("</td>")
                    .Append("<td>").Append(E(string.Join(", ", m.PendingRecipients))).Append("</td>")
                    .Append("<td>").Append(E(Time(m.ReceivedAt))).Append("</td>")
                    .Append("<td data-field=\"next\">").Append(NextAttempt(m)).Append("</td>")
                    .Append(CultureInfo.InvariantCulture, $"<td class=\"num\">{m.Attempts}</td>")
                    .Append(CultureInfo.InvariantCulture, $"<td class=\"num\">{m.Bytes}</td>")
                    .Append("<td>").Append(E(m.LastError ?? (m.Attempts == 0 ? "not tried yet" : "-"))).Append("</td><td class=\"actions\">");
                MessageActions(b, domain, m);
                b.Append("</td></tr>\n");
            }

            b.Append("</tbody>\n</table>\n");
        }

        Quarantined(b, quarantined);
        b.Append("</div>\n");
        return Page(domain, hostName, b.ToString(), RefreshSeconds, links);
    }

    public string Message(string domain, QueuedMessageView? m, string queueId, PageNotice? notice)
    {
        var b = new StringBuilder();
        Breadcrumb(b, domain);
        b.Append("<h1>Message ").Append(E(queueId)).Append("</h1>\n");
        Notice(b, notice);
        if (m is null)
        {
            b.Append("<p id=\"gone\">").Append(E(MessageGone)).Append("</p>\n");
            return Page(queueId, hostName, b.ToString(), RefreshSeconds, links);
        }

        RefreshControl(b);
        b.Append("<div id=\"live\">\n<dl id=\"detail\">\n");
        Item(b, "Queue id", m.QueueId);
        Item(b, "Kind", m.Kind.ToString());
        Item(b, "Sender", Sender(m.Sender));
        Item(b, "Waiting recipients", string.Join(", ", m.PendingRecipients));
        Item(b, "Received", Time(m.ReceivedAt));
        b.Append("<dt>State</dt><dd data-field=\"state\">").Append(StateOf(m)).Append("</dd>\n");
        Item(b, "Next attempt", m.HeldAt is null ? Time(m.NextAttemptAt) : "none while held");
        Item(b, "Expires", Time(m.ExpiresAt));
        Item(b, "Attempts", m.Attempts.ToString(CultureInfo.InvariantCulture));
        Item(b, "Size", m.Bytes.ToString(CultureInfo.InvariantCulture) + " bytes");
        Item(b, "Last error", m.LastError ?? (m.Attempts == 0 ? "not tried yet" : "-"));
        b.Append("</dl>\n<p class=\"actions\">");
        MessageActions(b, domain, m);
        b.Append("</p>\n</div>\n");
        return Page(queueId, hostName, b.ToString(), RefreshSeconds, links, MessageGone);
    }

    /// <summary>The question before a delete, as a page of its own: it works without script and is read like any page.</summary>
    public string ConfirmDelete(string domain, QueuedMessageView? m, string queueId)
    {
        var b = new StringBuilder();
        Breadcrumb(b, domain);
        b.Append("<h1>Delete message ").Append(E(queueId)).Append("?</h1>\n");
        if (m is null)
        {
            b.Append("<p>This message is no longer queued: it was delivered, bounced, expired or deleted.</p>\n");
            return Page("Delete " + queueId, hostName, b.ToString(), 0, links);
        }

        b.Append("<p id=\"confirm-text\">The message from ").Append(E(Sender(m.Sender))).Append(" to ").Append(E(string.Join(", ", m.PendingRecipients)))
            .Append(CultureInfo.InvariantCulture, $", {m.Bytes} bytes, received {E(Time(m.ReceivedAt))}, is removed from the spool. ")
            .Append("It is not delivered, and neither its sender nor its recipients are told. This cannot be undone.</p>\n")
            .Append(CultureInfo.InvariantCulture, $"<form method=\"post\" action=\"{L($"/domains/{Url(domain)}/messages/{Url(queueId)}/delete")}\" aria-describedby=\"confirm-text\">")
            .Append(CultureInfo.InvariantCulture, $"<input type=\"hidden\" name=\"{CrossSiteCheck.FormTokenField}\" value=\"{E(formToken)}\">")
            .Append("<input type=\"hidden\" name=\"confirm\" value=\"yes\">")
            .Append("<p><button type=\"submit\" class=\"danger\" id=\"confirm-delete\">Delete ").Append(E(queueId)).Append("</button> ")
            .Append(CultureInfo.InvariantCulture, $"<a id=\"keep\" href=\"{L($"/domains/{Url(domain)}/messages/{Url(queueId)}")}\">No, keep it</a></p></form>\n");
        return Page("Delete " + queueId, hostName, b.ToString(), 0, links);
    }

    public string Login(bool failed)
    {
        var b = new StringBuilder();
        b.Append("<h1>Sign in</h1>\n");
        if (failed)
        {
            b.Append("<p class=\"problem\" role=\"alert\" id=\"login-error\">That token is not the one configured in BackupMx:Admin:Token.</p>\n");
        }

        b.Append("<form method=\"post\" action=\"").Append(L("/login")).Append("\">\n")
            .Append(CultureInfo.InvariantCulture, $"<input type=\"hidden\" name=\"{CrossSiteCheck.FormTokenField}\" value=\"{E(formToken)}\">\n")
            .Append("<p><label for=\"token\">Admin token (BackupMx:Admin:Token)</label><br>\n")
            .Append("<input type=\"password\" id=\"token\" name=\"token\" autocomplete=\"current-password\" required autofocus")
            .Append(failed ? " aria-describedby=\"login-error\"" : "").Append("></p>\n")
            .Append("<p><button type=\"submit\">Sign in</button></p>\n</form>\n");
        return Page("Sign in", hostName, b.ToString(), 0, links);
    }

    private void FlushForm(StringBuilder b, string domain, bool anything)
    {
        if (!anything)
        {
            b.Append("<span class=\"visually-hidden\">nothing to flush</span>");
            return;
        }

        var key = Key(domain);
        b.Append(CultureInfo.InvariantCulture, $"<form class=\"inline\" method=\"post\" action=\"{L($"/domains/{Url(domain)}/flush")}\">")
            .Append(CultureInfo.InvariantCulture, $"<input type=\"hidden\" name=\"{CrossSiteCheck.FormTokenField}\" value=\"{E(formToken)}\">")
            .Append(CultureInfo.InvariantCulture, $"<button type=\"submit\" id=\"flush-{key}\">Flush <span class=\"visually-hidden\">{E(domain)}</span></button></form>");
    }

    /// <summary>Hold or release (a form each), and a link to the delete question; every control names its message.</summary>
    private void MessageActions(StringBuilder b, string domain, QueuedMessageView m)
    {
        var key = Key(m.QueueId);
        var path = $"/domains/{Url(domain)}/messages/{Url(m.QueueId)}";
        if (m.HeldAt is null)
        {
            PostForm(b, path + "/hold", "hold-" + key, "Hold", m.QueueId);
        }
        else
        {
            PostForm(b, path + "/release", "release-" + key, "Release", m.QueueId);
        }

        b.Append(CultureInfo.InvariantCulture, $" <a class=\"button danger\" id=\"delete-{key}\" href=\"{L(path + "/delete")}\">Delete <span class=\"visually-hidden\">{E(m.QueueId)}</span></a>");
    }

    private void PostForm(StringBuilder b, string action, string id, string label, string about) =>
        b.Append(CultureInfo.InvariantCulture, $"<form class=\"inline\" method=\"post\" action=\"{L(action)}\">")
            .Append(CultureInfo.InvariantCulture, $"<input type=\"hidden\" name=\"{CrossSiteCheck.FormTokenField}\" value=\"{E(formToken)}\">")
            .Append(CultureInfo.InvariantCulture, $"<button type=\"submit\" id=\"{id}\">{E(label)} <span class=\"visually-hidden\">{E(about)}</span></button></form>");

    private void Breadcrumb(StringBuilder b, string domain) =>
        b.Append("<p><a href=\"").Append(L("/")).Append("\">All domains</a> &gt; <a href=\"").Append(L("/domains/" + Url(domain))).Append("\">").Append(E(domain)).Append("</a></p>\n");

    private static string StateOf(QueuedMessageView m) =>
        m.HeldAt is { } held ? "<span class=\"state-held\">Held</span> since " + E(Time(held)) : "Waiting for delivery";

    private static string NextAttempt(QueuedMessageView m) =>
        m.HeldAt is null ? E(Time(m.NextAttemptAt)) : "<span class=\"state-held\">Held</span>";

    private void RefreshControl(StringBuilder b) =>
        b.Append("<p class=\"controls\"><input type=\"checkbox\" id=\"auto-refresh\" checked disabled> ")
            .Append(CultureInfo.InvariantCulture, $"<label for=\"auto-refresh\">Refresh every {RefreshSeconds} s</label> ")
            .Append("<span id=\"refresh-status\" role=\"status\"></span></p>\n");

    private static void Notice(StringBuilder b, PageNotice? notice)
    {
        if (notice is not null)
        {
            b.Append(notice.Problem ? "<p class=\"problem\" role=\"alert\" id=\"notice\">" : "<p class=\"notice\" role=\"status\" id=\"notice\">")
                .Append(E(notice.Text)).Append("</p>\n");
        }
    }

    private static void Quarantined(StringBuilder b, IReadOnlyList<QuarantinedRecord> quarantined)
    {
        if (quarantined.Count == 0)
        {
            return;
        }

        b.Append("<h2>Quarantined</h2>\n<p>These records could not be read. They are neither delivered nor expired and wait for an operator; their bodies stay in the spool folder under the same queue ids.</p>\n")
            .Append("<table id=\"quarantined\"><thead><tr><th scope=\"col\">Queue id</th><th scope=\"col\">Domain</th><th scope=\"col\">Reason</th></tr></thead><tbody>\n");
        foreach (var q in quarantined)
        {
            b.Append("<tr><td>").Append(E(q.QueueId)).Append("</td><td>").Append(E(q.Domain)).Append("</td><td>").Append(E(q.Reason)).Append("</td></tr>\n");
        }

        b.Append("</tbody></table>\n");
    }

    private static void Item(StringBuilder b, string term, string value) =>
        b.Append("<dt>").Append(E(term)).Append("</dt><dd>").Append(E(value)).Append("</dd>\n");

    private static string State(PrimaryState state) => state switch
    {
        PrimaryState.Down => "<span class=\"state-down\">Down</span>",
        PrimaryState.Up => "<span class=\"state-up\">Up</span>",
        _ => "<span class=\"state-unknown\">" + E(state.ToString()) + "</span>",
    };

    private static string Sender(string sender) => sender.Length == 0 ? "<> (null sender)" : sender;

    /// <summary>A token for element ids that is the same on every render of the same name.</summary>
    private static string Key(string name)
    {
        var key = new StringBuilder(name.Length);
        foreach (var c in name.ToLowerInvariant())
        {
            key.Append(char.IsAsciiLetterOrDigit(c) ? c : '-');
        }

        return key.ToString();
    }
}
