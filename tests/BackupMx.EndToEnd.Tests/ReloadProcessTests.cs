// Reload as an administrator does it: edit appsettings.json, send SIGHUP (systemctl reload), and
// the running relay takes the new domains without a restart and without dropping sessions. The
// server runs from a copy of its build output, so the test can edit that copy's appsettings.json.
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json.Nodes;
using BackupMx.Testing;

namespace BackupMx.EndToEnd.Tests;

[Collection(EndToEndCollection.Name)]
public sealed class ReloadProcessTests : IDisposable
{
    private const int SigHup = 1;
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    private readonly TempFolder _folder = new();
    private readonly string _app;
    private readonly int _smtpPort = FreePort.Next();

    public ReloadProcessTests()
    {
        var source = Path.GetDirectoryName(ServerProcess.LocateServerDll())!;
        _app = Path.Combine(_folder.Path, "app");
        foreach (var file in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(_app, Path.GetRelativePath(source, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
    }

    public void Dispose() => _folder.Dispose();

    [Fact]
    public async Task Sighup_DomainAdded_AcceptedAtRcptInASessionOpenedBeforeTheReload()
    {
        await using var primary = new FakePrimary();
        await primary.StartAsync();
        WriteDomains(("example.test", primary.HostPort));
        await using var server = await StartAsync();

        using var session = await SmtpSession.OpenAsync(_smtpPort);
        await session.ExpectAsync("MAIL FROM:<alice@sender.test>", "250");
        await session.ExpectAsync("RCPT TO:<bob@added.test>", "550");
        await session.ExpectAsync("RSET", "250");

        WriteDomains(("example.test", primary.HostPort), ("added.test", primary.HostPort));
        server.Signal(SigHup);
        await WaitForLogAsync(server, "SIGHUP: reloading the configuration");
        await WaitForLogAsync(server, "Configuration reloaded: 2 domain(s)");

        // The session opened before the reload is still there and uses the new configuration.
        await session.ExpectAsync("MAIL FROM:<alice@sender.test>", "250");
        await session.ExpectAsync("RCPT TO:<bob@added.test>", "250");
        await session.ExpectAsync("DATA", "354");
        await session.ExpectAsync(Encoding.ASCII.GetString(SmtpSender.DotStuff(Messages.Make(1, to: "bob@added.test"))) + ".", "250");
        await session.ExpectAsync("QUIT", "221");

        await WaitForAsync(() => primary.Messages.Any(m => m.AcceptedRecipients.Contains("bob@added.test")), server, "the added domain's message to reach its primary");
        Assert.True(server.IsRunning);
    }

    [Fact]
    public async Task Sighup_DomainRemoved_RefusedAtRcptButItsSpooledMailStillDrainsToItsPrimary()
    {
        await using var primary = new FakePrimary();
        await primary.StartAsync();

        // The removed domain's primary is down while its message is accepted, so the message is spooled.
        await using var removedPrimary = new FakePrimary(port: FreePort.Next());
        WriteDomains(("example.test", primary.HostPort), ("removed.test", removedPrimary.HostPort));
        await using var server = await StartAsync();

        var before = await SmtpSender.SendAsync(_smtpPort, "alice@sender.test", ["carol@removed.test"], Messages.Make(2, to: "carol@removed.test"));
        Assert.True(before.Accepted, before.ToString());

        WriteDomains(("example.test", primary.HostPort));
        server.Signal(SigHup);
        await WaitForLogAsync(server, "Configuration reloaded: 1 domain(s)");

        var after = await SmtpSender.SendAsync(_smtpPort, "alice@sender.test", ["dave@removed.test"], Messages.Make(3, to: "dave@removed.test"));
        Assert.StartsWith("550", after.RecipientReplies.Single(), StringComparison.Ordinal);
        var kept = await SmtpSender.SendAsync(_smtpPort, "alice@sender.test", ["bob@example.test"], Messages.Make(4));
        Assert.True(kept.Accepted, kept.ToString());

        // Its primary comes back: the spooled message goes there, to the primary it was accepted for.
        await removedPrimary.StartAsync();
        await WaitForAsync(() => removedPrimary.Messages.Any(m => m.AcceptedRecipients.Contains("carol@removed.test")), server, "the removed domain's spooled message to reach its primary");
        Assert.DoesNotContain(removedPrimary.Messages, m => m.AcceptedRecipients.Contains("dave@removed.test"));
    }

    [Fact]
    public async Task Sighup_ReceiverLimits_NewSessionGetsTheNewSizeAndConnectionLimitWhileAnOpenSessionKeepsItsOwn()
    {
        await using var primary = new FakePrimary();
        await primary.StartAsync();
        WriteDomains(("example.test", primary.HostPort));
        await using var server = await StartAsync();
        using var before = await SmtpSession.OpenAsync(_smtpPort);
        var sizeBefore = before.LastSize;

        var settings = Settings(("example.test", primary.HostPort));
        settings["BackupMx"]!["Smtp"] = new JsonObject { ["MaxMessageBytes"] = 5000, ["MaxConnectionsPerIp"] = 2 };
        File.WriteAllText(Path.Combine(_app, "appsettings.json"), settings.ToJsonString());
        server.Signal(SigHup);
        // The size is in BackupMx:Smtp too, but bound with the relay's settings, which log their own line.
        await WaitForLogAsync(server, "Receiver settings reloaded, new sessions use them: MaxConnections 500, MaxConnectionsPerIp 2");
        await WaitForLogAsync(server, "Configuration reloaded: 1 domain(s)");

        // A new session is offered and held to the new size, and a third connection is one too many.
        using var after = await SmtpSession.OpenAsync(_smtpPort);
        Assert.Equal(5000, after.LastSize);
        await after.ExpectAsync("MAIL FROM:<alice@sender.test> SIZE=10000", "552");
        using (var third = new TcpClient())
        {
            await third.ConnectAsync(IPAddress.Loopback, _smtpPort);
            using var reader = new StreamReader(third.GetStream(), Encoding.ASCII);
            Assert.StartsWith("421 4.7.0 ", await reader.ReadLineAsync(), StringComparison.Ordinal);
        }

        // The session opened before the reload keeps the size it was offered: 10000 bytes go through.
        Assert.True(sizeBefore > 10_000, $"SIZE {sizeBefore}");
        var big = "Subject: big\r\n\r\n" + string.Concat(Enumerable.Repeat(new string('x', 98) + "\r\n", 100));
        await before.ExpectAsync("MAIL FROM:<alice@sender.test> SIZE=10000", "250");
        await before.ExpectAsync("RCPT TO:<bob@example.test>", "250");
        await before.ExpectAsync("DATA", "354");
        await before.ExpectAsync(big + ".", "250");
        await before.ExpectAsync("QUIT", "221");
        await WaitForAsync(() => primary.Messages.Any(m => m.AcceptedRecipients.Contains("bob@example.test")), server, "the open session's message to reach the primary");
    }

    [Fact]
    public async Task Sighup_InvalidValue_KeepsTheOldConfigurationAndLogsTheKey()
    {
        await using var primary = new FakePrimary();
        await primary.StartAsync();
        WriteDomains(("example.test", primary.HostPort));
        await using var server = await StartAsync();

        // A typo in a value, and a domain added in the same edit: neither is applied.
        var settings = Settings(("example.test", primary.HostPort), ("added.test", primary.HostPort));
        settings["BackupMx"]!["Delivery"]!["Retention"] = "5 days";
        File.WriteAllText(Path.Combine(_app, "appsettings.json"), settings.ToJsonString());
        server.Signal(SigHup);
        await WaitForLogAsync(server, "BackupMx:Delivery:Retention: '5 days' is not a valid TimeSpan");
        Assert.Contains("Configuration reload refused", server.LogTail(200), StringComparison.Ordinal);

        var added = await SmtpSender.SendAsync(_smtpPort, "alice@sender.test", ["bob@added.test"], Messages.Make(5, to: "bob@added.test"));
        Assert.StartsWith("550", added.RecipientReplies.Single(), StringComparison.Ordinal);
        var kept = await SmtpSender.SendAsync(_smtpPort, "alice@sender.test", ["bob@example.test"], Messages.Make(6));
        Assert.True(kept.Accepted, kept.ToString());
        await WaitForAsync(() => primary.Messages.Any(m => m.AcceptedRecipients.Contains("bob@example.test")), server, "the kept domain's message to reach its primary");

        // A file that is not JSON at all: the same, and the relay does not die of it.
        File.WriteAllText(Path.Combine(_app, "appsettings.json"), "{ \"BackupMx\": { \"Domains\": [ ");
        server.Signal(SigHup);
        await WaitForLogAsync(server, "SIGHUP: the configuration could not be read");
        Assert.Contains("appsettings.json", server.LogTail(200), StringComparison.Ordinal);
        var stillKept = await SmtpSender.SendAsync(_smtpPort, "alice@sender.test", ["bob@example.test"], Messages.Make(7));
        Assert.True(stillKept.Accepted, stillKept.ToString());

        // A list entry that fails validation is refused the same way, by its key.
        WriteDomains(("example.test", primary.HostPort), ("not-a-domain", primary.HostPort));
        server.Signal(SigHup);
        await WaitForLogAsync(server, "BackupMx:Domains:1:Name 'not-a-domain' is not a domain name");
        Assert.True(server.IsRunning);
    }

    [Fact]
    public async Task Sighup_BadReceiverValueWithADomainAddedAndANewSize_AppliesNoneOfThem()
    {
        await using var primary = new FakePrimary();
        await primary.StartAsync();
        WriteDomains(("example.test", primary.HostPort));
        await using var server = await StartAsync();
        using (var first = await SmtpSession.OpenAsync(_smtpPort))
        {
            Assert.Equal(50L * 1024 * 1024, first.LastSize);
        }

        // The domain and the size are valid, the connection limit is not: the whole edit is refused.
        var settings = Settings(("example.test", primary.HostPort), ("added.test", primary.HostPort));
        settings["BackupMx"]!["Smtp"] = new JsonObject { ["MaxMessageBytes"] = 5000, ["MaxConnections"] = 0 };
        File.WriteAllText(Path.Combine(_app, "appsettings.json"), settings.ToJsonString());
        server.Signal(SigHup);
        await WaitForLogAsync(server, "Configuration reload refused");
        var log = server.LogTail(200);
        Assert.Contains(log.Split('\n'), l => l.Contains("Configuration reload refused", StringComparison.Ordinal) && l.Contains("MaxConnections", StringComparison.Ordinal));
        Assert.DoesNotContain("Configuration reloaded", log, StringComparison.Ordinal);
        Assert.DoesNotContain("Receiver settings reloaded", log, StringComparison.Ordinal);

        using var after = await SmtpSession.OpenAsync(_smtpPort);
        Assert.Equal(50L * 1024 * 1024, after.LastSize);
        await after.ExpectAsync("MAIL FROM:<alice@sender.test> SIZE=10000", "250");
        await after.ExpectAsync("RCPT TO:<bob@added.test>", "550");
        await after.ExpectAsync("RCPT TO:<bob@example.test>", "250");
    }

    [Fact]
    public async Task EditedFile_DomainAdded_AcceptedWithoutASignal()
    {
        await using var primary = new FakePrimary();
        await primary.StartAsync();
        WriteDomains(("example.test", primary.HostPort));
        await using var server = await StartAsync();

        WriteDomains(("example.test", primary.HostPort), ("added.test", primary.HostPort));
        await WaitForLogAsync(server, "Configuration reloaded: 2 domain(s)");

        var added = await SmtpSender.SendAsync(_smtpPort, "alice@sender.test", ["bob@added.test"], Messages.Make(8, to: "bob@added.test"));
        Assert.True(added.Accepted, added.ToString());
        Assert.DoesNotContain("SIGHUP", server.LogTail(500), StringComparison.Ordinal);
    }

    [Fact]
    public async Task EditedFile_InvalidValue_RefusedAndTheRelayKeepsRunning()
    {
        await using var primary = new FakePrimary();
        await primary.StartAsync();
        WriteDomains(("example.test", primary.HostPort));
        await using var server = await StartAsync();

        WriteDomains(("example.test", primary.HostPort), ("not-a-domain", primary.HostPort));
        await WaitForLogAsync(server, "BackupMx:Domains:1:Name 'not-a-domain' is not a domain name");

        var kept = await SmtpSender.SendAsync(_smtpPort, "alice@sender.test", ["bob@example.test"], Messages.Make(9));
        Assert.True(kept.Accepted, kept.ToString());
        Assert.True(server.IsRunning);
    }

    [Fact]
    public async Task Sighup_RenewedCertificateFile_ServedFromTheNextSession()
    {
        var pem = Path.Combine(_folder.Path, "tls.pem");
        var first = WriteCertificate(pem);
        WriteDomains(("example.test", "127.0.0.1:2"));

        // The periodic check is an hour away: only the reload can pick the new file up in time.
        await using var server = await StartAsync($"--BackupMx:Smtp:TlsCertificatePath={pem}", "--BackupMx:Smtp:TlsCertificateCheckInterval=01:00:00");
        Assert.Equal(first, await ServedThumbprintAsync());

        var second = WriteCertificate(pem);
        server.Signal(SigHup);
        await WaitForLogAsync(server, "STARTTLS certificate reloaded");

        Assert.Equal(second, await ServedThumbprintAsync());
    }

    private static string WriteCertificate(string path)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=backup.test", key, HashAlgorithmName.SHA256);
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        File.WriteAllText(path, certificate.ExportCertificatePem() + "\n" + key.ExportPkcs8PrivateKeyPem() + "\n");
        return certificate.Thumbprint;
    }

    private async Task<string> ServedThumbprintAsync()
    {
        using var session = await SmtpSession.OpenAsync(_smtpPort);
        return await session.StartTlsAsync();
    }

    private async Task<ServerProcess> StartAsync(params string[] extra)
    {
        var spool = Path.Combine(_folder.Path, "spool");
        var args = new List<string>
        {
            $"--BackupMx:Smtp:Endpoints:0=127.0.0.1:{_smtpPort}",
            $"--BackupMx:Spool:Path={spool}",
            "--BackupMx:Delivery:Timeout=00:00:05",
            "--BackupMx:Delivery:ProbeInterval=00:00:01",
        };
        args.AddRange(Enumerable.Range(0, 5).Select(i => $"--BackupMx:Delivery:RetryIntervals:{i}=00:00:01"));
        args.AddRange(extra);
        var server = new ServerProcess(Path.Combine(_folder.Path, "server.log"), args) { ServerDll = Path.Combine(_app, "BackupMx.Server.dll") };
        try
        {
            await server.StartAsync(_smtpPort, StartTimeout);
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }

        return server;
    }

    // The domains live in appsettings.json only: a command-line value would win over any edit of the file.
    private void WriteDomains(params (string Name, string Primary)[] domains) =>
        File.WriteAllText(Path.Combine(_app, "appsettings.json"), Settings(domains).ToJsonString());

    private static JsonObject Settings(params (string Name, string Primary)[] domains)
    {
        var list = new JsonArray();
        foreach (var (name, primary) in domains)
        {
            list.Add(new JsonObject { ["Name"] = name, ["Primary"] = primary });
        }

        return new JsonObject
        {
            ["BackupMx"] = new JsonObject
            {
                ["HostName"] = "backup.test",
                ["Domains"] = list,
                ["Delivery"] = new JsonObject { ["Retention"] = "5.00:00:00" },
            },
        };
    }

    private static Task WaitForLogAsync(ServerProcess server, string text) =>
        WaitForAsync(() => server.LogTail(500).Contains(text, StringComparison.Ordinal), server, $"the log to say \"{text}\"");

    private static async Task WaitForAsync(Func<bool> condition, ServerProcess server, string what)
    {
        var deadline = DateTime.UtcNow + Deadline;
        while (!condition())
        {
            Assert.True(server.IsRunning, $"The server exited while waiting for {what}:\n{server.LogTail(40)}");
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"Timed out waiting for {what}:\n{server.LogTail(40)}");
            }

            await Task.Delay(50);
        }
    }

    /// <summary>One SMTP session kept open across the reload.</summary>
    private sealed class SmtpSession : IDisposable
    {
        private readonly TcpClient _client;
        private readonly StreamReader _reader;
        private readonly Stream _stream;

        private SmtpSession(TcpClient client)
        {
            _client = client;
            _stream = client.GetStream();
            _reader = new StreamReader(_stream, Encoding.ASCII);
        }

        /// <summary>The SIZE the last EHLO advertised.</summary>
        public long? LastSize { get; private set; }

        public static async Task<SmtpSession> OpenAsync(int port)
        {
            var client = new TcpClient();
            await client.ConnectAsync(IPAddress.Loopback, port);
            var session = new SmtpSession(client);
            Assert.StartsWith("220", await session.ReadReplyAsync(), StringComparison.Ordinal);
            await session.ExpectAsync("EHLO client.test", "250");
            return session;
        }

        public async Task ExpectAsync(string command, string code)
        {
            await _stream.WriteAsync(Encoding.ASCII.GetBytes(command + "\r\n"));
            var reply = await ReadReplyAsync();
            Assert.True(reply.StartsWith(code, StringComparison.Ordinal), $"{command.Split('\r')[0]}: expected {code}, got {reply}");
        }

        /// <summary>STARTTLS; returns the thumbprint of the certificate the server presented.</summary>
        public async Task<string> StartTlsAsync()
        {
            await ExpectAsync("STARTTLS", "220");
            using var tls = new SslStream(_stream, leaveInnerStreamOpen: true, (_, _, _, _) => true);
            await tls.AuthenticateAsClientAsync("backup.test");
            return new X509Certificate2(tls.RemoteCertificate!).Thumbprint;
        }

        public void Dispose()
        {
            _reader.Dispose();
            _client.Dispose();
        }

        private async Task<string> ReadReplyAsync()
        {
            using var timeout = new CancellationTokenSource(Deadline);
            while (true)
            {
                var line = await _reader.ReadLineAsync(timeout.Token) ?? throw new IOException("The server closed the session.");
                if (line.Length > 9 && line[4..].StartsWith("SIZE ", StringComparison.Ordinal))
                {
                    LastSize = long.Parse(line[9..], System.Globalization.CultureInfo.InvariantCulture);
                }
                if (line.Length < 4 || line[3] == ' ')
                {
                    return line;
                }
            }
        }
    }
}
