using Microsoft.Extensions.Logging;

namespace BackupMx.Smtp;

internal static partial class Log
{
    [LoggerMessage(EventId = 2200, Level = LogLevel.Information, Message = "SMTP receiver listening on {Endpoints}")]
    public static partial void Listening(ILogger logger, string endpoints);

    [LoggerMessage(EventId = 2201, Level = LogLevel.Information, Message = "SMTP receiver stopping; waiting up to {GracePeriod} for {OpenSessions} open session(s)")]
    public static partial void Stopping(ILogger logger, TimeSpan gracePeriod, int openSessions);

    [LoggerMessage(EventId = 2202, Level = LogLevel.Warning, Message = "SMTP receiver cut off {OpenSessions} session(s) still open after the grace period with 421 4.3.2; messages not yet answered 250 were not accepted")]
    public static partial void SessionsCutOff(ILogger logger, int openSessions);

    [LoggerMessage(EventId = 2206, Level = LogLevel.Warning, Message = "SMTP receiver ended with an error while stopping")]
    public static partial void StoppedWithError(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 2203, Level = LogLevel.Debug, Message = "Session {SessionId} from {ClientAddress} started")]
    public static partial void SessionStarted(ILogger logger, Guid sessionId, string? clientAddress);

    [LoggerMessage(EventId = 2204, Level = LogLevel.Warning, Message = "Session {SessionId} from {ClientAddress} failed with {ExceptionType} in {Origin}: {Reason}; answered 421 4.3.0")]
    public static partial void SessionFaulted(ILogger logger, Guid sessionId, string? clientAddress, string exceptionType, string origin, string reason);

    [LoggerMessage(EventId = 2225, Level = LogLevel.Warning, Message = "Storing the message from {ClientAddress} <{Sender}> took longer than {Timeout}; answered 451")]
    public static partial void FinalDotTimeout(ILogger logger, string? clientAddress, string sender, TimeSpan timeout);

    [LoggerMessage(EventId = 2205, Level = LogLevel.Information, Message = "Session {SessionId} from {ClientAddress} ended by the client's side: {Reason}")]
    public static partial void SessionDropped(ILogger logger, Guid sessionId, string? clientAddress, string reason);

    [LoggerMessage(EventId = 2210, Level = LogLevel.Information, Message = "Refused RCPT <{Recipient}> from {ClientAddress}: domain not relayed")]
    public static partial void RelayDenied(ILogger logger, string? recipient, string? clientAddress);

    [LoggerMessage(EventId = 2211, Level = LogLevel.Information, Message = "Refused RCPT <{Recipient}> from {ClientAddress}: more than {MaxRecipients} recipients")]
    public static partial void TooManyRecipients(ILogger logger, string? recipient, string? clientAddress, int maxRecipients);

    [LoggerMessage(EventId = 2212, Level = LogLevel.Information, Message = "Refused MAIL from {ClientAddress}: declared SIZE {DeclaredSize} over {MaxMessageBytes}")]
    public static partial void DeclaredSizeTooLarge(ILogger logger, string? clientAddress, string declaredSize, long maxMessageBytes);

    [LoggerMessage(EventId = 2213, Level = LogLevel.Information, Message = "Refused {Command} parameter {Parameter} from {ClientAddress}: invalid value")]
    public static partial void InvalidParameter(ILogger logger, string command, string parameter, string? clientAddress);

    [LoggerMessage(EventId = 2251, Level = LogLevel.Information, Message = "Refused {Command} with parameters {Parameters} from {ClientAddress}: session opened with HELO, not EHLO")]
    public static partial void ParametersAfterHelo(ILogger logger, string command, string parameters, string? clientAddress);

    [LoggerMessage(EventId = 2214, Level = LogLevel.Debug, Message = "{Command} of session {SessionId} not matched to its command line; its parameters not kept")]
    public static partial void EnvelopeLineMismatch(ILogger logger, Guid sessionId, string command);

    [LoggerMessage(EventId = 2220, Level = LogLevel.Information, Message = "Refused message from {ClientAddress} <{Sender}>: {Reason}")]
    public static partial void MessageRefused(ILogger logger, string? clientAddress, string sender, string reason);

    [LoggerMessage(EventId = 2221, Level = LogLevel.Warning, Message = "Intake failed for message from {ClientAddress} <{Sender}>: {Reason}; answered 451")]
    public static partial void IntakeFailed(ILogger logger, string? clientAddress, string sender, string reason);

    [LoggerMessage(EventId = 2222, Level = LogLevel.Error, Message = "Unexpected error storing message from {ClientAddress}; answered 451")]
    public static partial void StoreError(ILogger logger, Exception exception, string? clientAddress);

    [LoggerMessage(EventId = 2224, Level = LogLevel.Error, Message = "Could not keep the body from {ClientAddress} <{Sender}> while it arrived; answered {Reply}")]
    public static partial void BodyNotKept(ILogger logger, Exception exception, string? clientAddress, string sender, int reply);

    [LoggerMessage(EventId = 2223, Level = LogLevel.Debug, Message = "Message from {ClientAddress} queued as {QueueIds}")]
    public static partial void Queued(ILogger logger, string? clientAddress, string queueIds);

    [LoggerMessage(EventId = 2215, Level = LogLevel.Information, Message = "Refused RCPT <{Recipient}> from {ClientAddress}: {Verdict}")]
    public static partial void RecipientRefused(ILogger logger, string? recipient, string? clientAddress, string verdict);

    [LoggerMessage(EventId = 2216, Level = LogLevel.Information, Message = "Refused MAIL from {ClientAddress}: more than {PerMinute} messages per minute")]
    public static partial void RateLimited(ILogger logger, string? clientAddress, int perMinute);

    [LoggerMessage(EventId = 2230, Level = LogLevel.Warning, Message = "Refused connection from {ClientAddress}: limit of {MaxConnections} in total or {MaxConnectionsPerIp} per client reached")]
    public static partial void ConnectionRefused(ILogger logger, string clientAddress, int maxConnections, int maxConnectionsPerIp);

    [LoggerMessage(EventId = 2231, Level = LogLevel.Warning, Message = "SMTP listener on {Endpoint} could not accept a connection: {Reason}; trying again after a pause of up to a second")]
    public static partial void AcceptFailed(ILogger logger, string endpoint, string reason);

    [LoggerMessage(EventId = 2232, Level = LogLevel.Warning, Message = "SMTP listener on {Endpoint} still cannot accept connections after {Elapsed}: {Failures} more failed attempt(s), the last: {Reason}")]
    public static partial void AcceptStillFailing(ILogger logger, string endpoint, TimeSpan elapsed, int failures, string reason);

    [LoggerMessage(EventId = 2233, Level = LogLevel.Information, Message = "SMTP listener on {Endpoint} accepting again after {Failures} failed attempt(s) over {Elapsed}")]
    public static partial void AcceptingAgain(ILogger logger, string endpoint, int failures, TimeSpan elapsed);

    [LoggerMessage(EventId = 2234, Level = LogLevel.Error, Message = "SMTP listener on {Endpoint} cannot go on and accepts no more connections; the receiver stops")]
    public static partial void ListenerFailed(ILogger logger, Exception exception, string endpoint);

    [LoggerMessage(EventId = 2235, Level = LogLevel.Debug, Message = "SMTP listener on {Endpoint}: a connection was gone before it was accepted ({Reason})")]
    public static partial void AcceptAborted(ILogger logger, string endpoint, string reason);

    [LoggerMessage(EventId = 2236, Level = LogLevel.Information, Message = "Dropped connection from {ClientAddress} before its session started: {Reason}")]
    public static partial void ConnectionSetUpFailed(ILogger logger, string clientAddress, string reason);

    [LoggerMessage(EventId = 2237, Level = LogLevel.Warning, Message = "Dropped connection from {ClientAddress} before its session started")]
    public static partial void ConnectionSetUpError(ILogger logger, Exception exception, string clientAddress);

    [LoggerMessage(EventId = 2240, Level = LogLevel.Information, Message = "{Command} from {ClientAddress}: {Reply}")]
    public static partial void Etrn(ILogger logger, string? clientAddress, string command, string reply);

    [LoggerMessage(EventId = 2241, Level = LogLevel.Error, Message = "Flush of {Domain} requested by ETRN failed")]
    public static partial void EtrnFlushFailed(ILogger logger, Exception exception, string domain);

    [LoggerMessage(EventId = 2242, Level = LogLevel.Warning, Message = "Could not resolve primary {Host} to check an ETRN client")]
    public static partial void EtrnResolveFailed(ILogger logger, Exception exception, string host);

    [LoggerMessage(EventId = 2250, Level = LogLevel.Information, Message = "STARTTLS offered with certificate {Subject} ({DnsNames}) from {Path} ({Format}), thumbprint {Thumbprint}, valid until {NotAfter:yyyy-MM-ddTHH:mm:ssZ}")]
    public static partial void TlsEnabled(ILogger logger, string subject, string dnsNames, string path, string format, string thumbprint, DateTimeOffset notAfter);

    [LoggerMessage(EventId = 2252, Level = LogLevel.Information, Message = "STARTTLS certificate reloaded from {Path} ({Format}): {Subject} ({DnsNames}), thumbprint {Thumbprint}, valid until {NotAfter:yyyy-MM-ddTHH:mm:ssZ}; new sessions use it")]
    public static partial void TlsReloaded(ILogger logger, string path, string format, string subject, string dnsNames, string thumbprint, DateTimeOffset notAfter);

    [LoggerMessage(EventId = 2253, Level = LogLevel.Error, Message = "STARTTLS certificate {Path} changed but cannot be loaded: {Reason}; still serving {Subject}, thumbprint {Thumbprint}")]
    public static partial void TlsReloadFailed(ILogger logger, string path, string reason, string subject, string thumbprint);

    [LoggerMessage(EventId = 2254, Level = LogLevel.Warning, Message = "STARTTLS certificate {Subject} from {Path} expires at {NotAfter:yyyy-MM-ddTHH:mm:ssZ}, in {DaysLeft:0.#} day(s): renew it (senders that validate, such as MTA-STS, refuse an expired one)")]
    public static partial void TlsExpiring(ILogger logger, string subject, string path, DateTimeOffset notAfter, double daysLeft);

    [LoggerMessage(EventId = 2260, Level = LogLevel.Information, Message = "Receiver settings reloaded, new sessions use them: MaxConnections {MaxConnections}, MaxConnectionsPerIp {MaxConnectionsPerIp}, MaxMessagesPerMinutePerIp {MaxMessagesPerMinutePerIp}; open sessions keep going")]
    public static partial void ReceiverReloaded(ILogger logger, int maxConnections, int maxConnectionsPerIp, int maxMessagesPerMinutePerIp);
}
