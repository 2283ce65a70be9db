// Receiving: the SMTP side of BackupMx, on SmtpServer.
//
// A session is SmtpServer's state machine over our own connection input (Connection/), which
// repairs DATA framing and bounds the body. SessionHooks sees every command before it runs and
// keeps what SmtpServer drops (HELO name, NOTIFY/ORCPT); RecipientFilter refuses other people's
// domains; IntakeMessageStore hands each message to Core's IntakeService and answers 250 only
// once the spool holds it. SmtpServer's unsafe defaults (accept-all AUTH, PROXY from anyone,
// SMTPUTF8, five refused commands and out) are switched off here. A stop closes the listening
// sockets first, lets open sessions finish for a grace period, then cancels the rest.
using System.Net;
using BackupMx.Core.Configuration;
using BackupMx.Core.Intake;
using BackupMx.Smtp.Connection;
using BackupMx.Smtp.Intake;
using BackupMx.Smtp.Protocol;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SmtpServer;
using SmtpServer.Net;
using SmtpServer.Protocol;
using SmtpServer.Storage;
using Server = SmtpServer.SmtpServer;

namespace BackupMx.Smtp.Hosting;

/// <summary>Builds, runs and gracefully stops the SmtpServer instance.</summary>
internal sealed class SmtpReceiver(
    IntakeService intake,
    IOptions<BackupMxOptions> options,
    IOptions<SmtpReceiverOptions> receiverOptions,
    ILogger<SmtpReceiver> logger)
{
    // SmtpServer's strict check covers the whole read buffer (our body plus "\r\n" and ".\r\n"),
    // so it gets some slack; the real limit is enforced by SessionInput and the SIZE check.
    private const int FramingSlack = 16;

    private readonly CancellationTokenSource _shutdown = new();
    private Server? _server;
    private ReceiverListenerFactory? _listeners;
    private Task? _running;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var config = options.Value;
        var smtp = config.Smtp;
        var receiver = receiverOptions.Value;
        var maxBytes = Math.Min(smtp.MaxMessageBytes, int.MaxValue - FramingSlack);

        var builder = new SmtpServerOptionsBuilder()
            .ServerName(config.HostName)
            .CustomSmtpGreeting(_ => "220 " + config.HostName + " ESMTP")
            .MaxMessageSize((int)maxBytes + FramingSlack, MaxMessageSizeHandling.Strict)
            .MaxRetryCount(receiver.MaxConsecutiveErrors)
            .CommandWaitTimeout(smtp.CommandTimeout);
        foreach (var endpoint in smtp.EffectiveEndpoints)
        {
            var ip = IPEndPoint.Parse(endpoint);
            builder.Endpoint(e => e.Endpoint(ip).SessionTimeout(smtp.SessionTimeout));
        }

        _listeners = new ReceiverListenerFactory(maxBytes);
        var services = new Services(
            _listeners,
            new ReceiverCommandFactory(maxBytes),
            new RecipientFilter(config, logger),
            new IntakeMessageStore(intake, receiver, logger));
        var hooks = new SessionHooks(config, logger);

        _server = new Server(builder.Build(), services);
        _server.SessionCreated += (_, e) =>
        {
            e.Context.CommandExecuting += hooks.OnCommandExecuting;
            Log.SessionStarted(logger, e.Context.SessionId, SessionHooks.ClientAddress(e.Context));
        };
        _server.SessionFaulted += (_, e) => Log.SessionFaulted(logger, e.Exception, e.Context.SessionId, SessionHooks.ClientAddress(e.Context));

        // The listening sockets are opened synchronously inside StartAsync, so a bind failure
        // (port taken, bad address) has already faulted the task when it returns.
        _running = _server.StartAsync(_shutdown.Token);
        if (_running.IsFaulted)
        {
            await _running.ConfigureAwait(false);
        }

        Log.Listening(logger, string.Join(", ", smtp.EffectiveEndpoints));
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_server is null || _listeners is null || _running is null)
        {
            return;
        }

        var grace = receiverOptions.Value.ShutdownGracePeriod;
        _listeners.StopAccepting();
        Log.Stopping(logger, grace, _listeners.OpenSessions);
        try
        {
            await _listeners.WhenIdleAsync().WaitAsync(grace, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is TimeoutException or OperationCanceledException)
        {
            Log.SessionsCutOff(logger, _listeners.OpenSessions);
        }

        _server.Shutdown();
        try
        {
            await _running.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>
    /// SmtpServer's service lookup. Its own default provider registers an authenticator that
    /// accepts any password; this one knows only what we give it.
    /// </summary>
    private sealed class Services(
        IEndpointListenerFactory listeners,
        ISmtpCommandFactory commands,
        IMailboxFilter filter,
        IMessageStore store) : IServiceProvider
    {
        public object? GetService(Type serviceType) =>
            serviceType == typeof(IEndpointListenerFactory) ? listeners
            : serviceType == typeof(ISmtpCommandFactory) ? commands
            : serviceType == typeof(IMailboxFilter) ? filter
            : serviceType == typeof(IMessageStore) ? store
            : null;
    }
}
