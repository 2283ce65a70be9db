namespace BackupMx.Core.Intake;

/// <summary>
/// Callout results with an expiry each, bounded in size: when full, the entry used least
/// recently goes, so a flood of made-up addresses cannot push memory without limit and
/// mostly evicts itself.
/// </summary>
internal sealed class RecipientVerificationCache(int maxEntries)
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, LinkedListNode<Entry>> _entries = new(StringComparer.Ordinal);
    private readonly LinkedList<Entry> _recency = new();
    private readonly int _maxEntries = Math.Max(1, maxEntries);

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _entries.Count;
            }
        }
    }

    /// <returns>True (exists), false (does not exist), or null when unknown or expired.</returns>
    public bool? Get(string key, DateTimeOffset now)
    {
        lock (_lock)
        {
            if (!_entries.TryGetValue(key, out var node))
            {
                return null;
            }

            if (node.Value.ExpiresAt <= now)
            {
                _entries.Remove(key);
                _recency.Remove(node);
                return null;
            }

            _recency.Remove(node);
            _recency.AddFirst(node);
            return node.Value.Exists;
        }
    }

    public void Set(string key, bool exists, DateTimeOffset expiresAt)
    {
        lock (_lock)
        {
            if (_entries.TryGetValue(key, out var existing))
            {
                _recency.Remove(existing);
            }

            var node = _recency.AddFirst(new Entry(key, exists, expiresAt));
            _entries[key] = node;
            while (_entries.Count > _maxEntries && _recency.Last is { } last)
            {
                _entries.Remove(last.Value.Key);
                _recency.RemoveLast();
            }
        }
    }

    private sealed record Entry(string Key, bool Exists, DateTimeOffset ExpiresAt);
}
