using System.Text;
using BackupMx.Testing;
using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace BackupMx.EndToEnd.Tests;

/// <summary>
/// The primary goes down and comes back over and over while the relay delivers: sessions are
/// cut at every stage (connect, EHLO, MAIL, inside DATA, before the final reply). Nothing may be
/// lost; a copy cut off after the body but before the primary's reply may arrive twice
/// (RFC 5321 §6.1), so duplicates are reported rather than failed.
/// </summary>
[Collection(EndToEndCollection.Name)]
public sealed class PrimaryFlappingTests(ITestOutputHelper output)
{
    [Fact]
    public async Task PrimaryFlapsDuringDelivery_EveryMessageArrives_SpoolDrains()
    {
        const int count = 120;
        // Every cut session logs a warning; the console would drown the result line.
        await using var rig = await FaultRig.StartAsync(configure: b => b.Logging.ClearProviders());
        var seed = Random.Shared.Next();
        var random = new Random(seed);
        using var flapping = new CancellationTokenSource();
        var flaps = 0;
        var flapper = Task.Run(async () =>
        {
            while (!flapping.IsCancellationRequested)
            {
                await Task.Delay(random.Next(5, 60));
                if (rig.Primary.IsRunning)
                {
                    await rig.Primary.StopAsync();
                }
                else
                {
                    await rig.Primary.StartAsync();
                }

                flaps++;

                // Retries and probes run on fake time: move it on so deferred mail comes due again.
                rig.Time.Advance(TimeSpan.FromMinutes(1));
            }
        });

        var results = await Task.WhenAll(Enumerable.Range(0, 4).Select(client => Task.Run(async () =>
        {
            var replies = new List<SendResult>();
            for (var i = client; i < count; i += 4)
            {
                replies.Add(await rig.SendAsync(i));
            }

            return replies;
        })));
        Assert.All(results.SelectMany(r => r), r => Assert.True(r.Accepted, r.DataReply));

        // Let it flap a little longer with everything spooled, then bring the primary back for good.
        await Task.Delay(1500);
        await flapping.CancelAsync();
        await flapper;
        await rig.Primary.StartAsync();
        var deadline = DateTime.UtcNow.AddSeconds(120);
        while (await SpoolCountAsync(rig) > 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "the spool did not drain");
            rig.Time.Advance(TimeSpan.FromMinutes(5));
            await Task.Delay(100);
        }

        var bySubject = rig.Primary.Messages.GroupBy(m => Subject(m.Data)).ToDictionary(g => g.Key, g => g.Count());
        var duplicates = bySubject.Where(p => p.Value > 1).ToList();
        output.WriteLine($"seed {seed}: {flaps} flaps, {rig.Primary.ConnectionCount} connections at the primary, {bySubject.Count} distinct messages, {duplicates.Count} duplicated, {rig.Primary.UnconfirmedCount} kept without a reply sent ({string.Join(", ", duplicates.Select(d => $"{d.Key} x{d.Value}"))})");
        for (var i = 0; i < count; i++)
        {
            Assert.True(bySubject.ContainsKey($"backlog message {i}"), $"message {i} never arrived");
        }

        Assert.Empty(rig.SenderMx.Messages);
    }

    private static async Task<int> SpoolCountAsync(FaultRig rig)
    {
        var n = 0;
        await foreach (var _ in rig.SpoolStore.ListAllAsync(CancellationToken.None))
        {
            n++;
        }

        return n;
    }

    private static string Subject(byte[] data)
    {
        var text = Encoding.Latin1.GetString(data);
        var start = text.IndexOf("Subject: ", StringComparison.Ordinal) + "Subject: ".Length;
        return text[start..text.IndexOf("\r\n", start, StringComparison.Ordinal)];
    }
}
