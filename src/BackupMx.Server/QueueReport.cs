using System.Globalization;
using System.Text;
using System.Text.Json;
using BackupMx.Core.Configuration;
using BackupMx.Core.Forwarding;
using BackupMx.Core.Inspection;
using BackupMx.Core.Monitoring;
using BackupMx.Core.Ports;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace BackupMx.Server;

/// <summary>
/// <c>queue --json</c>, <c>queue DOMAIN --json</c> and <c>queue --ages [--json]</c>: the queue for
/// scripts (a documented, versioned JSON schema: docs/queue-json.md) and by age, like qshape.
/// </summary>
internal sealed class QueueReport
{
    public const string JsonFlag = "--json";
    public const string AgesFlag = "--ages";

    /// <summary>Changes only by adding members; a removal or a change of meaning gets a new number.</summary>
    public const int JsonSchemaVersion = 1;

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public bool Json { get; private init; }

    public bool Ages { get; private init; }

    /// <summary>Takes this report's flags out of the options, which go on to the configuration.</summary>
    public static QueueReport Parse(ref string[] options)
    {
        var report = new QueueReport { Json = options.Contains(JsonFlag, StringComparer.Ordinal), Ages = options.Contains(AgesFlag, StringComparer.Ordinal) };
        options = options.Where(o => o is not (JsonFlag or AgesFlag)).ToArray();
        return report;
    }

    /// <summary><c>--json</c> is for <c>queue</c> and <c>flush</c>; <c>--ages</c> for <c>queue</c> alone, and it covers every domain.</summary>
    public bool FitsCommand(string[] positional) =>
        !Ages || (positional[0] == "queue" && positional.Length == 1);

    public async Task<int> RunAsync(IServiceProvider services, string spoolPath, string? domainName, CancellationToken ct)
    {
        var inspector = services.GetRequiredService<QueueInspector>();
        if (Ages)
        {
            var table = new QueueAgeTable(services.GetRequiredService<TimeProvider>().GetUtcNow());
            await foreach (var record in services.GetRequiredService<ISpoolStore>().ListAllAsync(ct).ConfigureAwait(false))
            {
                table.Add(record);
            }

            Console.Out.Write(Json ? AgesJson(spoolPath, table) : AgesText(table));
            return 0;
        }

        if (domainName is null)
        {
            var summaries = await inspector.SummarizeAsync(ct).ConfigureAwait(false);
            var quarantined = await inspector.ListQuarantinedAsync(null, ct).ConfigureAwait(false);
            Write(new
            {
                schema = JsonSchemaVersion,
                spool = spoolPath,
                domains = summaries.Select(s => new
                {
                    domain = s.Domain,
                    messages = s.Messages,
                    recipients = s.Recipients,
                    oldestAgeSeconds = s.OldestAge is { } age ? (long?)age.TotalSeconds : null,
                    primaryState = s.PrimaryState.ToString(),
                    primaryStateSince = s.PrimaryStateSince,
                    lastError = s.LastError,
                }),
                quarantined = Quarantined(quarantined),
            });
            return 0;
        }

        var config = services.GetRequiredService<IOptions<BackupMxOptions>>().Value;
        var configured = config.FindDomain(domainName);
        var domain = configured?.Name ?? domainName;
        var messages = await inspector.ListAsync(domain, ct).ConfigureAwait(false);
        var unreadable = await inspector.ListQuarantinedAsync(domain, ct).ConfigureAwait(false);
        if (configured is null && messages.Count == 0 && unreadable.Count == 0)
        {
            await Console.Error.WriteLineAsync($"{domain} is not a configured domain and nothing is queued for it").ConfigureAwait(false);
            return AdminCommands.ExitUnknownDomain;
        }

        Write(new
        {
            schema = JsonSchemaVersion,
            spool = spoolPath,
            domain,
            messages = messages.Select(m => new
            {
                queueId = m.QueueId,
                kind = m.Kind.ToString(),
                sender = m.Sender,
                pendingRecipients = m.PendingRecipients,
                receivedAt = m.ReceivedAt,
                nextAttemptAt = m.NextAttemptAt,
                expiresAt = m.ExpiresAt,
                attempts = m.Attempts,
                bytes = m.Bytes,
                lastError = m.LastError,
            }),
            quarantined = Quarantined(unreadable),
        });
        return 0;
    }

    /// <summary>
    /// <c>flush DOMAIN --json</c>: what the flush made due and what is queued after it. The count
    /// queued is read after the flush, so it includes messages a relay was delivering meanwhile.
    /// </summary>
    public static async Task<int> FlushAsync(IServiceProvider services, string spoolPath, string domainName, CancellationToken ct)
    {
        var config = services.GetRequiredService<IOptions<BackupMxOptions>>().Value;
        var configured = config.FindDomain(domainName);
        var domain = configured?.Name ?? domainName;
        var flushed = await services.GetRequiredService<DomainFlusher>().FlushAsync(domain, "operator request", ct).ConfigureAwait(false);
        var inspector = services.GetRequiredService<QueueInspector>();
        var messages = await inspector.ListAsync(domain, ct).ConfigureAwait(false);
        var unreadable = await inspector.ListQuarantinedAsync(domain, ct).ConfigureAwait(false);
        if (configured is null && flushed == 0 && messages.Count == 0 && unreadable.Count == 0)
        {
            await Console.Error.WriteLineAsync($"{domain} is not a configured domain and nothing is queued for it").ConfigureAwait(false);
            return AdminCommands.ExitUnknownDomain;
        }

        Write(new
        {
            schema = JsonSchemaVersion,
            spool = spoolPath,
            command = "flush",
            domain,
            queued = messages.Count,
            flushed,
            pickupSeconds = (int)DueMessagePump.MaxIdle.TotalSeconds,
            quarantined = Quarantined(unreadable),
        });
        return 0;
    }

    internal static string AgesText(QueueAgeTable table)
    {
        var text = new StringBuilder();
        var width = Math.Max(10, table.Rows.Keys.Select(k => k.Length).DefaultIfEmpty(0).Max());
        text.Append(string.Empty.PadRight(width)).Append(CultureInfo.InvariantCulture, $" {"T",6}");
        foreach (var minutes in QueueAgeTable.BucketMinutes)
        {
            text.Append(CultureInfo.InvariantCulture, $" {minutes,6}");
        }

        text.Append(CultureInfo.InvariantCulture, $" {QueueAgeTable.BucketMinutes[^1] + "+",6}\n");
        AppendRow(text, width, "TOTAL", table.Totals);
        foreach (var (domain, row) in table.Rows.OrderByDescending(r => r.Value.Sum()).ThenBy(r => r.Key, StringComparer.OrdinalIgnoreCase))
        {
            AppendRow(text, width, domain, row);
        }

        return text.ToString();
    }

    private static void AppendRow(StringBuilder text, int width, string name, int[] counts)
    {
        text.Append(name.PadRight(width)).Append(CultureInfo.InvariantCulture, $" {counts.Sum(),6}");
        foreach (var count in counts)
        {
            text.Append(CultureInfo.InvariantCulture, $" {count,6}");
        }

        text.Append('\n');
    }

    private static string AgesJson(string spoolPath, QueueAgeTable table) => JsonSerializer.Serialize(
        new
        {
            schema = JsonSchemaVersion,
            spool = spoolPath,
            bucketMinutes = QueueAgeTable.BucketMinutes,
            total = new { messages = table.Totals.Sum(), counts = table.Totals },
            domains = table.Rows.Select(r => new { domain = r.Key, messages = r.Value.Sum(), counts = r.Value }),
        },
        Indented) + "\n";

    private static IEnumerable<object> Quarantined(IReadOnlyList<QuarantinedRecord> records) =>
        records.Select(q => new { queueId = q.QueueId, domain = q.Domain, reason = q.Reason });

    private static void Write(object document) => Console.Out.Write(JsonSerializer.Serialize(document, Indented) + "\n");
}
