namespace BackupMx.Delivery.Smtp;

/// <summary>
/// Sessions open at once towards one destination address, adapted to what it tolerates, like
/// Postfix's destination concurrency feedback: a "too many connections" refusal (a 421 greeting)
/// lowers the limit to the sessions that were working, and each run of successful sessions as
/// long as the limit raises it by one, back up to the configured maximum. A refusal of that kind
/// is the primary's connection limit speaking, not an outage.
/// </summary>
internal sealed class DestinationConcurrency(int maximum)
{
    private readonly int _maximum = maximum;
    private readonly Lock _lock = new();
    private readonly LinkedList<TaskCompletionSource> _waiters = new();
    private int _limit = maximum;
    private int _active;
    private int _successes;

    public int Limit
    {
        get
        {
            lock (_lock)
            {
                return _limit;
            }
        }
    }

    /// <summary>Waits for a free session slot; dispose the result when the session ends.</summary>
    public async Task<IDisposable> EnterAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            TaskCompletionSource waiter;
            LinkedListNode<TaskCompletionSource> node;
            lock (_lock)
            {
                if (_active < _limit)
                {
                    _active++;
                    return new Slot(this);
                }

                waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                node = _waiters.AddLast(waiter);
            }

            try
            {
                await waiter.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                lock (_lock)
                {
                    if (node.List is not null)
                    {
                        _waiters.Remove(node);
                    }
                }

                throw;
            }
        }
    }

    /// <summary>The destination refused a session for load: at most as many as the others that are working.</summary>
    public void Busy()
    {
        lock (_lock)
        {
            // The refused session still holds its slot here; the others are what the destination took.
            _limit = Math.Max(1, Math.Min(_limit, _active - 1));
            _successes = 0;
        }
    }

    public void Success()
    {
        lock (_lock)
        {
            if (_limit < _maximum && ++_successes >= _limit)
            {
                _limit++;
                _successes = 0;
                WakeOne();
            }
        }
    }

    private void Exit()
    {
        lock (_lock)
        {
            _active--;
            WakeOne();
        }
    }

    private void WakeOne()
    {
        if (_active < _limit && _waiters.First is { } first)
        {
            _waiters.RemoveFirst();
            first.Value.TrySetResult();
        }
    }

    private sealed class Slot(DestinationConcurrency owner) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                owner.Exit();
            }
        }
    }
}
