namespace BackupMx.Delivery.DnsCheck;

/// <summary>An MTA-STS policy file (RFC 8461 §3.2).</summary>
public sealed record MtaStsPolicy(string Mode, IReadOnlyList<string> MxPatterns, long MaxAge)
{
    /// <summary>Senders apply the policy (enforce) or report on it (testing); none withdraws it.</summary>
    public bool IsActive => Mode is "enforce" or "testing";

    /// <summary>
    /// Parses the policy text: <c>key: value</c> lines; version STSv1, mode, max_age and at least one
    /// mx (unless mode is none) are required. Null with the reason when it is not a valid policy.
    /// </summary>
    public static MtaStsPolicy? Parse(string text, out string? error)
    {
        string? version = null, mode = null;
        long? maxAge = null;
        var mx = new List<string>();
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.TrimEnd('\r');
            if (line.Trim().Length == 0)
            {
                continue;
            }

            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0)
            {
                error = $"line '{line}' is not 'key: value'";
                return null;
            }

            var key = line[..colon].Trim();
            var value = line[(colon + 1)..].Trim();
            switch (key)
            {
                case "version": version ??= value; break;
                case "mode": mode ??= value; break;
                case "max_age" when long.TryParse(value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var seconds):
                    maxAge ??= seconds;
                    break;
                case "max_age":
                    error = $"max_age '{value}' is not a number of seconds";
                    return null;
                case "mx": mx.Add(value); break;
                default: break; // RFC 8461 §3.2: unknown keys are ignored.
            }
        }

        error = version != "STSv1" ? "version is not STSv1"
            : mode is not ("enforce" or "testing" or "none") ? $"mode '{mode}' is not enforce, testing or none"
            : maxAge is null ? "max_age is missing"
            : mx.Count == 0 && mode != "none" ? "no mx line"
            : null;
        return error is null ? new MtaStsPolicy(mode!, mx, maxAge!.Value) : null;
    }

    /// <summary>
    /// Whether an mx pattern names <paramref name="host"/> (RFC 8461 §4.1): the same name, or
    /// <c>*.</c> followed by the host's name without its first label (the wildcard is one label).
    /// </summary>
    public bool Matches(string host) => MxPatterns.Any(p => PatternMatches(p, host));

    public static bool PatternMatches(string pattern, string host)
    {
        pattern = pattern.TrimEnd('.');
        host = host.TrimEnd('.');
        if (pattern.StartsWith("*.", StringComparison.Ordinal))
        {
            var dot = host.IndexOf('.', StringComparison.Ordinal);
            return dot > 0 && string.Equals(host[(dot + 1)..], pattern[2..], StringComparison.OrdinalIgnoreCase);
        }

        return string.Equals(pattern, host, StringComparison.OrdinalIgnoreCase);
    }
}
