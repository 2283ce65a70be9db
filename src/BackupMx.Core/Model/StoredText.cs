namespace BackupMx.Core.Model;

/// <summary>
/// The one bound on text that remote servers choose and we store: reply texts, the last error,
/// a probe's error. A remote reply can be any length (multi-line replies have no limit in
/// practice), while a stored record cannot: an Azure Table string property holds 32K UTF-16
/// characters and an entity 1 MiB, and one reply over that would make every later write of the
/// record fail, so outcomes already reached (delivered recipients) could never be saved. Every
/// store, embedded or Azure, keeps the same bounded text. Operators see the start of the reply,
/// which is where SMTP servers put the code and the reason.
/// </summary>
public static class StoredText
{
    /// <summary>Most characters kept of one text, marker included.</summary>
    public const int MaxLength = 1000;

    /// <summary>Appended to a text that was cut.</summary>
    public const string CutMarker = " [...]";

    public static string? Bound(string? text) => text is null ? null : Bound(text, MaxLength);

    /// <summary>Cuts <paramref name="text"/> to at most <paramref name="maxLength"/> characters, never inside a surrogate pair.</summary>
    public static string Bound(string text, int maxLength)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxLength, CutMarker.Length + 1);
        if (text.Length <= maxLength)
        {
            return text;
        }

        var keep = maxLength - CutMarker.Length;
        if (char.IsHighSurrogate(text[keep - 1]))
        {
            keep--;
        }

        return string.Concat(text.AsSpan(0, keep), CutMarker);
    }
}
