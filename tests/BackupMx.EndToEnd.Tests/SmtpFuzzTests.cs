// Bounded fuzzing of the real embedded receiver on loopback.
//
// Random and mutated sessions: commands with random parameters, random bytes, huge
// lines, bare CR and LF, NULs, pipelined garbage, early and abortive disconnects, and
// DATA with random content (including smuggling-style "\n.\r\n" sequences), written in
// pieces cut at random byte positions (TCP_NODELAY, some with a pause between them, so lines
// arrive split across segments). The server must come through without an Error or Critical
// log entry (an unhandled exception in the store or intake logs at that level), without a
// single session fault (a session that failed inside the receiver), still greet a fresh connection (a
// leaked connection slot or a wedged accept loop would not), still accept a normal
// message, and hold no more managed memory than a generous bound after a full GC.
//
// The primary stays down, so accepted fuzz messages stay on disk in the spool and do not
// pile up in the fake primary's memory.
//
//   BACKUPMX_FUZZ_SESSIONS (default 3000), BACKUPMX_FUZZ_SEED (default: random, printed)
using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using BackupMx.Testing;
using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace BackupMx.EndToEnd.Tests;

[Collection(EndToEndCollection.Name)]
public sealed class SmtpFuzzTests(ITestOutputHelper output)
{
    private const int Parallelism = 16;
    private const long MemoryGrowthBound = 64L * 1024 * 1024;

    // The receiver's "Session ... failed" log event.
    private const int SessionFaultedEventId = 2204;

    private static readonly string[] Verbs =
    [
        "EHLO", "HELO", "MAIL FROM:", "RCPT TO:", "DATA", "RSET", "NOOP", "QUIT", "VRFY", "EXPN", "HELP",
        "STARTTLS", "AUTH PLAIN", "AUTH LOGIN", "BDAT", "ETRN", "XCLIENT", "PROXY TCP4", "TURN", "ATRN", "",
    ];

    private static readonly string[] Parameters =
    [
        "SIZE=", "BODY=8BITMIME", "BODY=BINARYMIME", "BODY=", "SMTPUTF8", "RET=FULL", "RET=HDRS", "RET=",
        "ENVID=", "NOTIFY=SUCCESS,FAILURE", "NOTIFY=NEVER,DELAY", "NOTIFY=", "ORCPT=rfc822;", "AUTH=<>", "X=",
    ];

    [Fact]
    public async Task RandomAndMutatedSessions_NoErrorNoLeakNoGrowth_ServerStillServes()
    {
        var sessions = EnvInt("BACKUPMX_FUZZ_SESSIONS", 3000);
        var seed = EnvInt("BACKUPMX_FUZZ_SEED", Random.Shared.Next());
        output.WriteLine($"fuzz: seed {seed}, {sessions} sessions, {Parallelism} at a time (BACKUPMX_FUZZ_SEED={seed} repeats the inputs)");

        // Thousands of refused sessions would flood the console; the capture keeps what the test checks.
        // Every fuzzed session comes from 127.0.0.1; the per-client limits have tests of their own.
        await using var rig = await FaultRig.StartAsync(
            configure: b => b.Logging.ClearProviders(),
            extraArgs: ["--BackupMx:Smtp:MaxConnectionsPerIp=1000", "--BackupMx:Smtp:MaxMessagesPerMinutePerIp=0"]);
        await rig.Primary.StopAsync();
        var port = rig.Relay.SmtpPort;

        // Warm-up, so that first-use allocations (JIT, pools, SQLite caches) are in the baseline.
        var warmUp = new Stats();
        await RunAsync(port, seed ^ 0x7777, 200, warmUp);
        var before = FullGcMemory();

        var stats = new Stats();
        var clock = Stopwatch.StartNew();
        await RunAsync(port, seed, sessions, stats);
        clock.Stop();

        // Every session is closed on our side; the server must have let go of them all.
        var greeting = await GreetingAsync(port);
        var normal = await rig.SendAsync(424242);
        var after = FullGcMemory();

        output.WriteLine(string.Create(
            CultureInfo.InvariantCulture,
            $"fuzz: {stats.Sessions} sessions in {clock.Elapsed.TotalSeconds:F1} s, {stats.BytesSent / 1024} KiB sent, replies 2xx {stats.Replies[2]} 3xx {stats.Replies[3]} 4xx {stats.Replies[4]} 5xx {stats.Replies[5]}, server closed {stats.ClosedByServer}, greeting missing {stats.NoGreeting}, accepted messages {stats.Accepted}"));
        output.WriteLine($"fuzz: managed memory {before / 1024} KiB before, {after / 1024} KiB after (bound +{MemoryGrowthBound / 1024 / 1024} MiB)");
        var warnings = rig.Logs.Entries.Where(e => e.Level >= LogLevel.Warning).ToList();
        output.WriteLine($"fuzz: {warnings.Count} warning(s) or worse logged");
        foreach (var group in warnings.GroupBy(e => $"{e.Level} {e.Category}[{e.EventId.Id}] {e.Exception?.GetType().Name} in {Origin(e.Exception)}: {FirstLine(e.Exception?.Message)}").OrderByDescending(g => g.Count()))
        {
            output.WriteLine($"  {group.Count(),5} x {group.Key}");
        }

        // A session fault names its cause in the message, with no exception attached: print it whole.
        foreach (var fault in warnings.Where(e => e.EventId.Id == SessionFaultedEventId))
        {
            output.WriteLine($"  fault: {fault.Message}");
        }

        Assert.Empty(rig.Logs.AtLeast(LogLevel.Error));
        Assert.DoesNotContain(rig.Logs.Entries, e => e.EventId.Id == SessionFaultedEventId && e.Category.StartsWith("BackupMx.Smtp", StringComparison.Ordinal));
        Assert.Equal(0, stats.NoGreeting);
        Assert.StartsWith("220 ", greeting, StringComparison.Ordinal);
        Assert.True(normal.Accepted, normal.DataReply);
        Assert.True(after - before < MemoryGrowthBound, $"managed memory grew by {(after - before) / 1024} KiB");
    }

    private static async Task RunAsync(int port, int seed, int count, Stats stats)
    {
        var next = -1;
        var workers = Enumerable.Range(0, Parallelism).Select(_ => Task.Run(async () =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < count)
            {
                // One generator per session: the inputs depend on the seed and index only, not on
                // scheduling or on the process (HashCode.Combine is seeded afresh in every process).
                await SessionAsync(port, new Random(SessionSeed(seed, i)), stats);
            }
        }));
        await Task.WhenAll(workers);
    }

    internal static int SessionSeed(int seed, int index) => unchecked((seed * 1_000_003) ^ (index * 16_777_619));

    private static async Task SessionAsync(int port, Random random, Stats stats)
    {
        var chunks = Script(random);
        var abortive = random.Next(10) == 0;
        var pauses = random.Next(4) == 0;
        using var client = new TcpClient { NoDelay = true };
        await client.ConnectAsync("127.0.0.1", port);
        if (abortive)
        {
            // Close with RST instead of FIN.
            client.LingerState = new LingerOption(true, 0);
        }

        var stream = client.GetStream();
        var reader = new Replies(stream, stats);
        Interlocked.Increment(ref stats.Sessions);
        // Reading stops after an idle gap, so a short one keeps sessions quick; a slow server
        // gets its full chance before the greeting is called missing. A leaked slot or a wedged
        // accept loop never greets at all, so the long wait costs nothing on a healthy server and
        // keeps a machine busy with other test assemblies from counting as a missing greeting.
        await reader.ReadAsync(TimeSpan.FromMilliseconds(100));
        if (!reader.GotData)
        {
            await reader.ReadAsync(TimeSpan.FromSeconds(30));
        }

        if (!reader.GotData)
        {
            Interlocked.Increment(ref stats.NoGreeting);
            return;
        }

        try
        {
            foreach (var chunk in chunks)
            {
                if (pauses && random.Next(2) == 0)
                {
                    // Lets the server read what came so far on its own: the next piece is a new segment.
                    await Task.Delay(1);
                }

                await stream.WriteAsync(chunk);
                Interlocked.Add(ref stats.BytesSent, chunk.Length);
                if (random.Next(3) == 0 && !await reader.ReadAsync(TimeSpan.FromMilliseconds(30)))
                {
                    return;
                }
            }

            if (random.Next(8) != 0)
            {
                // Most sessions read what the server has to say; the others just vanish.
                await reader.ReadAsync(TimeSpan.FromMilliseconds(80));
            }
        }
        catch (IOException)
        {
            // The server may hang up first (QUIT, too many errors): part of the game.
        }
    }

    /// <summary>The bytes of one session, in the pieces they are written in.</summary>
    private static List<byte[]> Script(Random random)
    {
        var script = new MemoryStream();
        switch (random.Next(6))
        {
            case 0:
                script.Write(RandomBytes(random, random.Next(1, 4096)));
                break;
            case 1:
                for (var n = random.Next(1, 25); n > 0; n--)
                {
                    script.Write(Encoding.Latin1.GetBytes(RandomCommand(random)));
                    script.Write(LineEnd(random));
                }

                break;
            case 2:
                script.Write(Encoding.ASCII.GetBytes(RandomCommand(random)));
                script.Write(Encoding.ASCII.GetBytes(new string((char)random.Next('A', 'z'), random.Next(1, 30) == 1 ? 1_000_000 : random.Next(1000, 100_000))));
                if (random.Next(2) == 0)
                {
                    script.Write("\r\n"u8);
                }

                break;
            default:
                Transaction(random, script);
                break;
        }

        var bytes = script.ToArray();
        if (random.Next(3) == 0)
        {
            Mutate(random, bytes);
        }

        if (random.Next(6) == 0)
        {
            // Early disconnect: only a prefix goes out.
            bytes = bytes[..random.Next(0, bytes.Length + 1)];
        }

        // Segment boundaries anywhere: some scripts go out in tiny pieces, cutting most lines.
        var pieces = new List<byte[]>();
        var offset = 0;
        var tiny = random.Next(3) == 0 && bytes.Length <= 4096;
        while (offset < bytes.Length)
        {
            var size = tiny ? Math.Min(bytes.Length - offset, random.Next(1, 24))
                : random.Next(4) == 0 ? bytes.Length - offset : Math.Min(bytes.Length - offset, random.Next(1, 2048));
            pieces.Add(bytes[offset..(offset + size)]);
            offset += size;
        }

        return pieces;
    }

    private static void Transaction(Random random, MemoryStream script)
    {
        void Line(string text)
        {
            script.Write(Encoding.Latin1.GetBytes(text));
            script.Write(random.Next(20) == 0 ? LineEnd(random) : "\r\n"u8);
        }

        Line(random.Next(2) == 0 ? "EHLO fuzz.test" : "HELO " + RandomWord(random));
        Line("MAIL FROM:<" + (random.Next(5) == 0 ? string.Empty : RandomAddress(random)) + ">" + RandomParameters(random));
        for (var n = random.Next(0, 6); n > 0; n--)
        {
            var to = random.Next(3) == 0 ? RandomAddress(random) : $"{RandomWord(random)}@example.test";
            Line("RCPT TO:<" + to + ">" + RandomParameters(random));
        }

        Line("DATA");
        var body = new StringBuilder();
        body.Append("From: <fuzz@sender.test>\r\nSubject: ").Append(RandomWord(random)).Append("\r\n\r\n");
        for (var n = random.Next(0, 40); n > 0; n--)
        {
            body.Append(random.Next(12) switch
            {
                0 => ".",
                1 => "..leading dots",
                2 => "\n.\r\n",
                3 => "\r.\r",
                4 => "\0",
                5 => new string('y', random.Next(900, 5000)),
                6 => "\r\n.\r\nMAIL FROM:<smuggled@evil.test>\r\n",
                7 => Encoding.Latin1.GetString(RandomBytes(random, random.Next(1, 200))),
                _ => RandomWord(random) + " " + RandomWord(random),
            });
            body.Append(random.Next(10) == 0 ? "\n" : "\r\n");
        }

        script.Write(Encoding.Latin1.GetBytes(body.ToString()));
        if (random.Next(8) != 0)
        {
            script.Write("\r\n.\r\n"u8);
        }

        // Pipelined leftovers after the message.
        if (random.Next(3) == 0)
        {
            script.Write(RandomBytes(random, random.Next(1, 300)));
        }

        if (random.Next(2) == 0)
        {
            Line("QUIT");
        }
    }

    private static string RandomCommand(Random random)
    {
        var verb = Verbs[random.Next(Verbs.Length)];
        if (random.Next(3) == 0)
        {
            verb = random.Next(2) == 0 ? verb.ToLowerInvariant() : verb;
        }

        return random.Next(5) switch
        {
            0 => verb,
            1 => verb + " " + RandomWord(random),
            2 => verb + "<" + RandomAddress(random) + ">" + RandomParameters(random),
            3 => verb + new string(' ', random.Next(0, 5)) + Encoding.Latin1.GetString(RandomBytes(random, random.Next(0, 200))).Replace("\n", string.Empty, StringComparison.Ordinal),
            _ => verb + " " + RandomAddress(random) + RandomParameters(random),
        };
    }

    private static string RandomParameters(Random random)
    {
        var text = new StringBuilder();
        for (var n = random.Next(0, 4); n > 0; n--)
        {
            text.Append(' ').Append(Parameters[random.Next(Parameters.Length)]);
            text.Append(random.Next(4) switch
            {
                0 => random.NextInt64().ToString(CultureInfo.InvariantCulture) + "9999999999",
                1 => "+2B+ZZ+" + RandomWord(random),
                2 => RandomAddress(random),
                _ => string.Empty,
            });
        }

        return text.ToString();
    }

    private static string RandomAddress(Random random) => random.Next(8) switch
    {
        0 => string.Empty,
        1 => "@relay.test:" + RandomWord(random) + "@example.test",
        2 => "\"quoted local\"@example.test",
        3 => RandomWord(random) + "@[127.0.0.1]",
        4 => new string('a', random.Next(60, 400)) + "@example.test",
        5 => RandomWord(random) + "@" + RandomWord(random),
        6 => "ü" + RandomWord(random) + "@exämple.test",
        _ => RandomWord(random) + "@example.test",
    };

    private static string RandomWord(Random random)
    {
        const string Letters = "abcdefghijklmnopqrstuvwxyz0123456789.-_+=";
        var chars = new char[random.Next(1, 16)];
        for (var i = 0; i < chars.Length; i++)
        {
            chars[i] = Letters[random.Next(Letters.Length)];
        }

        return new string(chars);
    }

    private static byte[] LineEnd(Random random) => random.Next(6) switch
    {
        0 => "\n"u8.ToArray(),
        1 => "\r"u8.ToArray(),
        2 => "\0\r\n"u8.ToArray(),
        3 => "\r\r\n"u8.ToArray(),
        _ => "\r\n"u8.ToArray(),
    };

    private static byte[] RandomBytes(Random random, int length)
    {
        var bytes = new byte[length];
        random.NextBytes(bytes);
        return bytes;
    }

    private static void Mutate(Random random, byte[] bytes)
    {
        for (var n = random.Next(1, 8); n > 0 && bytes.Length > 0; n--)
        {
            bytes[random.Next(bytes.Length)] = random.Next(4) switch
            {
                0 => 0,
                1 => (byte)'\n',
                2 => (byte)'\r',
                _ => (byte)random.Next(256),
            };
        }
    }

    /// <summary>The first frame outside the runtime: where a session-ending exception really came from.</summary>
    private static string Origin(Exception? exception) =>
        exception?.StackTrace?.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => !l.StartsWith("at System.", StringComparison.Ordinal))?.Split(" in ")[0] ?? string.Empty;

    private static string FirstLine(string? text) => text is null ? string.Empty : text.Split('\n')[0].Trim();

    private static async Task<string> GreetingAsync(int port)
    {
        using var client = new TcpClient();
        await client.ConnectAsync("127.0.0.1", port);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var buffer = new byte[512];
        var read = await client.GetStream().ReadAsync(buffer, cts.Token);
        return Encoding.ASCII.GetString(buffer, 0, read);
    }

    private static long FullGcMemory()
    {
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        return GC.GetTotalMemory(forceFullCollection: true);
    }

    private static int EnvInt(string name, int fallback) =>
        int.TryParse(Environment.GetEnvironmentVariable(name), NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) ? value : fallback;

    private sealed class Stats
    {
        public readonly int[] Replies = new int[6];
        public int Sessions;
        public int NoGreeting;
        public int ClosedByServer;
        public int Accepted;
        public long BytesSent;
    }

    /// <summary>Reads whatever the server sends and tallies reply codes by class.</summary>
    private sealed class Replies(NetworkStream stream, Stats stats)
    {
        private readonly byte[] _buffer = new byte[8192];
        private bool _lineStart = true;

        private Task<int>? _pending;

        /// <summary>Reads until <paramref name="idle"/> passes without data; false when the server closed the connection.</summary>
        /// <remarks>
        /// A read that outlives its idle time is kept for the next call rather than cancelled, so no
        /// byte is lost between calls and nothing depends on cancelling a socket read.
        /// </remarks>
        public async Task<bool> ReadAsync(TimeSpan idle)
        {
            while (true)
            {
                _pending ??= stream.ReadAsync(_buffer, 0, _buffer.Length);
                if (await Task.WhenAny(_pending, Task.Delay(idle)) != _pending)
                {
                    return true;
                }

                int read;
                try
                {
                    read = await _pending;
                }
                catch (IOException)
                {
                    Interlocked.Increment(ref stats.ClosedByServer);
                    return false;
                }
                finally
                {
                    _pending = null;
                }

                if (read == 0)
                {
                    Interlocked.Increment(ref stats.ClosedByServer);
                    return false;
                }

                Tally(read);
                GotData = true;
            }
        }

        /// <summary>True once anything (the greeting) arrived.</summary>
        public bool GotData { get; private set; }

        private void Tally(int read)
        {
            for (var i = 0; i < read; i++)
            {
                if (_lineStart && _buffer[i] is >= (byte)'2' and <= (byte)'5')
                {
                    Interlocked.Increment(ref stats.Replies[_buffer[i] - '0']);
                    if (_buffer[i] == (byte)'2' && i + 2 < read && _buffer[i + 1] == (byte)'5' && _buffer[i + 2] == (byte)'0'
                        && i + 30 < read && Encoding.ASCII.GetString(_buffer, i, Math.Min(40, read - i)).Contains("queued as", StringComparison.Ordinal))
                    {
                        Interlocked.Increment(ref stats.Accepted);
                    }
                }

                _lineStart = _buffer[i] == (byte)'\n';
            }
        }
    }
}
