using System.Security.Cryptography;

namespace BackupMx.Core.Model;

/// <summary>
/// Queue ids: 10 characters of time (milliseconds, base 32) then 10 random ones, so
/// ids sort by arrival and are safe as file names, blob names and table row keys.
/// </summary>
public static class QueueId
{
    /// <summary>The characters of a generated id (Crockford base 32).</summary>
    public const string Alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

    /// <summary>Length of a generated id.</summary>
    public const int Length = 20;

    /// <summary>Longest valid id: a generated one and a suffix (a DSN's <c>-d…</c>).</summary>
    public const int MaxLength = 40;

    public static string New(DateTimeOffset now)
    {
        Span<char> chars = stackalloc char[Length];
        var ms = (ulong)Math.Max(0, now.ToUnixTimeMilliseconds());
        for (var i = 9; i >= 0; i--)
        {
            chars[i] = Alphabet[(int)(ms & 31)];
            ms >>= 5;
        }

        Span<byte> random = stackalloc byte[10];
        RandomNumberGenerator.Fill(random);
        for (var i = 0; i < 10; i++)
        {
            chars[10 + i] = Alphabet[random[i] & 31];
        }

        return new string(chars);
    }

    /// <summary>True for ids we could have made (guards file and blob paths built from ids).</summary>
    public static bool IsValid(string? id) =>
        id is { Length: >= Length and <= MaxLength } && id.All(c => Alphabet.Contains(c) || c == '-' || (c >= 'a' && c <= 'z'));
}
