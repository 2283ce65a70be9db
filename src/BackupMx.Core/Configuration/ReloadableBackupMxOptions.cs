using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;

namespace BackupMx.Core.Configuration;

/// <summary>
/// The current <see cref="BackupMxOptions"/>, as <see cref="IOptions{TOptions}"/>, replaced when the
/// configuration reloads (a changed appsettings.json, or SIGHUP in embedded mode). A new
/// configuration is bound and validated in full before it is swapped in; a bad one is refused with
/// an error naming each offending key, and the one in use stays. Consumers that read
/// <see cref="Value"/> per use (the recipient policy, routing, delivery limits, outbound TLS) see
/// the change at their next use; open SMTP sessions stay open.
/// </summary>
/// <remarks>
/// Not <see cref="IOptionsMonitor{TOptions}"/> itself: its CurrentValue throws after a bad reload
/// until the configuration is fixed, and a relay must keep running on the last good settings.
/// </remarks>
public sealed partial class ReloadableBackupMxOptions : IOptions<BackupMxOptions>, IDisposable
{
    private readonly IOptionsFactory<BackupMxOptions> _factory;
    private readonly ILogger<ReloadableBackupMxOptions> _logger;
    private readonly IDisposable _subscription;
    private readonly Lock _reloadLock = new();
    private BackupMxOptions? _current;

    public ReloadableBackupMxOptions(IOptionsFactory<BackupMxOptions> factory, IConfiguration configuration, ILogger<ReloadableBackupMxOptions> logger)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        _factory = factory;
        _logger = logger;
        _subscription = ChangeToken.OnChange(configuration.GetReloadToken, () => Reload());
    }

    /// <summary>The last configuration that passed validation.</summary>
    public BackupMxOptions Value
    {
        get
        {
            var current = Volatile.Read(ref _current);
            if (current is not null)
            {
                return current;
            }

            lock (_reloadLock)
            {
                // At start a bad configuration throws, as before: the host refuses to start.
                return _current ??= _factory.Create(Options.DefaultName);
            }
        }
    }

    /// <summary>How many reloads were tried, applied or refused.</summary>
    public int Attempts { get; private set; }

    /// <summary>Binds and validates the configuration as it is now, and swaps it in if it is valid.</summary>
    /// <returns>Whether the new configuration is in use.</returns>
    public bool Reload()
    {
        lock (_reloadLock)
        {
            Attempts++;
            BackupMxOptions next;
            try
            {
                next = _factory.Create(Options.DefaultName);
            }
            catch (OptionsValidationException ex)
            {
                foreach (var failure in ex.Failures)
                {
                    LogReloadRefused(_logger, failure);
                }

                return false;
            }
            catch (Exception ex) when (ex is InvalidOperationException or FormatException or ArgumentException)
            {
                LogReloadFailed(_logger, ex);
                return false;
            }

            var previous = _current;
            if (previous is not null)
            {
                next.KeepRemovedDomains(previous);
            }

            Volatile.Write(ref _current, next);
            LogReloaded(_logger, next.Domains.Count, string.Join(", ", next.Domains.Select(d => d.Name)));
            return true;
        }
    }

    public void Dispose() => _subscription.Dispose();

    [LoggerMessage(EventId = 1970, Level = LogLevel.Information, Message = "Configuration reloaded: {DomainCount} domain(s) relayed ({Domains}); open sessions keep going")]
    private static partial void LogReloaded(ILogger logger, int domainCount, string domains);

    [LoggerMessage(EventId = 1971, Level = LogLevel.Error, Message = "Configuration reload refused, the previous configuration stays in use: {Failure}")]
    private static partial void LogReloadRefused(ILogger logger, string failure);

    [LoggerMessage(EventId = 1972, Level = LogLevel.Error, Message = "Configuration reload failed, the previous configuration stays in use")]
    private static partial void LogReloadFailed(ILogger logger, Exception exception);
}
