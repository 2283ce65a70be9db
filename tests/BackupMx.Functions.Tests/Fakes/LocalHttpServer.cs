using System.Collections.Concurrent;
using System.Net;
using System.Text;
using BackupMx.Testing;

namespace BackupMx.Functions.Tests.Fakes;

/// <summary>One request as the server received it.</summary>
public sealed record ReceivedRequest(string Method, string Path, string? FunctionKey, string Body);

/// <summary>
/// A real HTTP listener on a loopback port that answers with <see cref="Handler"/>: the function
/// app as the receiver sees it over the network.
/// </summary>
public sealed class LocalHttpServer : IAsyncDisposable
{
    private readonly HttpListener _listener = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentQueue<ReceivedRequest> _requests = new();
    private readonly Task _loop;
    private int _received;

    public LocalHttpServer()
    {
        var port = FreePort.Next();
        Url = new Uri($"http://127.0.0.1:{port}/api/verify-recipient");
        _listener.Prefixes.Add($"http://127.0.0.1:{port}/");
        _listener.Start();
        _loop = Task.Run(LoopAsync);
    }

    public Uri Url { get; }

    /// <summary>Status and body of each answer; the default answers 500.</summary>
    public Func<ReceivedRequest, CancellationToken, Task<(HttpStatusCode Status, string Body)>> Handler { get; set; } =
        (_, _) => Task.FromResult((HttpStatusCode.InternalServerError, string.Empty));

    public IReadOnlyList<ReceivedRequest> Requests => _requests.ToArray();

    /// <summary>Requests received, counted before they are answered.</summary>
    public int RequestCount => Volatile.Read(ref _received);

    /// <summary>Answers every request with <paramref name="status"/> and <paramref name="body"/>.</summary>
    public void Answer(HttpStatusCode status, string body) => Handler = (_, _) => Task.FromResult((status, body));

    /// <summary>Holds every request without answering until the server is disposed.</summary>
    public void NeverAnswer() => Handler = async (_, cancellationToken) =>
    {
        await Task.Delay(Timeout.Infinite, cancellationToken);
        return (HttpStatusCode.OK, string.Empty);
    };

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Close();
        try
        {
            await _loop;
        }
        catch (Exception ex) when (ex is HttpListenerException or ObjectDisposedException or OperationCanceledException)
        {
        }

        _stop.Dispose();
    }

    private async Task LoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                return;
            }

            _ = Task.Run(() => AnswerAsync(context));
        }
    }

    private async Task AnswerAsync(HttpListenerContext context)
    {
        try
        {
            using var reader = new StreamReader(context.Request.InputStream, Encoding.UTF8);
            var request = new ReceivedRequest(
                context.Request.HttpMethod,
                context.Request.Url!.AbsolutePath,
                context.Request.Headers["x-functions-key"],
                await reader.ReadToEndAsync());
            _requests.Enqueue(request);
            Interlocked.Increment(ref _received);
            var (status, body) = await Handler(request, _stop.Token);
            context.Response.StatusCode = (int)status;
            context.Response.ContentType = "application/json; charset=utf-8";
            var bytes = Encoding.UTF8.GetBytes(body);
            await context.Response.OutputStream.WriteAsync(bytes, _stop.Token);
            context.Response.Close();
        }
        catch (Exception)
        {
            // The client went away or the server is stopping; neither is the test's question.
            context.Response.Abort();
        }
    }
}
