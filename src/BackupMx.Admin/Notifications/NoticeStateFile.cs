using System.Text.Json;

namespace BackupMx.Admin.Notifications;

/// <summary>
/// The notifier's memory, kept in the spool folder (<c>outage-notices.json</c>) so that a restart
/// during an outage neither sends the first notice again nor forgets which messages the recovery
/// notice is to count, nor a notice still waiting for a retry. Written whole, to a temporary file
/// that then replaces the old one, so a crash leaves the old state or the new, never half of one.
/// </summary>
internal sealed class NoticeStateFile(string spoolPath)
{
    public const string FileName = "outage-notices.json";

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    private string? _written;

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetFullPath(spoolPath), FileName);

    /// <summary>The state last saved, or an empty one when there is none.</summary>
    public NoticeState Load()
    {
        if (!File.Exists(Path))
        {
            return new NoticeState();
        }

        _written = File.ReadAllText(Path);
        return JsonSerializer.Deserialize<NoticeState>(_written, Json) ?? new NoticeState();
    }

    /// <summary>Writes <paramref name="state"/> unless it is what the file already holds.</summary>
    public void Save(NoticeState state)
    {
        var text = JsonSerializer.Serialize(state, Json);
        if (text == _written)
        {
            return;
        }

        var temporary = Path + ".tmp";
        using (var stream = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None))
        using (var writer = new StreamWriter(stream))
        {
            writer.Write(text);
            writer.Flush();
            stream.Flush(flushToDisk: true);
        }

        File.Move(temporary, Path, overwrite: true);
        _written = text;
    }
}

internal sealed class NoticeState
{
    public Dictionary<string, OutageState> Outages { get; init; } = new(StringComparer.OrdinalIgnoreCase);

    public List<PendingState> Pending { get; init; } = [];
}

/// <summary>One outage that was notified: since when, the last notice, and the messages it is tracking.</summary>
internal sealed class OutageState
{
    public DateTimeOffset Since { get; init; }

    public DateTimeOffset LastNotice { get; set; }

    public Dictionary<string, DateTimeOffset> Waiting { get; init; } = new(StringComparer.Ordinal);

    public int Delivered { get; set; }

    public TimeSpan LongestWait { get; set; }
}

/// <summary>A notice not sent yet, by one channel.</summary>
internal sealed record PendingState(OutageNotice Notice, string Channel, IReadOnlyList<string> Recipients, int Attempts, DateTimeOffset NotBefore);
