using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using BackupMx.Delivery.Routing;

namespace BackupMx.Delivery.DnsCheck;

/// <summary>
/// Fetches <c>https://mta-sts.DOMAIN/.well-known/mta-sts.txt</c> as a sender would (RFC 8461 §3.3):
/// a valid certificate for that name, no redirects, status 200, <c>text/plain</c>.
/// </summary>
public sealed class MtaStsPolicyFetcher : IDisposable
{
    /// <summary>Policy files are small; a sender need not read more (RFC 8461 §3.3 suggests 64 KiB).</summary>
    public const int MaxPolicyBytes = 64 * 1024;

    private readonly HttpClient _http;

    /// <param name="handler">
    /// How to reach the policy host. <see cref="CreateHandler"/> resolves it through the configured
    /// resolvers and validates its certificate like a sender; tests give a handler that reaches a
    /// local server.
    /// </param>
    public MtaStsPolicyFetcher(HttpMessageHandler handler, TimeSpan timeout)
    {
        _http = new HttpClient(handler) { Timeout = timeout };
    }

    /// <summary>
    /// The production handler: the host's addresses come from <paramref name="dns"/> (so
    /// BackupMx:Dns:Servers applies here too), the certificate is validated by the system's trust
    /// store, and redirects are not followed (RFC 8461 §3.3 forbids them).
    /// </summary>
    public static SocketsHttpHandler CreateHandler(IDnsResolver dns) => new()
    {
        AllowAutoRedirect = false,
        UseProxy = false,
        UseCookies = false,
        ConnectCallback = async (context, cancellationToken) =>
        {
            var addresses = await dns.LookupAddressesAsync(context.DnsEndPoint.Host, cancellationToken).ConfigureAwait(false);
            if (addresses.Count == 0)
            {
                throw new HttpRequestException($"{context.DnsEndPoint.Host} has no A or AAAA record");
            }

            Exception? last = null;
            foreach (var address in addresses)
            {
                var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                try
                {
                    await socket.ConnectAsync(new IPEndPoint(address, context.DnsEndPoint.Port), cancellationToken).ConfigureAwait(false);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch (SocketException ex)
                {
                    socket.Dispose();
                    last = ex;
                }
            }

            throw new HttpRequestException($"cannot connect to {context.DnsEndPoint.Host}: {last?.Message}", last);
        },
    };

    public static Uri PolicyUri(string domain) => new($"https://mta-sts.{domain.TrimEnd('.')}/.well-known/mta-sts.txt");

    /// <summary>The policy, or null with the reason it cannot be had.</summary>
    public async Task<(MtaStsPolicy? Policy, string? Error)> FetchAsync(string domain, CancellationToken cancellationToken)
    {
        var uri = PolicyUri(domain);
        try
        {
            using var response = await _http.GetAsync(uri, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
            if (response.StatusCode != HttpStatusCode.OK)
            {
                return (null, $"{uri} answered {(int)response.StatusCode} {response.ReasonPhrase}" +
                    (response.Headers.Location is { } location ? $" to {location} (senders do not follow redirects)" : string.Empty));
            }

            if (response.Content.Headers.ContentType is not MediaTypeHeaderValue { MediaType: "text/plain" })
            {
                return (null, $"{uri} is served as {response.Content.Headers.ContentType?.MediaType ?? "no content type"}, not text/plain");
            }

            var stream = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            await using (stream.ConfigureAwait(false))
            {
                var buffer = new byte[MaxPolicyBytes + 1];
                var length = 0;
                int read;
                while (length < buffer.Length && (read = await stream.ReadAsync(buffer.AsMemory(length), cancellationToken).ConfigureAwait(false)) > 0)
                {
                    length += read;
                }

                if (length > MaxPolicyBytes)
                {
                    return (null, $"{uri} is longer than {MaxPolicyBytes} bytes");
                }

                var policy = MtaStsPolicy.Parse(Encoding.UTF8.GetString(buffer, 0, length), out var error);
                return policy is null ? (null, $"{uri} is not a valid policy: {error}") : (policy, null);
            }
        }
        catch (HttpRequestException ex)
        {
            // The inner exception says which: the certificate (AuthenticationException), the
            // connection, or the name.
            return (null, $"{uri}: {ex.Message}{(ex.InnerException is { } inner ? " " + inner.Message : string.Empty)}");
        }
        catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return (null, $"{uri}: no answer within {_http.Timeout.TotalSeconds:0} s");
        }
    }

    public void Dispose() => _http.Dispose();
}
