using System.Text.Json;
using BackupMx.Core.Notifications;

namespace BackupMx.Testing.Fakes;

/// <summary>
/// The outage notifier's state in memory. Like the file and Table stores it keeps a serialized copy,
/// so the notifier never shares objects with what was saved, and a load after a save returns what
/// was saved and nothing changed since.
/// </summary>
public sealed class InMemoryNoticeStateStore(bool shared = false) : INoticeStateStore
{
    private readonly Lock _lock = new();
    private string? _saved;

    public string Where => "memory";

    public bool Shared => shared;

    public int Saves { get; private set; }

    public Task<NoticeState> LoadAsync(CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            return Task.FromResult(_saved is null ? new NoticeState() : JsonSerializer.Deserialize<NoticeState>(_saved)!);
        }
    }

    public Task SaveAsync(NoticeState state, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(state);
        lock (_lock)
        {
            _saved = JsonSerializer.Serialize(state);
            Saves++;
        }

        return Task.CompletedTask;
    }
}
