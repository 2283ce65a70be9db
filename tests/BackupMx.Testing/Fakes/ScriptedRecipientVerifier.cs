using System.Collections.Concurrent;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;

namespace BackupMx.Testing.Fakes;

/// <summary>A recipient verifier whose answers the test sets per address, counting the callouts made.</summary>
public sealed class ScriptedRecipientVerifier : IRecipientVerifier
{
    private readonly ConcurrentQueue<string> _calls = new();

    /// <summary>The answer for an address; Unknown (primary unreachable) by default.</summary>
    public Func<string, VerificationOutcome> Outcome { get; set; } = _ => VerificationOutcome.Unknown;

    /// <summary>When set, every callout waits for this before answering.</summary>
    public Task? Gate { get; set; }

    public IReadOnlyCollection<string> Calls => _calls.ToArray();

    public async Task<VerificationResult> VerifyAsync(string domain, string address, CancellationToken cancellationToken)
    {
        _calls.Enqueue(address);
        if (Gate is { } gate)
        {
            await gate.WaitAsync(cancellationToken);
        }

        return Outcome(address) switch
        {
            VerificationOutcome.Exists => new VerificationResult(VerificationOutcome.Exists, new SmtpReply(250, "2.1.5", "Ok")),
            VerificationOutcome.DoesNotExist => new VerificationResult(VerificationOutcome.DoesNotExist, new SmtpReply(550, "5.1.1", "User unknown")),
            _ => new VerificationResult(VerificationOutcome.Unknown, null),
        };
    }
}
