using System.Globalization;

namespace BackupMx.Core.Configuration;

/// <summary>Internationalized domain names (RFC 5890): U-labels and A-labels name the same domain.</summary>
public static class DomainName
{
    private static readonly IdnMapping Idn = new() { AllowUnassigned = false, UseStd3AsciiRules = false };

    /// <summary>The A-label form of <paramref name="domain"/>, or the name itself when it is not a valid IDN.</summary>
    public static string ToAscii(string domain)
    {
        var name = domain.TrimEnd('.');
        if (name.Length == 0)
        {
            return name;
        }

        try
        {
            return Idn.GetAscii(name);
        }
        catch (ArgumentException)
        {
            return name;
        }
    }
}
