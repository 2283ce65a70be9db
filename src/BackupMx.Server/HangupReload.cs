using System.Runtime.InteropServices;
using BackupMx.Core.Configuration;
using BackupMx.Smtp.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace BackupMx.Server;

/// <summary>
/// SIGHUP re-reads the configuration (appsettings.json, the environment, the command line) like
/// <c>postfix reload</c>, instead of ending the process, which is what SIGHUP does to a .NET
/// process that does not handle it. <see cref="ConfigurationReload"/> validates the result
/// in full before using any of it, and a changed STARTTLS certificate file is re-read at once.
/// systemd's <c>ExecReload=/bin/kill -HUP $MAINPID</c> maps here.
/// </summary>
internal sealed partial class HangupReload(IConfiguration configuration, ConfigurationReload reload, SmtpReceiverStatus receiver, ILogger<HangupReload> logger) : IHostedService, IDisposable
{
    private PosixSignalRegistration? _registration;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (!OperatingSystem.IsWindows())
        {
            _registration = PosixSignalRegistration.Create(PosixSignal.SIGHUP, OnHangup);
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public void Dispose() => _registration?.Dispose();

    private void OnHangup(PosixSignalContext context)
    {
        // Not the default (termination): a reload must never stop the relay.
        context.Cancel = true;
        LogHangup(logger);
        var before = reload.Attempts;
        if (configuration is IConfigurationRoot root)
        {
            try
            {
                // Raises the reload token, which ConfigurationReload follows.
                root.Reload();
            }
            catch (AggregateException ex)
            {
                // Another listener of the reload token failed (an options monitor whose new value
                // is invalid); the reload has logged why, in terms of the keys.
                LogListenerFailed(logger, ex.InnerExceptions.Count);
            }
            catch (Exception ex) when (ex is InvalidDataException or IOException or UnauthorizedAccessException or FormatException)
            {
                // A file that cannot be read or parsed (a JSON syntax error): nothing was swapped in.
                // Thrown here, it would end the process from the signal handler.
                LogReadFailed(logger, ex.Message, ex.InnerException?.Message ?? string.Empty);
                receiver.CheckCertificate();
                return;
            }
        }

        if (reload.Attempts == before)
        {
            // No reload token fired (no file changed and nothing to re-read): validate what is there anyway.
            reload.Reload();
        }

        // The STARTTLS certificate file: a renewed one is served from the next session on.
        receiver.CheckCertificate();
    }

    [LoggerMessage(EventId = 7700, Level = LogLevel.Information, Message = "SIGHUP: reloading the configuration")]
    private static partial void LogHangup(ILogger logger);

    [LoggerMessage(EventId = 7702, Level = LogLevel.Error, Message = "SIGHUP: the configuration could not be read, the previous configuration stays in use: {Reason} {Detail}")]
    private static partial void LogReadFailed(ILogger logger, string reason, string detail);

    [LoggerMessage(EventId = 7701, Level = LogLevel.Debug, Message = "SIGHUP: {Count} other configuration listener(s) failed on the new configuration")]
    private static partial void LogListenerFailed(ILogger logger, int count);
}
