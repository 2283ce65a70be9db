using System.Collections.Concurrent;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;

namespace BackupMx.Testing.Fakes;

/// <summary>
/// An <see cref="IMessageTransport"/> whose replies a test decides, recording every
/// attempt with the body bytes it would have sent.
/// </summary>
public sealed class ScriptedTransport : IMessageTransport
{
    public sealed record Attempt(DeliveryRequest Request, byte[] Body, IReadOnlyList<string> Recipients);

    /// <summary>Reply for a recipient; default 250 for everyone.</summary>
    public Func<DeliveryRequest, string, SmtpReply> Reply { get; set; } = (_, _) => new SmtpReply(250, "2.0.0", "ok");

    /// <summary>When false, every attempt fails as a refused connection.</summary>
    public bool Reachable { get; set; } = true;

    /// <summary>
    /// When set, decides instead of <see cref="Reachable"/> whether an attempt reaches the primary.
    /// It may do other work first, as happens while a slow connect is still failing.
    /// </summary>
    public Func<DeliveryRequest, Task<bool>>? Connect { get; set; }

    public bool Undeliverable { get; set; }

    /// <summary>Whether the primary that answers advertises DSN (as the fake primary does by default).</summary>
    public bool OffersDsn { get; set; } = true;

    /// <summary>When set, the whole result of an attempt that reaches no server (outcomes decided by the transport itself).</summary>
    public Func<DeliveryRequest, DeliveryResult>? DecideLocally { get; set; }

    public ConcurrentQueue<Attempt> Attempts { get; } = new();

    public async Task<DeliveryResult> DeliverAsync(DeliveryRequest request, CancellationToken cancellationToken)
    {
        var recipients = request.Recipients.Select(r => r.Address).ToList();
        if (DecideLocally is not null)
        {
            Attempts.Enqueue(new Attempt(request, [], recipients));
            return DecideLocally(request);
        }

        var reachable = Connect is null ? Reachable : await Connect(request);
        if (!reachable)
        {
            Attempts.Enqueue(new Attempt(request, [], recipients));
            return DeliveryResult.AllRecipients(request.Recipients, SmtpReply.LocalTransient("4.4.1", "connection refused"), null, reachedServer: false);
        }

        await using var body = await request.OpenBody(cancellationToken);
        using var copy = new MemoryStream();
        await body.CopyToAsync(copy, cancellationToken);
        Attempts.Enqueue(new Attempt(request, copy.ToArray(), recipients));
        if (Undeliverable)
        {
            return DeliveryResult.AllRecipients(request.Recipients, new SmtpReply(556, "5.1.10", "null MX", FromRemote: false), null, reachedServer: false) with { Undeliverable = true };
        }

        return new DeliveryResult(recipients.Select(r => new RecipientOutcome(r, Reply(request, r))).ToList(), "primary.test") { ReachedServer = true, RemoteOffersDsn = OffersDsn };
    }
}

/// <summary>An <see cref="IPrimaryProber"/> that answers what the test says.</summary>
public sealed class ScriptedProber : IPrimaryProber
{
    public Func<string, bool> IsUp { get; set; } = _ => true;

    public int Probes;

    public Task<ProbeResult> ProbeAsync(string domain, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref Probes);
        return Task.FromResult(IsUp(domain) ? new ProbeResult(true, "primary.test", null) : new ProbeResult(false, null, "connection refused"));
    }
}

/// <summary>A DSN composer that writes a minimal, easily checked text (the real one lives in BackupMx.Delivery).</summary>
public sealed class SimpleDsnComposer : IDsnComposer
{
    public sealed record Composition(SpoolRecord Original, IReadOnlyList<DsnRecipient> Recipients)
    {
        public IReadOnlyList<RecipientState> Failed => Recipients.Where(r => r.Action == DsnAction.Failed).Select(r => r.Recipient).ToList();

        public IReadOnlyList<RecipientState> Relayed => Recipients.Where(r => r.Action == DsnAction.Relayed).Select(r => r.Recipient).ToList();

        /// <summary>Whether the original's body was handed over (it is not when the body is gone).</summary>
        public bool HadOriginal { get; init; } = true;
    }

    /// <summary>Every DSN composed, with the recipients as they were then.</summary>
    public ConcurrentQueue<Composition> Composed { get; } = new();

    public async Task ComposeAsync(SpoolRecord original, IReadOnlyList<DsnRecipient> recipients, Stream? originalBody, Stream output, CancellationToken cancellationToken)
    {
        Composed.Enqueue(new Composition(original, recipients.ToList()) { HadOriginal = originalBody is not null });
        var text = $"From: MAILER-DAEMON\r\nTo: {original.Sender}\r\nSubject: notice {original.QueueId}\r\n\r\n"
            + string.Concat(recipients.Select(r => r.Action == DsnAction.Relayed
                ? $"{r.Recipient.Address} relayed {r.Recipient.LastReply}\r\n"
                : $"{r.Recipient.Address} {r.Recipient.FailureStatus} {r.Recipient.LastReply}\r\n"));
        var bytes = System.Text.Encoding.UTF8.GetBytes(text);
        await output.WriteAsync(bytes, cancellationToken);
    }
}
