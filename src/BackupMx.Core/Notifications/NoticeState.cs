namespace BackupMx.Core.Notifications;

/// <summary>
/// Where the outage notifier keeps what it must not forget across a restart: the outages already
/// notified (so the first notice is not sent again, and the recovery notice counts the right
/// messages) and the notices still waiting for a retry. A file in the spool folder in embedded
/// mode, rows of the primaries table in Azure mode.
/// </summary>
public interface INoticeStateStore
{
    /// <summary>Where the state is, for the log.</summary>
    string Where { get; }

    /// <summary>
    /// True when other processes may write the state between two runs (Azure: the next probe may run
    /// on another instance), so it is read again before every run; false when this process is its
    /// only writer and it is read once.
    /// </summary>
    bool Shared { get; }

    /// <summary>The state last saved, or an empty one when there is none.</summary>
    Task<NoticeState> LoadAsync(CancellationToken cancellationToken);

    Task SaveAsync(NoticeState state, CancellationToken cancellationToken);
}

public sealed class NoticeState
{
    public Dictionary<string, OutageState> Outages { get; init; } = new(StringComparer.OrdinalIgnoreCase);

    public List<PendingState> Pending { get; init; } = [];
}

/// <summary>One outage that was notified: since when, the last notice, and the messages it is tracking.</summary>
public sealed class OutageState
{
    public DateTimeOffset Since { get; init; }

    public DateTimeOffset LastNotice { get; set; }

    public Dictionary<string, DateTimeOffset> Waiting { get; init; } = new(StringComparer.Ordinal);

    public int Delivered { get; set; }

    public TimeSpan LongestWait { get; set; }
}

/// <summary>A notice not sent yet, by one channel.</summary>
public sealed record PendingState(OutageNotice Notice, string Channel, IReadOnlyList<string> Recipients, int Attempts, DateTimeOffset NotBefore);
