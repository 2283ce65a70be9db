using Microsoft.Extensions.Options;

namespace BackupMx.Core.Configuration;

/// <summary>
/// The current value of one options type, as <see cref="IOptions{TOptions}"/>, replaced only by
/// <see cref="ConfigurationReload"/> once the whole new configuration has passed validation. It
/// follows no reload token itself: a reload is applied to every holder or to none. Consumers that
/// read <see cref="Value"/> per use see the change at their next use.
/// </summary>
/// <remarks>
/// Not <see cref="IOptionsMonitor{TOptions}"/> itself: its CurrentValue throws after a bad reload
/// until the configuration is fixed, and a relay must keep running on the last good settings.
/// </remarks>
public sealed class ReloadableOptions<T> : IOptions<T>, IReloadableOptions
    where T : class
{
    private readonly IOptionsFactory<T> _factory;
    private readonly Action<T, T>? _carryOver;
    private readonly Action<T>? _applied;
    private readonly Lock _createLock = new();
    private T? _current;
    private T? _prepared;
    private int _preparingThread;

    /// <param name="factory">Binds and validates a value from the configuration as it is now.</param>
    /// <param name="reload">The reload this holder takes part in.</param>
    /// <param name="carryOver">Given the value in use and the next one, before the next is used (what the next keeps of the old).</param>
    /// <param name="applied">Told each value a reload has put in use (to log it).</param>
    public ReloadableOptions(IOptionsFactory<T> factory, ConfigurationReload reload, Action<T, T>? carryOver = null, Action<T>? applied = null)
    {
        ArgumentNullException.ThrowIfNull(reload);
        _factory = factory;
        _carryOver = carryOver;
        _applied = applied;
        reload.Enlist(this);
    }

    /// <summary>
    /// The last value that passed validation; on the thread preparing a reload, the value being
    /// prepared, so that options validated against these (the receiver's postmaster domain against
    /// the domains) are checked against what would be applied with them.
    /// </summary>
    public T Value
    {
        get
        {
            if (Volatile.Read(ref _preparingThread) == Environment.CurrentManagedThreadId && _prepared is { } prepared)
            {
                return prepared;
            }

            if (Volatile.Read(ref _current) is { } current)
            {
                return current;
            }

            lock (_createLock)
            {
                // At start a bad configuration throws: the host refuses to start.
                return _current ??= _factory.Create(Options.DefaultName);
            }
        }
    }

    /// <inheritdoc/>
    public void Prepare()
    {
        var previous = Value;
        var next = _factory.Create(Options.DefaultName);
        _carryOver?.Invoke(previous, next);
        _prepared = next;
        Volatile.Write(ref _preparingThread, Environment.CurrentManagedThreadId);
    }

    /// <inheritdoc/>
    public void Commit()
    {
        var next = _prepared ?? throw new InvalidOperationException("Nothing was prepared.");
        Volatile.Write(ref _current, next);
        Discard();
        _applied?.Invoke(next);
    }

    /// <inheritdoc/>
    public void Discard()
    {
        Volatile.Write(ref _preparingThread, 0);
        _prepared = null;
    }
}
