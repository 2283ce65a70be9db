// Receiving: the SMTP side of BackupMx, on SmtpServer.
//
// A session is SmtpServer's state machine over our own connection input (Connection/), which
// reads each DATA body itself as it arrives (framing, size, content checks, a temporary copy
// that goes to a file past 64 KiB, so no session holds a whole message in memory), bounds
// command lines and command count, and answers ETRN (Etrn/) ahead of SmtpServer's fixed
// parser. The listener refuses connections past the total and per-client limits with 421
// before SmtpServer sees them. SessionHooks sees every command before it runs and keeps what
// SmtpServer drops (HELO name, NOTIFY/ORCPT); RecipientFilter applies the message rate at MAIL
// and, at RCPT, relaying and Core's RecipientPolicy (recipient lists, callouts,
// accept-only-when-primary-down); IntakeMessageStore turns the body's checks into replies,
// hands each message to Core's IntakeService and answers 250 only once the spool holds it.
// STARTTLS is offered only with a configured certificate (Tls/), re-read while running so that a
// renewed one needs no restart. SmtpServer's unsafe defaults
// (accept-all AUTH, PROXY from anyone, SMTPUTF8, five refused commands and out) are switched
// off here. A stop closes the listening sockets first, lets open sessions finish for a grace
// period, then cuts off the rest: each gets 421 4.3.2 and is closed, and a message whose body was
// still arriving is dropped (it was never answered 250; the sender tries again later).
// Accepting survives what a loaded host throws at it: a failed accept (out of file descriptors,
// buffers) is logged and retried after a short pause, and a connection that cannot be set up is
// closed alone. A listening socket that cannot go on fails the hosted service, which stops the
// process with exit code 70 for its supervisor to restart it: never a relay that runs deaf.
using System.Net;
using System.Security.Authentication;
using BackupMx.Core.Configuration;
using BackupMx.Core.Hosting;
using BackupMx.Core.Intake;
using BackupMx.Core.Monitoring;
using BackupMx.Smtp.Connection;
using BackupMx.Smtp.Etrn;
using BackupMx.Smtp.Intake;
using BackupMx.Smtp.Limits;
using BackupMx.Smtp.Protocol;
using BackupMx.Smtp.Tls;
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
    RecipientPolicy recipientPolicy,
    DomainFlusher flusher,
    TimeProvider time,
    ConnectionAcceptor acceptor,
    TlsCertificateMetrics tlsMetrics,
    SmtpReceiverStatus status,
    IOptions<BackupMxOptions> options,
    IOptions<SmtpReceiverOptions> receiverOptions,
    ILogger<SmtpReceiver> logger)
{
    private static readonly byte[] SessionFaultReply = "421 4.3.0 Internal error, closing connection\r\n"u8.ToArray();

    private readonly CancellationTokenSource _shutdown = new();
    private Server? _server;
    private ReceiverListenerFactory? _listeners;
    private Task? _running;
    private Task? _watch;
    private ServerCertificate? _certificate;
    private volatile bool _stopping;

    /// <summary>
    /// Completes once a stop that was asked for has ended the receiver. Fails when the receiver stopped
    /// accepting connections by itself (a listening socket that cannot go on, SmtpServer's loop ended):
    /// an MX that runs but accepts nothing must not pass for a healthy one.
    /// </summary>
    public Task Running => _watch ?? throw new InvalidOperationException("The SMTP receiver has not started.");

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var config = options.Value;
        var smtp = config.Smtp;
        var receiver = receiverOptions.Value;

        var tls = _certificate = ServerCertificate.Create(receiver, time, logger);
        var limits = new ReceiverLimits(options, receiverOptions, config.HostName, SpillDirectory(receiver), tls, time);
        var builder = new SmtpServerOptionsBuilder()
            .ServerName(config.HostName)
            .CustomSmtpGreeting(_ => "220 " + config.HostName + " ESMTP")

            // SmtpServer's limit is fixed for its lifetime, and the sessions' one follows reloads:
            // SessionHooks holds MAIL SIZE= to the limit the session advertised, before SmtpServer's
            // own check, and SessionInput holds the body to it. SmtpServer only ever reads a
            // placeholder body, so its own check is set out of the way.
            .MaxMessageSize(int.MaxValue, MaxMessageSizeHandling.Strict)
            .MaxRetryCount(receiver.MaxConsecutiveErrors)

            // The session input keeps every timeout (RFC 5321 §4.5.3.2); SmtpServer's would cut a
            // session off in the middle of DATA with a 554.
            .CommandWaitTimeout(Timeout.InfiniteTimeSpan);
        foreach (var endpoint in smtp.EffectiveEndpoints)
        {
            var ip = IPEndPoint.Parse(endpoint);
            builder.Endpoint(e =>
            {
                e.Endpoint(ip).SessionTimeout(Timeout.InfiniteTimeSpan);
                if (tls is not null)
                {
                    // STARTTLS on the plain port (IsSecure stays false: no implicit TLS).
                    e.Certificate(tls).SupportedSslProtocols(SslProtocols.Tls12 | SslProtocols.Tls13);
                }
            });
        }

        _listeners = new ReceiverListenerFactory(config.HostName, limits, acceptor, time, logger);
        var services = new Services(
            _listeners,
            new ReceiverCommandFactory(tls is not null),
            new RecipientFilter(options, recipientPolicy, new MessageRateLimiter(() => limits.MaxMessagesPerMinutePerIp, time), logger),
            new IntakeMessageStore(intake, logger, () => receiverOptions.Value.FinalDotTimeout, time));
        var hooks = new SessionHooks(logger);
        var etrn = new EtrnService(options, flusher, () => receiverOptions.Value.EtrnReplyWait, logger, _shutdown.Token);

        _server = new Server(builder.Build(), services);
        _server.SessionCreated += (_, e) =>
        {
            e.Context.CommandExecuting += hooks.OnCommandExecuting;
            var state = SessionState.Of(e.Context);
            var client = SessionHooks.ClientAddress(e.Context) is { } text ? IPAddress.Parse(text) : null;
            state.Input.EtrnHandler = (line, ct) => etrn.HandleAsync(line, client, state.HeloName is not null, ct);
            Log.SessionStarted(logger, e.Context.SessionId, SessionHooks.ClientAddress(e.Context));
        };
        _server.SessionFaulted += (_, e) => OnFault(e.Context, e.Exception);

        // The listening sockets are opened synchronously inside StartAsync, so a bind failure (port
        // taken, bad address) has happened when it returns. SmtpServer faults its task only once
        // every endpoint's loop has ended, though: with several endpoints the others would go on
        // listening, so the factory's record of the failure is what counts, and the others close.
        _running = _server.StartAsync(_shutdown.Token);
        if (_listeners.StartFailure is { } bindFailure)
        {
            _listeners.StopAccepting();
            _server.Shutdown();
            throw bindFailure;
        }

        if (_running.IsFaulted)
        {
            await _running.ConfigureAwait(false);
        }

        tls?.StartWatching(receiver.TlsCertificateCheckInterval);
        tlsMetrics.Track(tls);
        var endpoints = string.Join(", ", smtp.EffectiveEndpoints);
        _watch = WatchAsync(_running, _listeners.Failure, endpoints);
        status.Started(_listeners, endpoints, tls);
        Log.Listening(logger, endpoints);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _stopping = true;
        status.Stopped();
        _certificate?.Dispose();
        if (_server is null || _listeners is null || _running is null)
        {
            return;
        }

        var grace = receiverOptions.Value.ShutdownGracePeriod;
        _listeners.StopAccepting();
        Log.Stopping(logger, grace, _listeners.OpenSessions);
        try
        {
            await _listeners.WhenIdleAsync().WaitAsync(grace, time, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is TimeoutException or OperationCanceledException)
        {
        }

        // SmtpServer answers a cancelled session with a bare 554 (mid-DATA: a permanent failure, so
        // the sender would bounce) or nothing at all; the sessions are marked first so that each
        // answers 421 4.3.2 instead (RFC 5321 §3.8) and closes. Only a 250 already sent is accepted.
        var cutOff = _listeners.CutOffOpenSessions();
        if (cutOff > 0)
        {
            Log.SessionsCutOff(logger, cutOff);
        }

        _server.Shutdown();
        try
        {
            await _running.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception)
        {
            // Cancelled: the host's shutdown timeout is up. Faulted: a failed start already threw
            // it, and a later fault is the watch's to report; a stop never fails because of it.
        }
        finally
        {
            // Ends flushes that ETRN started in the background; whatever they did not reach stays
            // scheduled as before and is picked up by the retry schedule or the next flush.
            await _shutdown.CancelAsync().ConfigureAwait(false);
        }
    }

    private async Task WatchAsync(Task running, Task<Exception> listenerFailure, string endpoints)
    {
        var ended = await Task.WhenAny(running, listenerFailure).ConfigureAwait(false);
        status.Stopped();
        if (_stopping)
        {
            // What ends during a stop we asked for is the stop's doing, not a failure.
            if (ended == running && running.IsFaulted)
            {
                Log.StoppedWithError(logger, running.Exception.GetBaseException());
            }

            return;
        }

        if (ended == listenerFailure)
        {
            throw await listenerFailure.ConfigureAwait(false);
        }

        var reason = running.Exception is { } fault ? ReceiverListenerFactory.Reason(fault.GetBaseException()) : "its listen loop ended";
        throw new InvalidOperationException($"the SMTP receiver on {endpoints} stopped accepting connections: {reason}", running.Exception?.GetBaseException());
    }

    // An internet-facing MX sees many sessions end by the client's doing (a scanner's failed TLS
    // handshake, a dropped connection): routine, so one line without a stack trace. Anything else
    // is ours to look at.
    // Anything else is a fault of ours, and a client must not be able to fill the log with stack
    // traces by repeating it: one line, and 421 4.3.0 (RFC 5321 §3.8) as the session's last reply
    // (SmtpServer would just close).
    private void OnFault(ISessionContext context, Exception exception)
    {
        var clientAddress = SessionHooks.ClientAddress(context);
        var clientSide = exception is AuthenticationException or IOException or System.Net.Sockets.SocketException or EndOfStreamException
            || exception.InnerException is AuthenticationException or IOException or System.Net.Sockets.SocketException;
        if (clientSide)
        {
            Log.SessionDropped(logger, context.SessionId, clientAddress, exception.GetBaseException().Message);
            return;
        }

        var cause = exception.GetBaseException();
        Log.SessionFaulted(logger, context.SessionId, clientAddress, cause.GetType().Name, Origin(cause), ReceiverListenerFactory.Reason(cause));
        if (context.Properties.TryGetValue(ReceiverListenerFactory.SessionPipeKey, out var value) && value is SessionPipe pipe)
        {
            pipe.BeginShutdown(SessionFaultReply);
        }
    }

    // The method that threw: enough to find the fault without a stack trace per session.
    private static string Origin(Exception exception) =>
        new System.Diagnostics.StackTrace(exception).GetFrame(0)?.GetMethod() is { } method
            ? $"{method.DeclaringType?.FullName}.{method.Name}"
            : "an unknown method";

    // Created here, so a folder that cannot exist stops the start rather than every large message.
    private static string SpillDirectory(SmtpReceiverOptions receiver) =>
        string.IsNullOrWhiteSpace(receiver.SpillPath) ? Path.GetTempPath() : Directory.CreateDirectory(receiver.SpillPath).FullName;

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
