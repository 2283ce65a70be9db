using System.Globalization;

namespace BackupMx.Core.Notifications;

/// <summary>Durations as people read them, the same on the dashboard and in the notices.</summary>
public static class Durations
{
    /// <summary>"45 s", "12 min 5 s", "3 h 07 min", "2 d 04 h"; "-" for none.</summary>
    public static string Format(TimeSpan? age)
    {
        if (age is not { } a)
        {
            return "-";
        }

        if (a < TimeSpan.Zero)
        {
            a = TimeSpan.Zero;
        }

        return a.TotalDays >= 1 ? string.Create(CultureInfo.InvariantCulture, $"{(int)a.TotalDays} d {a.Hours:00} h")
            : a.TotalHours >= 1 ? string.Create(CultureInfo.InvariantCulture, $"{(int)a.TotalHours} h {a.Minutes:00} min")
            : a.TotalMinutes >= 1 ? string.Create(CultureInfo.InvariantCulture, $"{(int)a.TotalMinutes} min {a.Seconds} s")
            : string.Create(CultureInfo.InvariantCulture, $"{(int)a.TotalSeconds} s");
    }
}
