// Rule 1 in Azure mode against the harshest crash: the real receiver host (ReceiverHost, as a
// child process, on Azurite) is killed with SIGKILL while clients send over SMTP, at the three
// crash points of an intake (after the body's blob, after the spool record, after the wake-up
// and before the 250) and at random moments from outside. After the last kill the forwarding
// side (the Forward and Expire functions' code) runs until the spool drains to a fake primary.
//
// Service Bus has no emulator, so the receiver's wake-ups go to an Azurite table that, like a
// scheduled message, survives the kill (tests/BackupMx.Receiver.CrashHelper); the forwarder gets
// them through the Service Bus adapter over the recording fakes, as the other Azure-mode tests do.
//
// A message whose record was committed but whose 250 never reached the client (killed after the
// record or the wake-up) is delivered, and the client sends it again under a new attempt id, as a
// real MTA would: that is the duplicate SMTP cannot exclude (RFC 5321 §6.1). It is counted and
// bounded by the kills. A blob without a record (killed after the blob) was never answered 250;
// it is counted and must not be delivered.
//
// Short run by default; BACKUPMX_AZURE_SIGKILL_ROUNDS (default 6) and BACKUPMX_AZURE_SIGKILL_SEED
// (default random, printed) make it longer or repeat its choices.
using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using Azure.Data.Tables;
using Azure.Messaging.ServiceBus;
using Azure.Storage.Blobs;
using BackupMx.Azure;
using BackupMx.Azure.Tests;
using BackupMx.Core.Ports;
using BackupMx.Receiver.CrashHelper;
using BackupMx.Testing;
using BackupMx.Testing.Azurite;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Xunit.Abstractions;

namespace BackupMx.Functions.Tests;

[Collection(AzuriteFixture.CollectionName)]
public sealed class AzureReceiverSigkillTests(AzuriteFixture azurite, ITestOutputHelper output)
{
    private const string Domain = "example.test";
    private const int Clients = 4;
    private const int LargeBodyBytes = (4 * 1024 * 1024) + (512 * 1024);
    private static readonly string[] CrashPoints = ["blob", "record", "wakeup", "timing"];
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task ReceiverSigkilled_AtIntakeCrashPointsAndRandomMoments_EveryAcceptedMessageIsDelivered()
    {
        var rounds = EnvInt("BACKUPMX_AZURE_SIGKILL_ROUNDS", 6);
        var seed = EnvInt("BACKUPMX_AZURE_SIGKILL_SEED", Random.Shared.Next());
        Say($"Azure receiver SIGKILL run: seed {seed}, {rounds} rounds, {Clients} clients (BACKUPMX_AZURE_SIGKILL_SEED={seed} repeats the choices; timing still varies)");

        await using var primary = new FakePrimary();
        await primary.StartAsync();
        var smtpPort = FreePort.Next();
        var settings = AzureModeSettings.Create(azurite, Domain, primary.HostPort, smtpPort);
        settings["BackupMx:Smtp:MaxConnectionsPerIp"] = "1000";
        settings["BackupMx:Smtp:MaxMessagesPerMinutePerIp"] = "0";
        settings["Logging:LogLevel:Default"] = "Warning";
        var wakeUpTable = AzuriteFixture.UniqueName("wakeups");
        var logPath = Path.Combine(Path.GetTempPath(), $"backupmx-azure-sigkill-{seed}-{System.Environment.ProcessId}.log");
        await using var receiver = new ReceiverProcess(logPath, settings.Select(s => $"--{s.Key}={s.Value}").ToList());

        var random = new Random(seed);
        var accepted = new ConcurrentDictionary<string, int>();
        var refused = new ConcurrentDictionary<string, string>();
        var failedAttempts = 0;
        var next = -1;
        var sending = true;
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(120 + (rounds * 30)));

        var clock = System.Diagnostics.Stopwatch.StartNew();

        // The clients start at once and retry until the first instance listens.
        var senders = Enumerable.Range(0, Clients).Select(client => Task.Run(async () =>
        {
            var clientRandom = new Random(seed + client + 1);
            int n;
            while (Volatile.Read(ref sending) && (n = Interlocked.Increment(ref next)) >= 0)
            {
                for (var attempt = 0; ; attempt++)
                {
                    stop.Token.ThrowIfCancellationRequested();
                    var id = $"m{n}.t{attempt}@azure-sigkill.test";
                    try
                    {
                        using var perMessage = CancellationTokenSource.CreateLinkedTokenSource(stop.Token);
                        perMessage.CancelAfter(TimeSpan.FromSeconds(15));
                        var result = await SmtpSender.SendAsync(smtpPort, "alice@sender.test", ["bob@example.test"], Message(id, n), cancellationToken: perMessage.Token);
                        if (result.Accepted)
                        {
                            accepted[id] = n;
                            break;
                        }

                        refused[id] = result.DataReply ?? result.RecipientReplies.FirstOrDefault() ?? result.MailReply;
                    }
                    catch (Exception ex) when (ex is IOException or System.Net.Sockets.SocketException or InvalidOperationException || (ex is OperationCanceledException && !stop.IsCancellationRequested))
                    {
                        // Killed mid-session or restarting: a real MTA retries later.
                    }

                    Interlocked.Increment(ref failedAttempts);
                    await Task.Delay(clientRandom.Next(20, 120), stop.Token);
                }

                await Task.Delay(clientRandom.Next(0, 30), stop.Token);
            }
        })).ToList();

        var kills = new Dictionary<string, int>(StringComparer.Ordinal);
        var pointsNotReached = 0;
        for (var round = 0; round < rounds; round++)
        {
            // Every crash point comes up in the first rounds; the rest are random.
            var point = round < CrashPoints.Length ? CrashPoints[round] : CrashPoints[random.Next(CrashPoints.Length)];
            await receiver.StartAsync(smtpPort, ReceiverEnvironment(wakeUpTable, point == "timing" ? null : $"{point}:{random.Next(1, 6)}"), StartTimeout);

            if (point == "timing")
            {
                await Task.Delay(random.Next(200, 2500), stop.Token);
            }
            else if (!await receiver.WaitForExitAsync(TimeSpan.FromSeconds(20)))
            {
                pointsNotReached++;
            }

            await receiver.KillAsync();
            kills[point] = kills.GetValueOrDefault(point) + 1;
            await Task.Delay(random.Next(0, 200), stop.Token);
        }

        // A last, healthy instance takes what the clients still retry; then it is killed too.
        await receiver.StartAsync(smtpPort, ReceiverEnvironment(wakeUpTable, null), StartTimeout);
        Volatile.Write(ref sending, false);
        await Task.WhenAll(senders);
        await receiver.KillAsync();
        var intakeSeconds = clock.Elapsed.TotalSeconds;

        // The forwarding side: the receivers' durable wake-ups, then Forward and the sweep until drained.
        var (wakeUps, recordsAtDrain, withoutWakeUp, leftInSpool, forwardRuns) = await DrainAsync(settings, wakeUpTable);

        var counts = primary.Messages.GroupBy(m => MessageId(m.Data)).ToDictionary(g => g.Key, g => g.Count());
        var missing = accepted.Keys.Where(id => !counts.ContainsKey(id)).Order().ToList();
        var sameIdTwice = counts.Where(c => c.Value > 1).Select(c => c.Key).ToList();
        var withoutReply = counts.Keys.Where(id => !accepted.ContainsKey(id)).ToList();
        var byMessage = counts.GroupBy(c => Number(c.Key)).ToDictionary(g => g.Key, g => g.Sum(c => c.Value));
        var messagesSentTwice = byMessage.Count(m => m.Value > 1);
        var extraCopies = byMessage.Values.Sum(v => v - 1);
        var refusedDelivered = refused.Keys.Where(counts.ContainsKey).ToList();
        var permanent = refused.Where(r => r.Value.StartsWith('5')).ToList();
        var leftovers = await LeftoverBodiesAsync(settings);
        var totalKills = kills.Values.Sum();

        Say($"RESULT rounds={rounds} kills={totalKills} ({string.Join(", ", kills.Select(k => $"{k.Key} {k.Value}"))}; crash point not reached in time {pointsNotReached}) receiver-starts={receiver.Starts} " +
            $"accepted={accepted.Count} (large {accepted.Values.Count(n => n % 12 == 5)}) delivered={accepted.Keys.Count(counts.ContainsKey)} missing={missing.Count} duplicates={sameIdTwice.Count} " +
            $"delivered-without-250={withoutReply.Count} messages-delivered-more-than-once={messagesSentTwice} extra-copies={extraCopies} refused-replies={refused.Count} refused-delivered={refusedDelivered.Count} " +
            $"failed-attempts={failedAttempts} durable-wake-ups={wakeUps} records-at-drain={recordsAtDrain} records-without-wake-up={withoutWakeUp} left-in-spool={leftInSpool} forward-rounds={forwardRuns} orphan-blobs={leftovers.Count} " +
            $"intake={intakeSeconds:F1}s total={clock.Elapsed.TotalSeconds:F1}s");
        if (missing.Count > 0 || leftInSpool > 0)
        {
            Say("missing: " + string.Join(", ", missing.Take(20)));
            Say($"receiver log: {logPath}; tail:\n{receiver.Tail()}");
        }

        Assert.True(accepted.Count >= rounds, $"only {accepted.Count} messages were accepted in {rounds} rounds");
        Assert.Equal(rounds, totalKills);
        Assert.Empty(missing);
        Assert.Equal(0, leftInSpool);

        // Forwarding after the kills meets no fault: each committed queue id reaches the primary once.
        Assert.Empty(sameIdTwice);

        // Resent after a lost 250: at most one copy per client session a kill cut.
        Assert.InRange(extraCopies, 0, totalKills * Clients);
        Assert.Empty(permanent);
        Assert.Empty(refusedDelivered);

        // A blob without a record never got its 250 and is never delivered.
        Assert.All(leftovers, id => Assert.False(accepted.ContainsKey(id), id + " was answered 250 but its record is gone"));
        Assert.All(leftovers, id => Assert.False(counts.ContainsKey(id), id + " has no record and was delivered"));
        Assert.InRange(leftovers.Count, 0, totalKills * Clients);
        File.Delete(logPath);
    }

    private static Dictionary<string, string?> ReceiverEnvironment(string wakeUpTable, string? crashAt) => new()
    {
        ["BACKUPMX_CRASH_WAKEUPS_TABLE"] = wakeUpTable,
        ["BACKUPMX_CRASH_AT"] = crashAt,
    };

    /// <summary>
    /// Hands every wake-up the receivers left to the Forward function, then runs the sweep and
    /// Forward on a clock 10 minutes further each round, as the timers would, until the spool is
    /// empty. A record whose receiver died before its wake-up is found by the sweep alone.
    /// </summary>
    private async Task<(int WakeUps, int Records, int WithoutWakeUp, int Left, int Rounds)> DrainAsync(Dictionary<string, string?> settings, string wakeUpTable)
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var sender = new FakeSender();
        var serviceBus = new FakeReceiver();
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddSingleton<TimeProvider>(time);
        services.AddSingleton(new ServiceBusWakeUpQueue(sender, serviceBus));
        services.AddBackupMxFunctions(configuration);
        services.AddSingleton<ForwardFunction>();
        services.AddSingleton<ExpireFunction>();
        await using var provider = services.BuildServiceProvider();
        var spool = provider.GetRequiredService<ISpoolStore>();

        var wakeUps = 0;
        var woken = new HashSet<string>(StringComparer.Ordinal);
        var sequence = 1L;
        await foreach (var row in new TableClient(azurite.ConnectionString, wakeUpTable).QueryAsync<TableEntity>())
        {
            wakeUps++;
            woken.Add(row.GetString(TableWakeUpQueue.QueueIdColumn));
            serviceBus.Available.Enqueue(ServiceBusModelFactory.ServiceBusReceivedMessage(
                body: BinaryData.FromString("{}"),
                messageId: row.RowKey,
                sequenceNumber: sequence++,
                properties: new Dictionary<string, object>
                {
                    [ServiceBusWakeUpQueue.DomainProperty] = row.GetString(TableWakeUpQueue.DomainColumn),
                    [ServiceBusWakeUpQueue.QueueIdProperty] = row.GetString(TableWakeUpQueue.QueueIdColumn),
                    [ServiceBusWakeUpQueue.DueAtProperty] = row.GetInt64(TableWakeUpQueue.DueAtColumn)!.Value,
                }));
        }

        var records = 0;
        var withoutWakeUp = 0;
        await foreach (var record in spool.ListAllAsync(CancellationToken.None))
        {
            records++;
            withoutWakeUp += woken.Contains(record.QueueId) ? 0 : 1;
        }

        var released = new HashSet<long>();
        var abandonedSeen = 0;
        var forward = provider.GetRequiredService<ForwardFunction>();
        var expire = provider.GetRequiredService<ExpireFunction>();
        var round = 0;
        for (; round < 30; round++)
        {
            await forward.ForwardDueAsync(CancellationToken.None);
            if (await CountAsync(spool) == 0)
            {
                break;
            }

            // What Service Bus does between runs: due scheduled and abandoned wake-ups become receivable.
            time.Advance(TimeSpan.FromMinutes(10));
            await expire.SweepAsync(CancellationToken.None);
            foreach (var (message, at, sequenceNumber) in sender.Scheduled)
            {
                if (at <= time.GetUtcNow() && !sender.Cancelled.Contains(sequenceNumber) && released.Add(sequenceNumber))
                {
                    serviceBus.Available.Enqueue(ServiceBusModelFactory.ServiceBusReceivedMessage(
                        body: message.Body, messageId: message.MessageId, sequenceNumber: sequenceNumber, properties: message.ApplicationProperties));
                }
            }

            while (abandonedSeen < serviceBus.Abandoned.Count)
            {
                serviceBus.Available.Enqueue(serviceBus.Abandoned[abandonedSeen++]);
            }
        }

        return (wakeUps, records, withoutWakeUp, await CountAsync(spool), round + 1);
    }

    private static async Task<int> CountAsync(ISpoolStore spool)
    {
        var count = 0;
        await foreach (var _ in spool.ListAllAsync(CancellationToken.None))
        {
            count++;
        }

        return count;
    }

    /// <summary>The Message-IDs of the bodies still in the container once the spool is empty: blobs without a record.</summary>
    private async Task<List<string>> LeftoverBodiesAsync(Dictionary<string, string?> settings)
    {
        var container = new BlobContainerClient(azurite.ConnectionString, settings["BackupMx:Azure:BodiesContainer"]);
        var ids = new List<string>();
        await foreach (var blob in container.GetBlobsAsync())
        {
            var content = await container.GetBlobClient(blob.Name).DownloadContentAsync();
            ids.Add(MessageId(content.Value.Content.ToArray()));
        }

        return ids;
    }

    /// <summary>
    /// Mostly small messages (one Put Blob); every twelfth is larger than a 4 MiB block, so its body
    /// is staged in blocks and a kill can fall between staging and committing the block list.
    /// </summary>
    private static byte[] Message(string id, int n)
    {
        var text = new StringBuilder()
            .Append("From: <alice@sender.test>\r\n")
            .Append("To: <bob@example.test>\r\n")
            .Append(CultureInfo.InvariantCulture, $"Subject: azure sigkill {n}\r\n")
            .Append(CultureInfo.InvariantCulture, $"Message-ID: <{id}>\r\n")
            .Append("\r\n")
            .Append(CultureInfo.InvariantCulture, $"Body {n}: ").Append('x', 200 + (n % 7 * 300)).Append("\r\n");
        if (n % 12 == 5)
        {
            var line = new string('y', 76) + "\r\n";
            for (var size = 0; size < LargeBodyBytes; size += line.Length)
            {
                text.Append(line);
            }
        }

        return Encoding.ASCII.GetBytes(text.ToString());
    }

    private static string MessageId(byte[] data)
    {
        var text = Encoding.Latin1.GetString(data);
        var start = text.IndexOf("Message-ID: <", StringComparison.Ordinal) + "Message-ID: <".Length;
        return text[start..text.IndexOf('>', start)];
    }

    /// <summary>"m12.t1@…" → "m12": the client's message, whatever attempt carried it.</summary>
    private static string Number(string messageId) => messageId[..messageId.IndexOf('.', StringComparison.Ordinal)];

    private static int EnvInt(string name, int fallback) =>
        int.TryParse(System.Environment.GetEnvironmentVariable(name), NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) ? value : fallback;

    private void Say(string line)
    {
        output.WriteLine(line);
        Console.WriteLine("[azure-sigkill] " + line);
    }
}
