using BackupMx.Core.Configuration;
using BackupMx.Smtp.Connection;
using BackupMx.Smtp.Tls;
using Microsoft.Extensions.Options;

namespace BackupMx.Smtp.Limits;

/// <summary>
/// The receiver's limits as the configuration has them now. Each new connection takes the
/// current ones and keeps them for its whole session: the SIZE its EHLO advertises is the size
/// its MAIL and DATA are held to, and a reload never changes the rules under a session in
/// progress nor drops it. Connection counts and the message rate are checked against the current
/// values at each new connection and each MAIL.
/// </summary>
/// <remarks>
/// What SmtpServer or the listening sockets take once at start stays as it was until a restart:
/// the host name, the endpoints, the certificate file's path, the spill folder,
/// and <c>MaxConsecutiveErrors</c> (SmtpServer's MaxRetryCount).
/// </remarks>
internal sealed class ReceiverLimits(
    IOptions<BackupMxOptions> options,
    IOptions<SmtpReceiverOptions> receiverOptions,
    string hostName,
    string spillDirectory,
    ServerCertificate? tls,
    TimeProvider time)
{
    /// <summary>The largest message a session can be given: its body length must fit an int with room for framing.</summary>
    public const long MaxContentBytesCeiling = int.MaxValue - 16;

    private Snapshot? _current;

    public ConnectionLimits Connections => Current().Connections;

    public InputLimits Input => Current().Input;

    public int MaxMessagesPerMinutePerIp => receiverOptions.Value.MaxMessagesPerMinutePerIp;

    private Snapshot Current()
    {
        var core = options.Value;
        var receiver = receiverOptions.Value;
        var current = Volatile.Read(ref _current);
        if (current is not null && ReferenceEquals(current.Core, core) && ReferenceEquals(current.Receiver, receiver))
        {
            return current;
        }

        var smtp = core.Smtp;
        var next = new Snapshot(
            core,
            receiver,
            new ConnectionLimits(hostName, receiver.MaxConnections, receiver.MaxConnectionsPerIp),
            new InputLimits(
                new BodyLimits(Math.Min(smtp.MaxMessageBytes, MaxContentBytesCeiling), receiver, spillDirectory),
                receiver.MaxCommandLineLength,
                receiver.MaxCommandsPerSession,
                tls,
                PostmasterDomain(core, receiver),
                new SessionTimeouts(smtp.CommandTimeout, receiver.DataInitiationTimeout, receiver.DataBlockTimeout, smtp.SessionTimeout, time)));
        Volatile.Write(ref _current, next);
        return next;
    }

    // Spelled as configured; the option is validated to name a configured domain.
    private static string PostmasterDomain(BackupMxOptions config, SmtpReceiverOptions receiver) =>
        (string.IsNullOrWhiteSpace(receiver.PostmasterDomain) ? null : config.FindDomain(receiver.PostmasterDomain))?.Name ?? config.Domains[0].Name;

    private sealed record Snapshot(BackupMxOptions Core, SmtpReceiverOptions Receiver, ConnectionLimits Connections, InputLimits Input);
}
