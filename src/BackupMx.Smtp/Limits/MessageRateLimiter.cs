using System.Net;

namespace BackupMx.Smtp.Limits;

/// <summary>
/// Messages started per client and minute, as one token bucket per client (see <see cref="ClientKey"/>):
/// it holds up to a minute's worth and refills continuously, so a client may burst and then goes
/// at the configured pace. Time comes from the <see cref="TimeProvider"/>.
/// </summary>
/// <remarks>
/// The table is bounded: when it is full, clients whose bucket has refilled completely are
/// forgotten (they lose nothing); if that frees nothing, the table starts over, which forgives
/// everyone rather than refusing clients it has no room to track.
/// </remarks>
internal sealed class MessageRateLimiter(Func<int> perMinuteNow, TimeProvider time)
{
    private const int MaxTrackedClients = 10_000;

    private readonly Lock _lock = new();
    private readonly Dictionary<IPAddress, Bucket> _buckets = [];

    public MessageRateLimiter(int perMinute, TimeProvider time)
        : this(() => perMinute, time)
    {
    }

    /// <summary>The rate as configured now: a reload changes it for every client at its next MAIL.</summary>
    public int PerMinute => perMinuteNow();

    public bool TryAcquire(IPAddress? client)
    {
        var perMinute = perMinuteNow();
        if (perMinute <= 0 || client is null)
        {
            return true;
        }

        var key = ClientKey.Of(client);
        var now = time.GetUtcNow();
        lock (_lock)
        {
            if (!_buckets.TryGetValue(key, out var bucket))
            {
                if (_buckets.Count >= MaxTrackedClients)
                {
                    Prune(now, perMinute);
                }

                bucket = new Bucket { Tokens = perMinute, Updated = now };
                _buckets[key] = bucket;
            }

            Refill(bucket, now, perMinute);
            if (bucket.Tokens < 1)
            {
                return false;
            }

            bucket.Tokens -= 1;
            return true;
        }
    }

    private static void Refill(Bucket bucket, DateTimeOffset now, int perMinute)
    {
        var elapsed = now - bucket.Updated;
        if (elapsed > TimeSpan.Zero)
        {
            bucket.Tokens = Math.Min(perMinute, bucket.Tokens + (elapsed.TotalMinutes * perMinute));
            bucket.Updated = now;
        }
    }

    private void Prune(DateTimeOffset now, int perMinute)
    {
        foreach (var (key, bucket) in _buckets)
        {
            Refill(bucket, now, perMinute);
            if (bucket.Tokens >= perMinute)
            {
                _buckets.Remove(key);
            }
        }

        if (_buckets.Count >= MaxTrackedClients)
        {
            _buckets.Clear();
        }
    }

    private sealed class Bucket
    {
        public double Tokens { get; set; }

        public DateTimeOffset Updated { get; set; }
    }
}
