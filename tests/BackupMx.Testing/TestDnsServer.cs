using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace BackupMx.Testing;

/// <summary>
/// An authoritative DNS server on a loopback UDP port, answering from records a test sets: MX, A,
/// AAAA, TXT and TLSA (RFC 1035 wire format, no compression in the data). A name with no record of
/// any type is NXDOMAIN; a name with records of other types is NODATA; a name marked failing is
/// SERVFAIL. Point the code under test at <see cref="Address"/> (BackupMx:Dns:Servers).
/// </summary>
public sealed class TestDnsServer : IDisposable
{
    public const ushort TypeA = 1;
    public const ushort TypeMx = 15;
    public const ushort TypeTxt = 16;
    public const ushort TypeAaaa = 28;
    public const ushort TypeTlsa = 52;

    private readonly UdpClient _udp = new(new IPEndPoint(IPAddress.Loopback, 0));
    private readonly ConcurrentDictionary<(string Name, ushort Type), List<byte[]>> _records = new();
    private readonly ConcurrentDictionary<string, bool> _failing = new(StringComparer.OrdinalIgnoreCase);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private int _queries;

    public TestDnsServer()
    {
        _loop = Task.Run(ServeAsync);
    }

    /// <summary><c>127.0.0.1:port</c>, as BackupMx:Dns:Servers takes it.</summary>
    public string Address => ((IPEndPoint)_udp.Client.LocalEndPoint!).ToString();

    /// <summary>Queries answered so far.</summary>
    public int Queries => Volatile.Read(ref _queries);

    public TestDnsServer Mx(string name, int preference, string host)
    {
        var data = new List<byte>();
        data.Add((byte)(preference >> 8));
        data.Add((byte)preference);
        data.AddRange(EncodeName(host));
        return Add(name, TypeMx, [.. data]);
    }

    /// <summary>RFC 7505: one MX with preference 0 and the root as its host.</summary>
    public TestDnsServer NullMx(string name) => Add(name, TypeMx, [0, 0, 0]);

    public TestDnsServer Host(string name, IPAddress address) =>
        Add(name, address.AddressFamily == AddressFamily.InterNetwork ? TypeA : TypeAaaa, address.GetAddressBytes());

    public TestDnsServer Txt(string name, string text)
    {
        // Split into character-strings of at most 255 bytes; resolvers join them again.
        var bytes = Encoding.ASCII.GetBytes(text);
        var data = new List<byte>();
        for (var i = 0; i < bytes.Length || i == 0; i += 255)
        {
            var chunk = bytes.AsSpan(i, Math.Min(255, bytes.Length - i));
            data.Add((byte)chunk.Length);
            data.AddRange(chunk.ToArray());
        }

        return Add(name, TypeTxt, [.. data]);
    }

    public TestDnsServer Tlsa(string name, byte usage, byte selector, byte matchingType, byte[] association) =>
        Add(name, TypeTlsa, [usage, selector, matchingType, .. association]);

    /// <summary>Every query for <paramref name="name"/> gets SERVFAIL.</summary>
    public TestDnsServer Fail(string name)
    {
        _failing[name.TrimEnd('.')] = true;
        return this;
    }

    public TestDnsServer Add(string name, ushort type, byte[] data)
    {
        var list = _records.GetOrAdd((name.TrimEnd('.').ToLowerInvariant(), type), _ => []);
        lock (list)
        {
            list.Add(data);
        }

        return this;
    }

    public void Dispose()
    {
        _stop.Cancel();
        _udp.Dispose();
        try
        {
            _loop.Wait(TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
            // The loop ends with the socket's disposal.
        }

        _stop.Dispose();
    }

    private async Task ServeAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            UdpReceiveResult request;
            try
            {
                request = await _udp.ReceiveAsync(_stop.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }

            if (Answer(request.Buffer) is { } reply)
            {
                Interlocked.Increment(ref _queries);
                try
                {
                    await _udp.SendAsync(reply, request.RemoteEndPoint, _stop.Token);
                }
                catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException)
                {
                    return;
                }
            }
        }
    }

    private byte[]? Answer(byte[] query)
    {
        if (query.Length < 12 || BinaryPrimitives.ReadUInt16BigEndian(query.AsSpan(4)) != 1)
        {
            return null;
        }

        // The question: labels up to the root, then type and class.
        var labels = new List<string>();
        var at = 12;
        while (at < query.Length && query[at] != 0)
        {
            var length = query[at];
            if (length > 63 || at + 1 + length > query.Length)
            {
                return null;
            }

            labels.Add(Encoding.ASCII.GetString(query, at + 1, length));
            at += 1 + length;
        }

        if (at + 5 > query.Length)
        {
            return null;
        }

        var questionEnd = at + 5;
        var name = string.Join('.', labels).ToLowerInvariant();
        var type = BinaryPrimitives.ReadUInt16BigEndian(query.AsSpan(at + 1));
        var answers = _records.TryGetValue((name, type), out var list) ? Snapshot(list) : [];
        var exists = _records.Keys.Any(k => k.Name == name);
        var rcode = _failing.ContainsKey(name) ? 2 : exists ? 0 : 3;
        if (rcode != 0)
        {
            answers = [];
        }

        var reply = new List<byte>();
        reply.AddRange(query.AsSpan(0, 2).ToArray()); // id
        var recursionDesired = query[2] & 0x01;
        reply.Add((byte)(0x84 | recursionDesired)); // QR, AA
        reply.Add((byte)rcode);
        reply.AddRange([0, 1, (byte)(answers.Count >> 8), (byte)answers.Count, 0, 0, 0, 0]);
        reply.AddRange(query.AsSpan(12, questionEnd - 12).ToArray());
        foreach (var data in answers)
        {
            reply.AddRange([0xC0, 12]); // the question's name
            reply.AddRange([(byte)(type >> 8), (byte)type, 0, 1, 0, 0, 0, 60, (byte)(data.Length >> 8), (byte)data.Length]);
            reply.AddRange(data);
        }

        return [.. reply];
    }

    private static List<byte[]> Snapshot(List<byte[]> list)
    {
        lock (list)
        {
            return [.. list];
        }
    }

    private static byte[] EncodeName(string name)
    {
        var bytes = new List<byte>();
        foreach (var label in name.TrimEnd('.').Split('.', StringSplitOptions.RemoveEmptyEntries))
        {
            bytes.Add((byte)label.Length);
            bytes.AddRange(Encoding.ASCII.GetBytes(label));
        }

        bytes.Add(0);
        return [.. bytes];
    }
}
