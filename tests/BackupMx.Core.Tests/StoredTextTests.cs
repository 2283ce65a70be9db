using BackupMx.Core.Forwarding;
using BackupMx.Core.Intake;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using BackupMx.Testing;

namespace BackupMx.Core.Tests;

public sealed class StoredTextTests
{
    private static readonly CancellationToken None = CancellationToken.None;
    private static readonly string Huge = "mailbox busy " + new string('x', 100 * 1024);

    [Fact]
    public void SmtpReply_HundredKilobyteText_KeepsTheStartWithinTheBound()
    {
        var reply = SmtpReply.Parse(451, "4.2.0 " + Huge);

        Assert.Equal(StoredText.MaxLength, reply.Text.Length);
        Assert.StartsWith("mailbox busy xxx", reply.Text, StringComparison.Ordinal);
        Assert.EndsWith(StoredText.CutMarker, reply.Text, StringComparison.Ordinal);
        Assert.Equal(StoredText.MaxLength, (reply with { Text = Huge }).Text.Length);
        Assert.Equal("short", new SmtpReply(250, null, "short").Text);
    }

    [Fact]
    public void Bound_CutFallsInsideASurrogatePair_KeepsThePairWhole()
    {
        var keep = StoredText.MaxLength - StoredText.CutMarker.Length;
        var text = new string('a', keep - 1) + "\U0001F600" + new string('b', 10);

        var bounded = StoredText.Bound(text)!;

        Assert.Equal(new string('a', keep - 1) + StoredText.CutMarker, bounded);
    }

    [Fact]
    public void LastErrors_OfRecordAndPrimaryStatus_AreBounded()
    {
        var record = BackupMx.Testing.Contracts.SpoolRecords.Sample() with { LastError = Huge };
        var status = new PrimaryStatus("example.test", PrimaryState.Down, null, null, Huge, null);

        Assert.Equal(StoredText.MaxLength, record.LastError!.Length);
        Assert.Equal(StoredText.MaxLength, status.LastError!.Length);
        Assert.Equal(StoredText.MaxLength, (status with { LastError = Huge }).LastError!.Length);
        Assert.Null(new PrimaryStatus("example.test", PrimaryState.Up, null, null, null, null).LastError);
    }

    [Fact]
    public async Task Process_HundredKilobyteReply_StoresTheReplyAndLastErrorBounded()
    {
        using var h = new CoreHarness();
        var accepted = await h.Intake.AcceptAsync(TestMessages.Make(), None);
        var id = Assert.Single(Assert.IsType<IntakeResult.Accepted>(accepted).QueueIds);
        h.Transport.Reply = (_, _) => SmtpReply.Parse(451, "4.2.0 " + Huge);

        Assert.Equal(ForwardOutcome.Deferred, await h.Forwarder.ProcessAsync(new WakeUp("example.test", id), None));

        var record = await h.Spool.GetAsync("example.test", id, None);
        Assert.True(record!.LastError!.Length <= StoredText.MaxLength);
        Assert.StartsWith("451 4.2.0 mailbox busy", record.LastError, StringComparison.Ordinal);
        Assert.Equal(StoredText.MaxLength, record.Recipients[0].LastReply!.Text.Length);
        var status = await h.Get<IPrimaryStatusStore>().GetAsync("example.test", None);
        Assert.True((status?.Status.LastError?.Length ?? 0) <= StoredText.MaxLength);
    }
}
