using System.Text.Json;
using BackupMx.Core.Notifications;

namespace BackupMx.Admin.Notifications;

/// <summary>
/// The notifier's memory, kept in the spool folder (<c>outage-notices.json</c>) so that a restart
/// during an outage neither sends the first notice again nor forgets which messages the recovery
/// notice is to count, nor a notice still waiting for a retry. Written whole, to a temporary file
/// that then replaces the old one, so a crash leaves the old state or the new, never half of one.
/// </summary>
internal sealed class NoticeStateFile(string spoolPath) : INoticeStateStore
{
    public const string FileName = "outage-notices.json";

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    private string? _written;

    public string Where => Path;

    public bool Shared => false;

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetFullPath(spoolPath), FileName);

    /// <summary>The state last saved, or an empty one when there is none.</summary>
    public Task<NoticeState> LoadAsync(CancellationToken cancellationToken) => Task.FromResult(Load());

    public Task SaveAsync(NoticeState state, CancellationToken cancellationToken)
    {
        Save(state);
        return Task.CompletedTask;
    }

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
