// A stand-in for the Application Insights ingestion endpoint.
//
// The Azure Monitor exporter POSTs to {IngestionEndpoint}v2.1/track a body of
// newline-delimited JSON envelopes (plain in exporter 1.10; gzip'd where the
// Content-Encoding header says so). Each envelope has a name,
// tags (ai.cloud.role is the service name) and data.baseType/baseData:
// RemoteDependencyData or RequestData for spans, MessageData for logs,
// MetricData for metrics; span tags and log properties are strings in
// baseData.properties. This listener keeps every envelope and answers as the
// real service does, so the exporter counts every item as accepted and
// retries nothing. It listens on plain HTTP on loopback: the exporter takes
// the endpoint from the connection string as it is.
using System.Collections.Concurrent;
using System.IO.Compression;
using System.Net;
using System.Text;
using System.Text.Json;
using BackupMx.Testing;

namespace BackupMx.Functions.Tests.Fakes;

/// <summary>One telemetry item as it arrived.</summary>
public sealed record IngestedItem(string Name, string? Role, string BaseType, JsonElement BaseData)
{
    /// <summary>A custom property (span tag, log placeholder, metric dimension), or null.</summary>
    public string? Property(string key) =>
        BaseData.TryGetProperty("properties", out var properties) && properties.TryGetProperty(key, out var value) ? value.ToString() : null;

    /// <summary>The data points of a MetricData item: name, value (a sum for histograms), count.</summary>
    public IEnumerable<(string Name, double Value, int Count)> Metrics =>
        BaseType == "MetricData"
            ? BaseData.GetProperty("metrics").EnumerateArray().Select(m => (
                m.GetProperty("name").GetString()!,
                m.GetProperty("value").GetDouble(),
                m.TryGetProperty("count", out var count) ? count.GetInt32() : 1))
            : [];

    public override string ToString() => $"{Role} {BaseType} {BaseData}";
}

public sealed class FakeIngestion : IAsyncDisposable
{
    public const string TrackPath = "/v2.1/track";

    private readonly HttpListener _listener = new();
    private readonly ConcurrentQueue<IngestedItem> _items = new();
    private readonly ConcurrentQueue<string> _requests = new();
    private readonly Task _loop;

    public FakeIngestion()
    {
        Port = FreePort.Next();
        _listener.Prefixes.Add($"http://127.0.0.1:{Port}/");
        _listener.Start();
        _loop = Task.Run(ServeAsync);
    }

    public int Port { get; }

    /// <summary>A connection string that sends everything here; the key is made up.</summary>
    public string ConnectionString => $"InstrumentationKey=00000000-0000-0000-0000-000000000001;IngestionEndpoint=http://127.0.0.1:{Port}/";

    public IReadOnlyList<IngestedItem> Items => _items.ToArray();

    /// <summary>"METHOD path content-encoding" of every request, to tell what the exporter called.</summary>
    public IReadOnlyList<string> Requests => _requests.ToArray();

    /// <summary>
    /// Waits until the items received so far satisfy <paramref name="done"/>. Flushing already sent
    /// everything; the wait covers only the exporter's HTTP call finishing on a busy machine.
    /// </summary>
    public async Task<IReadOnlyList<IngestedItem>> WaitForAsync(Func<IReadOnlyList<IngestedItem>, bool> done, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var items = Items;
            if (done(items) || DateTime.UtcNow >= deadline)
            {
                return items;
            }

            await Task.Delay(50);
        }
    }

    public async ValueTask DisposeAsync()
    {
        _listener.Stop();
        _listener.Close();
        try
        {
            await _loop;
        }
        catch (Exception ex) when (ex is HttpListenerException or ObjectDisposedException)
        {
        }
    }

    private async Task ServeAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception ex) when (ex is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }

            var request = context.Request;
            var encoding = request.Headers["Content-Encoding"];
            _requests.Enqueue($"{request.HttpMethod} {request.Url?.AbsolutePath} {encoding}");

            var received = 0;
            if (request.HttpMethod == "POST" && request.Url?.AbsolutePath == TrackPath)
            {
                received = Keep(await ReadBodyAsync(request.InputStream, encoding));
            }

            var reply = Encoding.UTF8.GetBytes($$"""{"itemsReceived":{{received}},"itemsAccepted":{{received}},"errors":[]}""");
            context.Response.StatusCode = 200;
            context.Response.ContentType = "application/json";
            await context.Response.OutputStream.WriteAsync(reply);
            context.Response.Close();
        }
    }

    private static async Task<string> ReadBodyAsync(Stream body, string? encoding)
    {
        await using var decoded = string.Equals(encoding, "gzip", StringComparison.OrdinalIgnoreCase) ? new GZipStream(body, CompressionMode.Decompress) : body;
        using var reader = new StreamReader(decoded, Encoding.UTF8);
        return await reader.ReadToEndAsync();
    }

    private int Keep(string body)
    {
        var count = 0;
        foreach (var line in body.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            using var document = JsonDocument.Parse(line);
            var envelope = document.RootElement;
            var data = envelope.GetProperty("data");
            var role = envelope.TryGetProperty("tags", out var tags) && tags.TryGetProperty("ai.cloud.role", out var r) ? r.GetString() : null;
            _items.Enqueue(new IngestedItem(
                envelope.GetProperty("name").GetString()!,
                role,
                data.GetProperty("baseType").GetString()!,
                data.GetProperty("baseData").Clone()));
            count++;
        }

        return count;
    }
}
