using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using BackupMx.Core.Hosting;
using Microsoft.Extensions.Logging;
using SmtpServer;

namespace BackupMx.Smtp.Tls;

/// <summary>
/// The STARTTLS certificate that new handshakes use, re-read from its file(s) every
/// <see cref="SmtpReceiverOptions.TlsCertificateCheckInterval"/>. A session takes the certificate
/// current when it says STARTTLS, so an established session keeps its own. A changed file that does
/// not load leaves the current certificate in place and is reported once (not at every check).
/// </summary>
internal sealed class ServerCertificate : ICertificateFactory, IDisposable
{
    /// <summary>From this long before expiry on, each day gives one warning.</summary>
    public static readonly TimeSpan ExpiryWarning = TimeSpan.FromDays(14);

    private static readonly TimeSpan WarningRepeat = TimeSpan.FromDays(1);

    private readonly string _path;
    private readonly string? _keyPath;
    private readonly string? _password;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Lock _lock = new();
    private volatile LoadedCertificate _current;
    private byte[]? _failedFingerprint;
    private DateTimeOffset? _lastExpiryWarning;
    private ITimer? _timer;

    private ServerCertificate(LoadedCertificate initial, string path, string? keyPath, string? password, TimeProvider time, ILogger logger)
    {
        _current = initial;
        _path = path;
        _keyPath = keyPath;
        _password = password;
        _time = time;
        _logger = logger;
    }

    /// <summary>Null when no certificate is configured; a certificate that cannot be loaded stops the start.</summary>
    public static ServerCertificate? Create(SmtpReceiverOptions options, TimeProvider time, ILogger logger)
    {
        if (string.IsNullOrWhiteSpace(options.TlsCertificatePath))
        {
            return null;
        }

        var keyPath = string.IsNullOrWhiteSpace(options.TlsKeyPath) ? null : options.TlsKeyPath;
        LoadedCertificate loaded;
        try
        {
            loaded = CertificateFile.Load(options.TlsCertificatePath, keyPath, options.TlsCertificatePassword);
        }
        catch (CertificateLoadException ex)
        {
            var with = keyPath is null ? "" : $" with {SmtpReceiverOptions.SectionName}:TlsKeyPath '{keyPath}'";
            throw new StartupException(
                $"the STARTTLS certificate cannot be loaded from {SmtpReceiverOptions.SectionName}:TlsCertificatePath '{options.TlsCertificatePath}'{with}: {ex.Message}",
                ex);
        }

        var certificate = new ServerCertificate(loaded, options.TlsCertificatePath, keyPath, options.TlsCertificatePassword, time, logger);
        Log.TlsEnabled(logger, loaded.Leaf.Subject, Names(loaded), options.TlsCertificatePath, loaded.Format, loaded.Leaf.Thumbprint, NotAfter(loaded));
        certificate.WarnIfExpiring();
        return certificate;
    }

    /// <summary>What a STARTTLS handshake starting now serves (the leaf and its chain).</summary>
    public SslStreamCertificateContext Current => _current.Context;

    /// <summary>The leaf certificate served now.</summary>
    public X509Certificate2 Leaf => _current.Leaf;

    /// <summary>Time left until the current certificate expires (negative once it has).</summary>
    public TimeSpan TimeToExpiry => NotAfter(_current) - _time.GetUtcNow();

    X509Certificate ICertificateFactory.GetServerCertificate(ISessionContext sessionContext) => _current.Leaf;

    /// <summary>Starts the periodic check of the file.</summary>
    public void StartWatching(TimeSpan interval) =>
        _timer ??= _time.CreateTimer(_ => Check(), null, interval, interval);

    /// <summary>
    /// Reloads the certificate if its file(s) changed, and warns of a near expiry. The content is
    /// compared, not the time stamp: a swapped symlink can point at an older file.
    /// </summary>
    public void Check()
    {
        lock (_lock)
        {
            byte[] fingerprint;
            try
            {
                fingerprint = CertificateFile.Fingerprint(_path, _keyPath);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                Fail(Encoding.UTF8.GetBytes("unreadable:" + ex.Message), ex.Message);
                return;
            }

            if (fingerprint.AsSpan().SequenceEqual(_current.Fingerprint))
            {
                // Back to the file being served: a later breakage is news again.
                _failedFingerprint = null;
            }
            else if (!fingerprint.AsSpan().SequenceEqual(_failedFingerprint))
            {
                Reload();
            }

            WarnIfExpiring();
        }
    }

    private void Reload()
    {
        LoadedCertificate loaded;
        try
        {
            loaded = CertificateFile.Load(_path, _keyPath, _password);
        }
        catch (Exception ex)
        {
            // Anything at all: this runs on a timer, where an exception would end the process, and
            // a file that cannot be used must never take the working certificate with it.
            Fail(SafeFingerprint(), ex.Message);
            return;
        }

        // The previous certificate is not disposed: a handshake that began a moment ago may still
        // be using it, and reloads are rare enough to leave it to the garbage collector.
        _current = loaded;
        _failedFingerprint = null;
        _lastExpiryWarning = null;
        Log.TlsReloaded(_logger, _path, loaded.Format, loaded.Leaf.Subject, Names(loaded), loaded.Leaf.Thumbprint, NotAfter(loaded));
    }

    private byte[] SafeFingerprint()
    {
        try
        {
            return CertificateFile.Fingerprint(_path, _keyPath);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return Encoding.UTF8.GetBytes("unreadable:" + ex.Message);
        }
    }

    // One error per broken content: the same broken file checked again is not news.
    private void Fail(byte[] fingerprint, string reason)
    {
        if (fingerprint.AsSpan().SequenceEqual(_failedFingerprint))
        {
            return;
        }

        _failedFingerprint = fingerprint;
        Log.TlsReloadFailed(_logger, _path, reason, _current.Leaf.Subject, _current.Leaf.Thumbprint);
    }

    private void WarnIfExpiring()
    {
        var now = _time.GetUtcNow();
        var left = NotAfter(_current) - now;
        if (left > ExpiryWarning || (_lastExpiryWarning is { } last && now - last < WarningRepeat))
        {
            return;
        }

        _lastExpiryWarning = now;
        Log.TlsExpiring(_logger, _current.Leaf.Subject, _path, NotAfter(_current), Math.Round(left.TotalDays, 1));
    }

    private static DateTimeOffset NotAfter(LoadedCertificate loaded) => new(loaded.Leaf.NotAfter.ToUniversalTime(), TimeSpan.Zero);

    private static string Names(LoadedCertificate loaded) => loaded.DnsNames.Count == 0 ? "no DNS names" : string.Join(", ", loaded.DnsNames);

    public void Dispose() => _timer?.Dispose();
}
