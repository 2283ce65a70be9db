using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;
using BackupMx.Delivery.Routing;
using DnsClient;

namespace BackupMx.Delivery.Tests;

/// <summary>The DnsClient adapter against a tiny UDP DNS responder on loopback.</summary>
public sealed class DnsClientResolverTests : IDisposable
{
    private readonly UdpClient _server = new(new IPEndPoint(IPAddress.Loopback, 0));
    private readonly CancellationTokenSource _stop = new();
    private readonly Dictionary<(string Name, ushort Type), List<byte[]>> _answers = [];
    private readonly HashSet<string> _nxdomain = new(StringComparer.OrdinalIgnoreCase);

    public DnsClientResolverTests() => _ = ServeAsync();

    public void Dispose()
    {
        _stop.Cancel();
        _server.Dispose();
        _stop.Dispose();
    }

    private DnsClientResolver Resolver()
    {
        var port = ((IPEndPoint)_server.Client.LocalEndPoint!).Port;
        return new DnsClientResolver(new LookupClient(new LookupClientOptions(new NameServer(IPAddress.Loopback, port))
        {
            UseCache = false,
            Retries = 0,

            // With no retry, a responder that a busy machine schedules late must still count as answering.
            Timeout = TimeSpan.FromSeconds(30),
            UseTcpFallback = false,
        }));
    }

    [Fact]
    public async Task LookupMxAsync_Records_ReturnsPreferenceAndHostWithoutTrailingDot()
    {
        AddMx("example.com", 10, "mx1.example.com");
        AddMx("example.com", 20, "backup.example.net");

        var result = await Resolver().LookupMxAsync("example.com", CancellationToken.None);

        Assert.Equal(DnsLookupStatus.Ok, result.Status);
        Assert.Equal([new MxRecord(10, "mx1.example.com"), new MxRecord(20, "backup.example.net")], result.Records.OrderBy(r => r.Preference));
    }

    [Fact]
    public async Task LookupMxAsync_NullMx_Recognised()
    {
        AddMx("nomail.example", 0, string.Empty);

        var result = await Resolver().LookupMxAsync("nomail.example", CancellationToken.None);

        Assert.True(result.IsNullMx);
    }

    [Fact]
    public async Task LookupMxAsync_NoRecords_OkAndEmpty()
    {
        var result = await Resolver().LookupMxAsync("bare.example", CancellationToken.None);

        Assert.Equal(DnsLookupStatus.Ok, result.Status);
        Assert.Empty(result.Records);
    }

    [Fact]
    public async Task LookupMxAsync_Nxdomain_NameDoesNotExist()
    {
        _nxdomain.Add("gone.example");

        var result = await Resolver().LookupMxAsync("gone.example", CancellationToken.None);

        Assert.Equal(DnsLookupStatus.NameDoesNotExist, result.Status);
    }

    [Fact]
    public async Task LookupAddressesAsync_ARecords_Returned()
    {
        Add("mx1.example.com", 1, [192, 0, 2, 7]);

        var addresses = await Resolver().LookupAddressesAsync("mx1.example.com", CancellationToken.None);

        Assert.Equal([IPAddress.Parse("192.0.2.7")], addresses);
    }

    private void AddMx(string name, ushort preference, string exchange)
    {
        var data = new List<byte> { (byte)(preference >> 8), (byte)preference };
        data.AddRange(EncodeName(exchange));
        Add(name, 15, [.. data]);
    }

    private void Add(string name, ushort type, byte[] data)
    {
        if (!_answers.TryGetValue((name, type), out var list))
        {
            _answers[(name, type)] = list = [];
        }

        list.Add(data);
    }

    private static byte[] EncodeName(string name)
    {
        var bytes = new List<byte>();
        foreach (var label in name.Split('.', StringSplitOptions.RemoveEmptyEntries))
        {
            bytes.Add((byte)label.Length);
            bytes.AddRange(Encoding.ASCII.GetBytes(label));
        }

        bytes.Add(0);
        return [.. bytes];
    }

    private async Task ServeAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            UdpReceiveResult request;
            try
            {
                request = await _server.ReceiveAsync(_stop.Token);
            }
            catch (Exception)
            {
                return;
            }

            var query = request.Buffer;

            // The question starts after the 12-byte header: labels, then type and class.
            var position = 12;
            var labels = new List<string>();
            while (query[position] != 0)
            {
                labels.Add(Encoding.ASCII.GetString(query, position + 1, query[position]));
                position += query[position] + 1;
            }

            var questionEnd = position + 5;
            var name = string.Join('.', labels);
            var type = BinaryPrimitives.ReadUInt16BigEndian(query.AsSpan(position + 1));
            var answers = _answers.Where(a => string.Equals(a.Key.Name, name, StringComparison.OrdinalIgnoreCase) && a.Key.Type == type).SelectMany(a => a.Value).ToList();

            var response = new List<byte>();
            response.AddRange(query.AsSpan(0, 2).ToArray());
            response.AddRange(_nxdomain.Contains(name) ? new byte[] { 0x81, 0x83 } : [0x81, 0x80]);
            response.AddRange(new byte[] { 0, 1, (byte)(answers.Count >> 8), (byte)answers.Count, 0, 0, 0, 0 });
            response.AddRange(query.AsSpan(12, questionEnd - 12).ToArray());
            foreach (var data in answers)
            {
                response.AddRange(new byte[] { 0xC0, 0x0C, (byte)(type >> 8), (byte)type, 0, 1, 0, 0, 0, 60, (byte)(data.Length >> 8), (byte)data.Length });
                response.AddRange(data);
            }

            await _server.SendAsync(response.ToArray(), request.RemoteEndPoint, _stop.Token);
        }
    }
}
