using System.Globalization;
using System.Text;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using Microsoft.Extensions.Time.Testing;

namespace BackupMx.Testing.Model;

/// <summary>What the model knows of one recipient of one message, and what the transport saw of it.</summary>
public sealed class RecipientLedger
{
    public required string Address { get; init; }

    /// <summary>Envelope sender; empty for the null sender.</summary>
    public required string Sender { get; init; }

    public required Fate Fate { get; init; }

    /// <summary>True once intake answered 250 for its message.</summary>
    public bool Accepted { get; set; }

    /// <summary>Queue id of the spool record that holds it, and its place there (known once accepted).</summary>
    public string? QueueId { get; set; }

    public int Place { get; set; }

    /// <summary>Transactions in which the primary answered for it (the fate's index).</summary>
    public int Answers { get; set; }

    /// <summary>Process lives (epochs) in which the primary answered 250 for it.</summary>
    public List<int> Delivered { get; } = [];

    /// <summary>Epochs in which a DSN naming it reached its sender.</summary>
    public List<int> Bounced { get; } = [];

    /// <summary>Repeats a crash makes legitimate: an outcome lost after the 250, a notice queued but not yet recorded.</summary>
    public int ExcusedDeliveries { get; set; }

    public int ExcusedBounces { get; set; }

    public SmtpReply ReplyForNextAnswer()
    {
        var k = Answers++;
        var code = Fate switch
        {
            Fate.Accept => 250,
            Fate.DeferThenAccept => k < 1 ? 451 : 250,
            Fate.DeferTwiceThenAccept => k < 2 ? 451 : 250,
            Fate.Reject => 550,
            Fate.DeferThenReject => k < 1 ? 451 : 550,
            _ => 451,
        };
        return code switch
        {
            250 => new SmtpReply(250, "2.0.0", "ok"),
            451 => new SmtpReply(451, "4.2.1", "try later"),
            _ => new SmtpReply(550, "5.1.1", "no such user"),
        };
    }

    public override string ToString() => string.Create(
        CultureInfo.InvariantCulture,
        $"{Address} from <{Sender}> ({Fate}, {(Accepted ? "250" : "not accepted")}, {QueueId}#{Place}): delivered in lives [{string.Join(',', Delivered)}], bounced in lives [{string.Join(',', Bounced)}], excused {ExcusedDeliveries}/{ExcusedBounces}");
}

/// <summary>
/// Everything outside the relay: the clock, the primaries (up or down, answering each recipient
/// by its fate), the senders' MX (which takes every DSN), and the record of what they all saw.
/// </summary>
public sealed class ModelWorld
{
    private readonly Lock _lock = new();

    public ModelWorld(DateTimeOffset start)
    {
        Time = new FakeTimeProvider(start);
        Transport = new ModelTransport(this);
        Prober = new ModelProber(this);
    }

    public FakeTimeProvider Time { get; }

    public ModelTransport Transport { get; }

    public ModelProber Prober { get; }

    public HashSet<string> DownDomains { get; } = new(StringComparer.OrdinalIgnoreCase);

    public Dictionary<string, RecipientLedger> Recipients { get; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>The life of the relay process: one more after each crash.</summary>
    public int Epoch { get; set; }

    /// <summary>The current process's switch, which the transport flips for a crash right after a 250.</summary>
    public CrashSwitch? Process { get; set; }

    public bool CrashAfter250 { get; set; }

    public List<string> Violations { get; } = [];

    /// <summary>Exceptions the hosts would have logged and survived.</summary>
    public List<string> Errors { get; } = [];

    public static string DomainName(int domain) => string.Create(CultureInfo.InvariantCulture, $"d{domain}.test");

    public static string SenderAddress(int sender) => sender == 0 ? string.Empty : string.Create(CultureInfo.InvariantCulture, $"s{sender}@sender{sender}.test");

    public void Violation(string text)
    {
        lock (_lock)
        {
            Violations.Add(text);
        }
    }

    internal void Locked(Action action)
    {
        lock (_lock)
        {
            action();
        }
    }
}

public sealed class ModelProber(ModelWorld world) : IPrimaryProber
{
    public Task<ProbeResult> ProbeAsync(string domain, CancellationToken cancellationToken) =>
        Task.FromResult(world.DownDomains.Contains(domain) ? new ProbeResult(false, null, "connection refused") : new ProbeResult(true, "primary." + domain, null));
}

/// <summary>
/// The primaries and the senders' MX. A primary answers each recipient by its fate; a DSN is
/// read for the recipients it names. It checks at once what must hold in every transaction:
/// DSNs come from the null sender and never go to it.
/// </summary>
public sealed class ModelTransport(ModelWorld world) : IMessageTransport
{
    public async Task<DeliveryResult> DeliverAsync(DeliveryRequest request, CancellationToken cancellationToken)
    {
        if (request.Kind == MessageKind.Dsn)
        {
            return await TakeDsnAsync(request, cancellationToken).ConfigureAwait(false);
        }

        if (world.DownDomains.Contains(request.Domain))
        {
            return DeliveryResult.AllRecipients(request.Recipients, SmtpReply.LocalTransient("4.4.1", "connection refused"), null, reachedServer: false);
        }

        // What a real transport does first: a body that cannot be opened fails the attempt before DATA.
        await using (var body = await request.OpenBody(cancellationToken).ConfigureAwait(false))
        {
            await body.CopyToAsync(Stream.Null, cancellationToken).ConfigureAwait(false);
        }

        var outcomes = new List<RecipientOutcome>();
        var accepted = false;
        world.Locked(() =>
        {
            foreach (var recipient in request.Recipients)
            {
                if (!world.Recipients.TryGetValue(recipient.Address, out var ledger))
                {
                    world.Violation($"{request.QueueId}: delivered to {recipient.Address}, whom no intake named");
                    outcomes.Add(new RecipientOutcome(recipient.Address, new SmtpReply(250, "2.0.0", "ok")));
                    continue;
                }

                var reply = ledger.ReplyForNextAnswer();
                if (reply.IsSuccess)
                {
                    ledger.Delivered.Add(world.Epoch);
                    accepted = true;
                }

                outcomes.Add(new RecipientOutcome(recipient.Address, reply));
            }
        });

        if (accepted && world.CrashAfter250 && world.Process is { } process)
        {
            // The primary has the message; the relay dies before it can write that down.
            world.CrashAfter250 = false;
            process.Kill();
            throw new SimulatedCrashException();
        }

        return new DeliveryResult(outcomes, "primary." + request.Domain) { ReachedServer = true, RemoteOffersDsn = true };
    }

    private async Task<DeliveryResult> TakeDsnAsync(DeliveryRequest request, CancellationToken cancellationToken)
    {
        if (request.Sender.Length != 0)
        {
            world.Violation($"{request.QueueId}: a DSN from <{request.Sender}> instead of the null sender");
        }

        if (request.Recipients.Count != 1 || request.Recipients[0].Address.Length == 0)
        {
            world.Violation($"{request.QueueId}: a DSN to <{string.Join(",", request.Recipients.Select(r => r.Address))}>");
        }

        string text;
        await using (var body = await request.OpenBody(cancellationToken).ConfigureAwait(false))
        {
            using var reader = new StreamReader(body, Encoding.UTF8);
            text = await reader.ReadToEndAsync(cancellationToken).ConfigureAwait(false);
        }

        var to = request.Recipients.Count > 0 ? request.Recipients[0].Address : string.Empty;
        var named = 0;
        world.Locked(() =>
        {
            // SimpleDsnComposer writes one line per recipient, starting with its address.
            foreach (var line in text.Split("\r\n"))
            {
                var address = line.Split(' ')[0];
                if (!address.Contains('@', StringComparison.Ordinal) || !world.Recipients.TryGetValue(address, out var ledger))
                {
                    continue;
                }

                named++;
                ledger.Bounced.Add(world.Epoch);
                if (!string.Equals(ledger.Sender, to, StringComparison.OrdinalIgnoreCase))
                {
                    world.Violation($"{request.QueueId}: a DSN about {address} went to <{to}>, not to its sender <{ledger.Sender}>");
                }
            }
        });

        if (named == 0)
        {
            world.Violation($"{request.QueueId}: a DSN naming no recipient");
        }

        return DeliveryResult.AllRecipients(request.Recipients, new SmtpReply(250, "2.0.0", "ok"), "mx." + request.Domain, reachedServer: true);
    }
}
