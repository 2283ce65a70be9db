using System.Net;
using SmtpServer;
using SmtpServer.Protocol;

namespace BackupMx.Smtp.Protocol;

/// <summary>
/// SmtpServer's commands, minus the ones a backup MX must not offer. Throwing from the factory
/// answers the line without executing anything (the parser runs after the line was consumed).
/// </summary>
internal sealed class ReceiverCommandFactory(bool tlsConfigured) : SmtpCommandFactory, ISmtpCommandFactory
{
    private static readonly SmtpResponse NotImplemented = new(SmtpReplyCode.CommandNotImplemented, "5.5.1 Command not implemented");

    public override SmtpCommand CreateEhlo(string domainOrAddress) => new ReceiverEhloCommand(domainOrAddress);

    public override SmtpCommand CreateHelo(string domainOrAddress) => new ReceiverHeloCommand(domainOrAddress);

    // SmtpServer trusts a PROXY line from anyone, which would let any client choose the address we log and record.
    public override SmtpCommand CreateProxy(IPEndPoint sourceEndpoint, IPEndPoint destinationEndpoint) => throw new SmtpResponseException(NotImplemented);

    // Without a configured certificate STARTTLS is neither offered nor accepted.
    public override SmtpCommand CreateStartTls() => tlsConfigured ? base.CreateStartTls() : throw new SmtpResponseException(NotImplemented);

    // CreateAuth is not virtual; re-implementing the interface method still takes it over. Without this,
    // SmtpServer falls back to an authenticator that accepts any password.
    SmtpCommand ISmtpCommandFactory.CreateAuth(AuthenticationMethod method, string parameter) => throw new SmtpResponseException(NotImplemented);
}

/// <summary>
/// HELO answered with our host name (RFC 5321 §4.1.1.1), not SmtpServer's "Hello x, haven't we met
/// before?", which ends up in senders' logs and bounce transcripts.
/// </summary>
internal sealed class ReceiverHeloCommand(string domainOrAddress) : HeloCommand(domainOrAddress)
{
    protected override string GetGreeting(ISessionContext context) => context.ServerOptions.ServerName;
}

/// <summary>EHLO with the extensions this receiver really honours, greeting with our host name.</summary>
internal sealed class ReceiverEhloCommand(string domainOrAddress) : EhloCommand(domainOrAddress)
{
    protected override string GetGreeting(ISessionContext context) => context.ServerOptions.ServerName;

    // SMTPUTF8 (RFC 6531): SmtpServer turns UTF-8 addresses into '?', so SessionInput hands it an
    // ASCII stand-in and the address is taken from the line as the client wrote it.
    // Not offered: AUTH (nobody submits here,
    // with or without TLS), ENHANCEDSTATUSCODES (SmtpServer's own replies such as "250 Ok" or
    // "503 bad sequence of commands" carry no x.y.z code; ours do, in the text). STARTTLS only with
    // a certificate and not again once secure. ETRN is answered by SessionInput, ahead of the parser.
    protected override IEnumerable<string> GetExtensions(ISessionContext context)
    {
        yield return "PIPELINING";
        yield return "8BITMIME";
        // The session's own limit, the one its MAIL SIZE= and its DATA are held to (SessionHooks, SessionInput).
        yield return FormattableString.Invariant($"SIZE {SessionState.Of(context).Input.Limits.Body.MaxContentBytes}");
        yield return "DSN";
        yield return "ETRN";
        yield return "SMTPUTF8";
        if (context.EndpointDefinition.CertificateFactory is not null && !context.Pipe.IsSecure)
        {
            yield return "STARTTLS";
        }
    }
}
