namespace BackupMx.Core.Forwarding;

/// <summary>
/// The bounded parallel dispatch that both forwarding loops share, the embedded
/// <see cref="DueMessagePump"/> and the Azure Forward function: at most <see cref="Capacity"/>
/// attempts run at once, each started off the caller's loop, and none is ever left behind (a
/// stopping loop drains them). What to start, and when to stop or sleep, is the caller's.
/// </summary>
/// <remarks>Used by one loop at a time, so it needs no lock.</remarks>
public sealed class BoundedDispatcher<TResult>
{
    private readonly List<Task<TResult>> _running = [];

    public BoundedDispatcher(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        Capacity = capacity;
    }

    public int Capacity { get; }

    /// <summary>Attempts started and not yet collected (some may have finished).</summary>
    public int Running => _running.Count;

    public int Free => Capacity - _running.Count;

    /// <summary>
    /// Starts <paramref name="attempt"/> off the caller's loop, so that one slow attempt never
    /// delays starting the others. The caller has made sure a slot is free.
    /// </summary>
    public void Start(Func<Task<TResult>> attempt)
    {
        ArgumentNullException.ThrowIfNull(attempt);
        if (Free <= 0)
        {
            throw new InvalidOperationException("No free slot: wait for one first.");
        }

        _running.Add(RunAsync(attempt));
    }

    /// <summary>Removes the attempts that have finished and returns their results.</summary>
    public List<TResult> Collect()
    {
        var results = new List<TResult>();
        for (var i = _running.Count - 1; i >= 0; i--)
        {
            if (_running[i].IsCompleted)
            {
                results.Add(_running[i].Result);
                _running.RemoveAt(i);
            }
        }

        return results;
    }

    /// <summary>Completes when any running attempt finishes; never when none runs.</summary>
    public Task WhenAnyFinishedAsync() => _running.Count == 0
        ? Task.Delay(Timeout.Infinite)
        : Task.WhenAny(_running);

    /// <summary>
    /// Waits until a slot is free, collecting what finished meanwhile.
    /// </summary>
    /// <returns>The results of the attempts that finished while waiting.</returns>
    public async Task<List<TResult>> WaitForSlotAsync(CancellationToken cancellationToken)
    {
        var results = Collect();
        while (Free <= 0)
        {
            await Task.WhenAny(_running).WaitAsync(cancellationToken).ConfigureAwait(false);
            results.AddRange(Collect());
        }

        return results;
    }

    /// <summary>Waits for every running attempt and returns their results.</summary>
    public async Task<TResult[]> DrainAsync()
    {
        var all = await Task.WhenAll(_running).ConfigureAwait(false);
        _running.Clear();
        return all;
    }

    private static async Task<TResult> RunAsync(Func<Task<TResult>> attempt)
    {
        await Task.Yield();
        return await attempt().ConfigureAwait(false);
    }
}
