using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using BackupMx.Core.Intake;
using BackupMx.Core.Model;
using BackupMx.Testing;

namespace BackupMx.Core.Tests;

/// <summary>
/// The names the KQL queries and metric table of docs/operations.md rely on. Listeners see every test's
/// telemetry (the source and meter are static), so each check looks for this test's queue id.
/// </summary>
public sealed class TelemetryTests : IDisposable
{
    private readonly ConcurrentBag<Activity> _spans = [];
    private readonly ConcurrentBag<(string Instrument, double Value, Dictionary<string, object?> Tags)> _measurements = [];
    private readonly ActivityListener _activities;
    private readonly MeterListener _meters;

    public TelemetryTests()
    {
        _activities = new ActivityListener
        {
            ShouldListenTo = s => s.Name == Telemetry.Name,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = _spans.Add,
        };
        ActivitySource.AddActivityListener(_activities);

        _meters = new MeterListener
        {
            InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Name == Telemetry.Name)
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            },
        };
        _meters.SetMeasurementEventCallback<long>((i, v, tags, _) => Record(i, v, tags));
        _meters.SetMeasurementEventCallback<double>((i, v, tags, _) => Record(i, v, tags));
        _meters.Start();
    }

    [Fact]
    public async Task AcceptThenForward_SpansCarryTheQueueIdAndMetricsTheDomain()
    {
        using var h = new CoreHarness();

        var result = await h.Intake.AcceptAsync(TestMessages.Make(), CancellationToken.None);
        var id = Assert.Single(Assert.IsType<IntakeResult.Accepted>(result).QueueIds);
        h.Time.Advance(TimeSpan.FromSeconds(3));
        await h.RunDueWakeUpsAsync();

        var intake = Assert.Single(_spans, s => s.OperationName == "Intake" && Tag(s, "backupmx.queue_id") == id);
        Assert.Equal("example.test", Tag(intake, "backupmx.domain"));
        var forward = Assert.Single(_spans, s => s.OperationName == "Forward" && Tag(s, "backupmx.queue_id") == id);
        Assert.Equal("example.test", Tag(forward, "backupmx.domain"));

        Assert.Contains(_measurements, m => m.Instrument == "backupmx.messages.accepted" && Equals(m.Tags.GetValueOrDefault("domain"), "example.test"));
        Assert.Contains(_measurements, m => m.Instrument == "backupmx.recipients.delivered" && Equals(m.Tags.GetValueOrDefault("domain"), "example.test"));
        Assert.Contains(_measurements, m => m.Instrument == "backupmx.delivery.latency" && Equals(m.Tags.GetValueOrDefault("domain"), "example.test") && m.Value > 0);
    }

    [Fact]
    public async Task Accept_RecipientsInTwoDomains_OneSpanListsBothQueueIds()
    {
        using var h = new CoreHarness();

        var result = await h.Intake.AcceptAsync(TestMessages.Make(recipients: ["a@example.test", "b@other.test"]), CancellationToken.None);
        var ids = Assert.IsType<IntakeResult.Accepted>(result).QueueIds;

        var intake = Assert.Single(_spans, s => s.OperationName == "Intake" && Tag(s, "backupmx.queue_id") == ids[0]);
        Assert.Equal(ids, Assert.IsType<string[]>(intake.GetTagItem("backupmx.queue_ids")));
    }

    [Fact]
    public async Task Deferral_AndBounce_AreCountedPerDomain()
    {
        using var h = new CoreHarness();
        h.Transport.Reply = (_, rcpt) => rcpt.StartsWith("later", StringComparison.Ordinal)
            ? new SmtpReply(451, "4.3.0", "try later")
            : new SmtpReply(550, "5.1.1", "no such user");

        await h.Intake.AcceptAsync(TestMessages.Make(recipients: ["later@other.test", "gone@other.test"]), CancellationToken.None);
        await h.RunDueWakeUpsAsync();

        Assert.Contains(_measurements, m => m.Instrument == "backupmx.recipients.deferred" && Equals(m.Tags.GetValueOrDefault("domain"), "other.test"));
        Assert.Contains(_measurements, m => m.Instrument == "backupmx.recipients.bounced" && Equals(m.Tags.GetValueOrDefault("domain"), "other.test"));
    }

    public void Dispose()
    {
        _activities.Dispose();
        _meters.Dispose();
    }

    private static string? Tag(Activity activity, string name) => activity.GetTagItem(name) as string;

    private void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var copy = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var tag in tags)
        {
            copy[tag.Key] = tag.Value;
        }

        _measurements.Add((instrument.Name, value, copy));
    }
}
