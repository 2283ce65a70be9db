using System.Text;
using BackupMx.Core.Inspection;
using BackupMx.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace BackupMx.EndToEnd.Tests;

[Collection(EndToEndCollection.Name)]
public sealed class BacklogTests
{
    // Unlike any other timer of the relay's (the pump sleeps at most 30 s, the sweep 1 min, idle
    // connections 5 s), so the tests can tell when the monitor is waiting for its next probe.
    internal static readonly TimeSpan ProbeInterval = TimeSpan.FromSeconds(20);
    internal static readonly string ProbeIntervalArg = $"--BackupMx:Delivery:ProbeInterval={ProbeInterval:c}";

    [Fact]
    public async Task Backlog_PrimaryDownRelayRestartedPrimaryBack_EveryMessageArrivesOncePerRecipientByteIdentical()
    {
        using var spool = new TempFolder();
        await using var primary = new FakePrimary();
        await primary.StartAsync();
        await primary.StopAsync();
        var time = new TimerAwareTimeProvider(DateTimeOffset.UtcNow);

        const int count = 200;
        var sent = new Dictionary<string, byte[]>();
        var smtpPort = FreePort.Next();
        await using (var relay = await RelayHost.StartAsync(spool.Path, primary.Port, time, smtpPort: smtpPort, extraArgs: ProbeIntervalArg))
        {
            // 8 concurrent senders, 2 recipients each message, while the primary is down.
            var results = await Task.WhenAll(Enumerable.Range(0, 8).Select(client => Task.Run(async () =>
            {
                var replies = new List<SendResult>();
                for (var i = client; i < count; i += 8)
                {
                    var bytes = Messages.Make(i);
                    lock (sent)
                    {
                        sent[$"<msg{i}@sender.test>"] = bytes;
                    }

                    replies.Add(await SmtpSender.SendAsync(relay.SmtpPort, "alice@sender.test", ["bob@example.test", "carol@example.test"], bytes));
                }

                return replies;
            })));

            Assert.All(results.SelectMany(r => r), r => Assert.True(r.Accepted, r.DataReply));
            var summary = await relay.Services.GetRequiredService<QueueInspector>().SummarizeAsync(CancellationToken.None);
            Assert.Equal(count, summary.Single(s => s.Domain == "example.test").Messages);
        }

        // The relay restarts on the same spool; then, once its start-up probe has found the primary
        // still down and the monitor sleeps until the next one, the primary comes back.
        var probeSleeps = time.TimersCreated(ProbeInterval);
        await using (var relay = await RelayHost.StartAsync(spool.Path, primary.Port, time, smtpPort: smtpPort, extraArgs: ProbeIntervalArg))
        {
            await time.WaitForTimerAsync(ProbeInterval, probeSleeps);

            // Mail the first run left unattempted, or leased when it stopped, is tried again at start-up,
            // and some of those attempts may still be failing when the probe flushes the domain. The
            // flush passes them by (they are leased), but each is due again the moment it has failed,
            // rather than on its retry: the backlog must arrive in full without waiting for them.
            await primary.StartAsync();
            time.Advance(ProbeInterval);

            var received = await primary.WaitForMessagesAsync(count, TimeSpan.FromSeconds(120));

            var byMessageId = received.GroupBy(t => MessageId(t.Data)).ToList();
            Assert.Equal(count, byMessageId.Count);
            foreach (var group in byMessageId)
            {
                var recipients = group.SelectMany(t => t.AcceptedRecipients).Order().ToList();
                Assert.Equal(["bob@example.test", "carol@example.test"], recipients);
                foreach (var transaction in group)
                {
                    Assert.Equal("alice@sender.test", transaction.MailFrom);
                    var (header, original) = Messages.SplitReceived(transaction.Data);
                    Assert.Contains("by backup.test (BackupMx) with ESMTP id ", header);
                    Assert.Equal(sent[group.Key], original);
                }
            }

            // Nothing is left in the spool once everything is delivered.
            var inspector = relay.Services.GetRequiredService<QueueInspector>();
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while ((await inspector.SummarizeAsync(CancellationToken.None)).Sum(s => s.Messages) > 0)
            {
                Assert.True(DateTime.UtcNow < deadline, "the spool did not empty");
                await Task.Delay(50);
            }

            Assert.Equal(count, primary.Messages.Count);
        }
    }

    [Fact]
    public async Task PrimaryReturns_FirstDeliveryWaitsOnlyForTheNextProbe()
    {
        using var spool = new TempFolder();
        await using var primary = new FakePrimary();
        await primary.StartAsync();
        await primary.StopAsync();
        var time = new TimerAwareTimeProvider(DateTimeOffset.UtcNow);
        await using var relay = await RelayHost.StartAsync(spool.Path, primary.Port, time, extraArgs: ProbeIntervalArg);

        var result = await SmtpSender.SendAsync(relay.SmtpPort, "alice@sender.test", ["bob@example.test"], Messages.Make(1));
        Assert.True(result.Accepted);
        // Accepted while the primary is down: tried at once if the start-up probe had not answered
        // yet, else left to wait without an attempt. Either way its next try is the retry 5 min away
        // (not a lease's end, 15 min away while an attempt runs).
        await WaitUntilAsync(async () =>
        {
            var view = (await relay.Services.GetRequiredService<QueueInspector>().ListAsync("example.test", CancellationToken.None)).SingleOrDefault();
            var untilNext = view is null ? TimeSpan.Zero : view.NextAttemptAt - time.GetUtcNow();
            return view is not null && untilNext > TimeSpan.FromMinutes(1) && untilNext <= TimeSpan.FromMinutes(10);
        });
        await time.WaitForTimerAsync(ProbeInterval, 0);

        // The primary is back. Nothing happens before the next probe (the retry is 5 min away) ...
        await primary.StartAsync();
        time.Advance(ProbeInterval - TimeSpan.FromSeconds(1));
        await Task.Delay(300);
        Assert.Empty(primary.Messages);

        // ... and the next probe flushes it at once.
        time.Advance(TimeSpan.FromSeconds(1));
        var received = await primary.WaitForMessagesAsync(1, TimeSpan.FromSeconds(30));
        Assert.Single(received);
    }

    internal static async Task WaitUntilAsync(Func<Task<bool>> condition, int seconds = 30)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not met in time");
            await Task.Delay(20);
        }
    }

    private static string MessageId(byte[] data)
    {
        var text = Encoding.Latin1.GetString(data);
        var start = text.IndexOf("Message-ID: ", StringComparison.Ordinal) + "Message-ID: ".Length;
        return text[start..text.IndexOf("\r\n", start, StringComparison.Ordinal)];
    }
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class EndToEndCollection
{
    public const string Name = "end-to-end";
}
