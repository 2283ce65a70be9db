using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;

namespace BackupMx.Core.Configuration;

/// <summary>
/// Applies a configuration reload (a changed appsettings.json, or SIGHUP in embedded mode) to every
/// <see cref="ReloadableOptions{T}"/> at once, or to none: each one's next value is bound and
/// validated first, and only when all are valid are they put in use together. Otherwise an error
/// names each offending key and every part keeps the value it had, so one file is never applied
/// half (a good domain list with a bad receiver limit, or the reverse). The only follower of the
/// configuration's reload token among the options holders.
/// </summary>
public sealed partial class ConfigurationReload : IDisposable
{
    private readonly ILogger<ConfigurationReload> _logger;
    private readonly IDisposable _subscription;
    private readonly Lock _reloadLock = new();
    private readonly List<IReloadableOptions> _parts = [];

    public ConfigurationReload(IConfiguration configuration, ILogger<ConfigurationReload> logger)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        _logger = logger;
        _subscription = ChangeToken.OnChange(configuration.GetReloadToken, () => Reload());
    }

    /// <summary>How many reloads were tried, applied or refused.</summary>
    public int Attempts { get; private set; }

    /// <summary>Binds and validates every part as the configuration is now, and puts them all in use if all are valid.</summary>
    /// <returns>Whether the new configuration is in use.</returns>
    public bool Reload()
    {
        lock (_reloadLock)
        {
            Attempts++;
            var valid = true;
            foreach (var part in _parts)
            {
                valid &= TryPrepare(part);
            }

            foreach (var part in _parts)
            {
                if (valid)
                {
                    part.Commit();
                }
                else
                {
                    part.Discard();
                }
            }

            return valid;
        }
    }

    public void Dispose() => _subscription.Dispose();

    /// <summary>Adds a part to every later reload.</summary>
    internal void Enlist(IReloadableOptions part)
    {
        lock (_reloadLock)
        {
            _parts.Add(part);

            // The domains first: other parts are validated against the domains being applied with them.
            _parts.Sort((a, b) => Stage(a).CompareTo(Stage(b)));
        }
    }

    private static int Stage(IReloadableOptions part) => part is ReloadableOptions<BackupMxOptions> ? 0 : 1;

    private bool TryPrepare(IReloadableOptions part)
    {
        try
        {
            part.Prepare();
            return true;
        }
        catch (OptionsValidationException ex)
        {
            foreach (var failure in ex.Failures)
            {
                LogReloadRefused(_logger, failure);
            }
        }
        catch (Exception ex) when (ex is InvalidOperationException or FormatException or ArgumentException)
        {
            LogReloadFailed(_logger, ex);
        }

        return false;
    }

    /// <summary>Logs the domains a reload has put in use.</summary>
    public static void LogDomainsApplied(ILogger logger, BackupMxOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        LogReloaded(logger, options.Domains.Count, string.Join(", ", options.Domains.Select(d => d.Name)));
    }

    [LoggerMessage(EventId = 1970, Level = LogLevel.Information, Message = "Configuration reloaded: {DomainCount} domain(s) relayed ({Domains}); open sessions keep going")]
    private static partial void LogReloaded(ILogger logger, int domainCount, string domains);

    [LoggerMessage(EventId = 1971, Level = LogLevel.Error, Message = "Configuration reload refused, the previous configuration stays in use: {Failure}")]
    private static partial void LogReloadRefused(ILogger logger, string failure);

    [LoggerMessage(EventId = 1972, Level = LogLevel.Error, Message = "Configuration reload failed, the previous configuration stays in use")]
    private static partial void LogReloadFailed(ILogger logger, Exception exception);
}
