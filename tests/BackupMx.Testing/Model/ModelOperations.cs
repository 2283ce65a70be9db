// Model-based tests of the spool: the operations and their generators.
//
// A run is a random sequence of these operations against the real Core services
// over a real spool (SQLite and files, or Tables and Blobs on Azurite). The
// operations are what the world does to a relay: mail arrives, the primary
// answers, goes down and comes back, the process dies (at any write, or right
// after a primary's 250), the clock jumps, wake-ups are lost, an operator runs
// `flush` from another process. SpoolModelRunner applies them and checks the
// three invariants of the spool against what the transport saw.
using System.Globalization;
using System.Text;
using CsCheck;

namespace BackupMx.Testing.Model;

/// <summary>What a recipient's primary answers, attempt after attempt (the last answer repeats).</summary>
public enum Fate
{
    Accept,
    DeferThenAccept,
    DeferTwiceThenAccept,
    Reject,
    DeferThenReject,
    AlwaysDefer,
}

public abstract record ModelOp;

/// <summary>
/// One message; <paramref name="Sender"/> 0 is the null sender, others a sender domain of their own.
/// A client told 451 sends it again at once, once.
/// </summary>
public sealed record IntakeOp(int Sender, IReadOnlyList<RecipientPlan> Recipients) : ModelOp
{
    public override string ToString() =>
        $"Intake(sender {Sender}: {string.Join(", ", Recipients.Select(r => $"d{r.Domain}:{r.Fate}"))})";
}

public sealed record RecipientPlan(int Domain, Fate Fate);

/// <summary>The delivery pump's pass (embedded) or the Forward function's receive (Azure); <paramref name="Race"/> runs each message twice at once.</summary>
public sealed record DeliverOp(bool Race) : ModelOp;

public sealed record SweepOp : ModelOp;

/// <summary>A forward clock step.</summary>
public sealed record AdvanceOp(TimeSpan By) : ModelOp
{
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"Advance({By})");
}

/// <summary>The relay's clock jumps against the world's: small backward skews (and back to none).</summary>
public sealed record SkewOp(TimeSpan Offset) : ModelOp
{
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"Skew({Offset})");
}

public sealed record PrimaryDownOp(int Domain) : ModelOp;

/// <summary>The primary comes back and a probe sees it: its domain is flushed.</summary>
public sealed record PrimaryUpOp(int Domain) : ModelOp;

public sealed record ProbeOp : ModelOp;

/// <summary>
/// The process dies at its <paramref name="AfterWrites"/>-th write from now (0: at once), just before
/// or just after that write is made.
/// </summary>
public sealed record CrashOp(int AfterWrites, bool AfterTheWrite) : ModelOp;

/// <summary>
/// The <paramref name="AfterWrites"/>-th storage write from now fails once, before it is made or
/// after (the reply lost); the process lives on.
/// </summary>
public sealed record FaultOp(int AfterWrites, bool AfterTheWrite) : ModelOp;

/// <summary>The process dies as the next primary answers 250, before the outcome is saved.</summary>
public sealed record CrashAfter250Op : ModelOp;

/// <summary>The clock jumps past the retention (and a lease).</summary>
public sealed record ExpireOp : ModelOp;

/// <summary>Every scheduled wake-up is dropped (the sweep must rescue their messages).</summary>
public sealed record LoseWakeUpsOp : ModelOp;

/// <summary>The <c>flush DOMAIN</c> command from a second process, on the same storage.</summary>
public sealed record AdminFlushOp(int Domain) : ModelOp;

public static class ModelGen
{
    public const int DomainCount = 3;

    public static readonly Gen<Fate> Fate = Gen.Frequency(
        (6, Gen.Const(Model.Fate.Accept)),
        (3, Gen.Const(Model.Fate.DeferThenAccept)),
        (1, Gen.Const(Model.Fate.DeferTwiceThenAccept)),
        (2, Gen.Const(Model.Fate.Reject)),
        (1, Gen.Const(Model.Fate.DeferThenReject)),
        (1, Gen.Const(Model.Fate.AlwaysDefer)));

    public static readonly Gen<int> Domain = Gen.Int[0, DomainCount - 1];

    public static readonly Gen<RecipientPlan> Recipient = Gen.Select(Domain, Fate, (d, f) => new RecipientPlan(d, f));

    public static readonly Gen<ModelOp> Intake =
        Gen.Select(Gen.Frequency((1, Gen.Const(0)), (4, Gen.Int[1, 2])), Recipient.Array[1, 5], (s, r) => (ModelOp)new IntakeOp(s, r));

    public static readonly Gen<ModelOp> Operation = Gen.Frequency(
        (12, Intake),
        (10, Gen.Bool.Select(race => (ModelOp)new DeliverOp(race))),
        (3, Gen.Const<ModelOp>(new SweepOp())),
        (6, Gen.Frequency(
            (3, Gen.Int[1, 150].Select(s => TimeSpan.FromSeconds(s))),
            (2, Gen.Int[3, 30].Select(m => TimeSpan.FromMinutes(m))),
            (1, Gen.Int[1, 3].Select(h => TimeSpan.FromHours(h)))).Select(by => (ModelOp)new AdvanceOp(by))),
        (2, Gen.Int[-3000, 0].Select(ms => (ModelOp)new SkewOp(TimeSpan.FromMilliseconds(ms)))),
        (3, Domain.Select(d => (ModelOp)new PrimaryDownOp(d))),
        (3, Domain.Select(d => (ModelOp)new PrimaryUpOp(d))),
        (1, Gen.Const<ModelOp>(new ProbeOp())),
        (3, Gen.Select(Gen.Int[0, 12], Gen.Bool, (n, after) => (ModelOp)new CrashOp(n, after))),
        (2, Gen.Const<ModelOp>(new CrashAfter250Op())),
        (2, Gen.Select(Gen.Int[1, 12], Gen.Frequency((3, Gen.Const(false)), (1, Gen.Const(true))), (n, after) => (ModelOp)new FaultOp(n, after))),
        (1, Gen.Const<ModelOp>(new ExpireOp())),
        (2, Gen.Const<ModelOp>(new LoseWakeUpsOp())),
        (2, Domain.Select(d => (ModelOp)new AdminFlushOp(d))));

    public static readonly Gen<ModelOp[]> Sequence = Operation.Array[1, 40];

    public static string Print(ModelOp[] ops)
    {
        var text = new StringBuilder();
        for (var i = 0; i < ops.Length; i++)
        {
            text.Append(CultureInfo.InvariantCulture, $"\n  {i,2}: {ops[i]}");
        }

        return text.ToString();
    }
}

/// <summary>
/// How many random sequences a model test runs: a small fixed number in CI, more with
/// <c>BACKUPMX_MODEL_RUNS=N</c>.
/// </summary>
public static class ModelRuns
{
    public const string Variable = "BACKUPMX_MODEL_RUNS";

    public static long Count(long ciDefault) =>
        long.TryParse(Environment.GetEnvironmentVariable(Variable), NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0 ? n : ciDefault;
}
