using System.Collections.Concurrent;
using BackupMx.Core.Inspection;
using BackupMx.Core.Ports;
using BackupMx.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using MimeKit;

namespace BackupMx.EndToEnd.Tests;

/// <summary>
/// The relay between a scripted primary and a second fake server standing in for the
/// senders' MX (the bounce smart host), on fake time, with its spool open to inspection.
/// </summary>
internal sealed class FaultRig : IAsyncDisposable
{
    public const string Domain = "example.test";

    private FaultRig(TempFolder spool, FakePrimary primary, FakePrimary senderMx, FakeTimeProvider time, RelayHost relay, CapturingLoggerProvider logs)
    {
        Spool = spool;
        Primary = primary;
        SenderMx = senderMx;
        Time = time;
        Relay = relay;
        Logs = logs;
    }

    public TempFolder Spool { get; }

    public FakePrimary Primary { get; }

    public FakePrimary SenderMx { get; }

    public FakeTimeProvider Time { get; }

    public RelayHost Relay { get; }

    public CapturingLoggerProvider Logs { get; }

    public QueueInspector Inspector => Relay.Services.GetRequiredService<QueueInspector>();

    public ISpoolStore SpoolStore => Relay.Services.GetRequiredService<ISpoolStore>();

    public static async Task<FaultRig> StartAsync(Action<FakePrimary>? script = null, Action<HostApplicationBuilder>? configure = null, Func<int, int?>? primaryPortFor = null, params string[] extraArgs)
    {
        var spool = new TempFolder();
        var primary = new FakePrimary();
        script?.Invoke(primary);
        await primary.StartAsync();
        var senderMx = new FakePrimary { ServerName = "mx.sender.test", Greeting = new FakeReply(220, "mx.sender.test ESMTP") };
        await senderMx.StartAsync();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var logs = new CapturingLoggerProvider();
        var smtpPort = FreePort.Next();
        var relay = await RelayHost.StartAsync(
            spool.Path,
            primaryPortFor?.Invoke(smtpPort) ?? primary.Port,
            time,
            builder =>
            {
                configure?.Invoke(builder);
                builder.Logging.AddProvider(logs);
            },
            bounceSmartHostPort: senderMx.Port,
            smtpPort: smtpPort,
            extraArgs);
        return new FaultRig(spool, primary, senderMx, time, relay, logs);
    }

    public Task<SendResult> SendAsync(int n, params string[] recipients) =>
        SmtpSender.SendAsync(Relay.SmtpPort, "alice@sender.test", recipients.Length == 0 ? ["bob@example.test"] : recipients, Messages.Make(n));

    /// <summary>Sends a message too large to be kept in the spool database, so its body is a file.</summary>
    public Task<SendResult> SendLargeAsync(int n) =>
        SmtpSender.SendAsync(Relay.SmtpPort, "alice@sender.test", ["bob@example.test"], Messages.MakeLarge(n, BackupMx.Local.SqliteSpoolStore.InlineBodyLimit + 4096));

    public async Task<IReadOnlyList<QueuedMessageView>> QueueAsync(string domain = Domain) =>
        await Inspector.ListAsync(domain, CancellationToken.None);

    /// <summary>
    /// Waits for the first attempt at the one queued message and returns it with the (fake) time
    /// it was made. A message accepted after the start-up probe found the primary down has no
    /// attempt of its own: time is advanced to its first retry. One accepted before the probe's
    /// verdict is tried at once.
    /// </summary>
    public async Task<(QueuedMessageView View, DateTimeOffset AttemptedAt)> WaitForFirstAttemptAsync(TimeSpan firstRetry)
    {
        QueuedMessageView? waiting = null;
        await BacklogTests.WaitUntilAsync(async () =>
        {
            var queue = await QueueAsync();
            var view = queue.Count == 1 ? queue[0] : null;
            var untilNext = view is null ? TimeSpan.Zero : view.NextAttemptAt - Time.GetUtcNow();

            // Not to be confused with a lease (the next attempt is then the lease's end, 15 min away).
            waiting = view is { Attempts: 0, LastError: null } && view.NextAttemptAt == view.ReceivedAt + firstRetry ? view : null;
            return waiting is not null || (view is not null && view.Attempts >= 1 && untilNext <= TimeSpan.FromHours(1) && view.LastError is not null);
        });

        if (waiting is not null)
        {
            Time.Advance(waiting.NextAttemptAt - Time.GetUtcNow());
        }

        var attemptedAt = Time.GetUtcNow();
        return (await WaitForAttemptsAsync(1), attemptedAt);
    }

    /// <summary>Waits until the one queued message of the domain shows <paramref name="attempts"/> attempts and is not leased.</summary>
    public async Task<QueuedMessageView> WaitForAttemptsAsync(int attempts)
    {
        QueuedMessageView? view = null;
        await BacklogTests.WaitUntilAsync(async () =>
        {
            var queue = await QueueAsync();
            view = queue.Count == 1 ? queue[0] : null;

            // While leased, the next attempt is the lease's end, far from any retry interval.
            return view is not null && view.Attempts == attempts && view.NextAttemptAt - Time.GetUtcNow() <= TimeSpan.FromHours(1) && view.LastError is not null;
        });
        return view!;
    }

    public async Task WaitForEmptySpoolAsync()
    {
        await BacklogTests.WaitUntilAsync(async () =>
        {
            await foreach (var _ in SpoolStore.ListAllAsync(CancellationToken.None))
            {
                return false;
            }

            return true;
        });
    }

    /// <summary>The per-recipient fields of the one DSN the sender's MX received.</summary>
    public async Task<IReadOnlyList<HeaderList>> SingleDsnAsync()
    {
        var dsn = Assert.Single(await SenderMx.WaitForMessagesAsync(1, TimeSpan.FromSeconds(30)));
        Assert.Equal(string.Empty, dsn.MailFrom);
        Assert.Equal(["alice@sender.test"], dsn.AcceptedRecipients);
        var report = Assert.IsType<MultipartReport>(MimeMessage.Load(new MemoryStream(dsn.Data)).Body);
        // Parsing leaves an empty group after the last blank line.
        return Assert.Single(report.OfType<MessageDeliveryStatus>()).StatusGroups.Skip(1).Where(g => g.Count > 0).ToList();
    }

    public async ValueTask DisposeAsync()
    {
        await Relay.DisposeAsync();
        await Primary.DisposeAsync();
        await SenderMx.DisposeAsync();
        Spool.Dispose();
    }
}

/// <summary>Keeps every log entry at Warning or above, so a test can fail on unexpected errors.</summary>
internal sealed class CapturingLoggerProvider : ILoggerProvider
{
    private readonly ConcurrentQueue<(LogLevel Level, string Category, EventId EventId, string Message, Exception? Exception)> _entries = new();

    public IReadOnlyList<(LogLevel Level, string Category, EventId EventId, string Message, Exception? Exception)> Entries => _entries.ToArray();

    public IEnumerable<string> AtLeast(LogLevel level) =>
        Entries.Where(e => e.Level >= level).Select(e => $"{e.Level} {e.Category}[{e.EventId.Id}]: {e.Message}{(e.Exception is null ? "" : " | " + e.Exception)}");

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose()
    {
    }

    private sealed class Logger(CapturingLoggerProvider provider, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel))
            {
                provider._entries.Enqueue((logLevel, category, eventId, formatter(state, exception), exception));
            }
        }
    }
}
