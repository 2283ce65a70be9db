using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;

namespace BackupMx.Smtp.Hosting;

/// <summary>
/// The current <see cref="SmtpReceiverOptions"/>, replaced when the configuration reloads, like
/// Core's <c>ReloadableBackupMxOptions</c> for the rest of <c>BackupMx</c>: a new value is bound and
/// validated in full first, and a bad one is refused with an error naming the key while the one in
/// use stays. The receiver reads it for each new connection (<see cref="Limits.ReceiverLimits"/>).
/// </summary>
internal sealed class ReloadableReceiverOptions : IOptions<SmtpReceiverOptions>, IDisposable
{
    private readonly IOptionsFactory<SmtpReceiverOptions> _factory;
    private readonly ILogger<ReloadableReceiverOptions> _logger;
    private readonly IDisposable _subscription;
    private readonly Lock _reloadLock = new();
    private SmtpReceiverOptions? _current;

    public ReloadableReceiverOptions(IOptionsFactory<SmtpReceiverOptions> factory, IConfiguration configuration, ILogger<ReloadableReceiverOptions> logger)
    {
        _factory = factory;
        _logger = logger;
        _subscription = ChangeToken.OnChange(configuration.GetReloadToken, () => Reload());
    }

    /// <summary>The last receiver settings that passed validation.</summary>
    public SmtpReceiverOptions Value
    {
        get
        {
            if (Volatile.Read(ref _current) is { } current)
            {
                return current;
            }

            lock (_reloadLock)
            {
                // At start a bad configuration throws: the host refuses to start.
                return _current ??= _factory.Create(Options.DefaultName);
            }
        }
    }

    /// <summary>Binds and validates the receiver settings as they are now, and swaps them in if they are valid.</summary>
    public bool Reload()
    {
        lock (_reloadLock)
        {
            SmtpReceiverOptions next;
            try
            {
                next = _factory.Create(Options.DefaultName);
            }
            catch (OptionsValidationException ex)
            {
                foreach (var failure in ex.Failures)
                {
                    Log.ReceiverReloadRefused(_logger, failure);
                }

                return false;
            }
            catch (Exception ex) when (ex is InvalidOperationException or FormatException or ArgumentException)
            {
                Log.ReceiverReloadFailed(_logger, ex);
                return false;
            }

            Volatile.Write(ref _current, next);
            Log.ReceiverReloaded(_logger, next.MaxConnections, next.MaxConnectionsPerIp, next.MaxMessagesPerMinutePerIp);
            return true;
        }
    }

    public void Dispose() => _subscription.Dispose();
}
