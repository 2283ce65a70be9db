namespace BackupMx.Delivery.Routing;

/// <summary>
/// Pure MX selection rules, kept apart from DNS so they can be tested on their own.
/// </summary>
public static class RouteSelector
{
    /// <summary>
    /// The primaries of a domain we are backup MX for: every MX with a lower preference number
    /// than our own (RFC 5321 §5.1: a relay MUST NOT send to MX at or above its own preference,
    /// or mail would loop between the backups). When none of our names is listed we cannot
    /// tell our own preference, so every MX except ourselves is a candidate. Equal preferences
    /// are shuffled to spread load, as §5.1 asks.
    /// </summary>
    public static IReadOnlyList<string> SelectPrimaries(IReadOnlyList<MxRecord> records, IReadOnlyCollection<string> ourNames, Random random)
    {
        var own = records.Where(r => IsOurs(r.Host, ourNames)).Select(r => r.Preference).DefaultIfEmpty(int.MaxValue).Min();
        var candidates = records.Where(r => r.Preference < own && !IsOurs(r.Host, ourNames) && r.Host.Trim('.').Length > 0);
        return OrderByPreference(candidates, random);
    }

    /// <summary>Every MX of a domain, lowest preference number first, equal ones shuffled.</summary>
    public static IReadOnlyList<string> SelectAll(IReadOnlyList<MxRecord> records, Random random) =>
        OrderByPreference(records.Where(r => r.Host.Trim('.').Length > 0), random);

    private static List<string> OrderByPreference(IEnumerable<MxRecord> records, Random random) =>
        records
            .GroupBy(r => r.Preference)
            .OrderBy(g => g.Key)
            .SelectMany(g =>
            {
                var hosts = g.Select(r => r.Host.TrimEnd('.')).Distinct(StringComparer.OrdinalIgnoreCase).ToArray();
                random.Shuffle(hosts);
                return hosts;
            })
            .Distinct(StringComparer.OrdinalIgnoreCase)
            .ToList();

    private static bool IsOurs(string host, IReadOnlyCollection<string> ourNames) =>
        ourNames.Any(n => string.Equals(n.TrimEnd('.'), host.TrimEnd('.'), StringComparison.OrdinalIgnoreCase));
}
