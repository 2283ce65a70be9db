using BackupMx.Core.Model;

namespace BackupMx.Core.Inspection;

/// <summary>
/// Messages per domain by age, like Postfix's qshape: a count per bucket of time since the message
/// was received. The buckets are qshape's (each twice the last, in minutes), so a queue that only
/// grows shows as counts moving right, and one stuck primary as one domain's row filling up.
/// </summary>
public sealed class QueueAgeTable
{
    /// <summary>Upper bound of each bucket but the last, in minutes: a message of 7 minutes is in the 10 bucket.</summary>
    public static readonly IReadOnlyList<int> BucketMinutes = [5, 10, 20, 40, 80, 160, 320, 640, 1280];

    private readonly DateTimeOffset _now;
    private readonly SortedDictionary<string, int[]> _rows = new(StringComparer.OrdinalIgnoreCase);

    public QueueAgeTable(DateTimeOffset now)
    {
        _now = now;
    }

    /// <summary>Each domain's counts: one per <see cref="BucketMinutes"/>, then one for older messages.</summary>
    public IReadOnlyDictionary<string, int[]> Rows => _rows;

    /// <summary>Every domain's counts added up, bucket by bucket.</summary>
    public int[] Totals => Enumerable.Range(0, BucketMinutes.Count + 1).Select(i => _rows.Values.Sum(r => r[i])).ToArray();

    public void Add(SpoolRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        if (!_rows.TryGetValue(record.Domain, out var row))
        {
            _rows[record.Domain] = row = new int[BucketMinutes.Count + 1];
        }

        row[Bucket(_now - record.ReceivedAt)]++;
    }

    /// <summary>The bucket of a message that age; a clock set back (a negative age) counts as new.</summary>
    public static int Bucket(TimeSpan age)
    {
        for (var i = 0; i < BucketMinutes.Count; i++)
        {
            if (age < TimeSpan.FromMinutes(BucketMinutes[i]))
            {
                return i;
            }
        }

        return BucketMinutes.Count;
    }
}
