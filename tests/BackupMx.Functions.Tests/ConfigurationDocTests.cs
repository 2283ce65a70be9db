using System.Collections;
using System.Reflection;
using System.Text.RegularExpressions;
using BackupMx.Core.Configuration;

namespace BackupMx.Functions.Tests;

/// <summary>
/// docs/configuration.md is the reference of every setting: a new option that is not in its
/// tables, or a row for an option that no longer exists, fails here.
/// </summary>
public sealed partial class ConfigurationDocTests
{
    private static readonly string Doc = File.ReadAllText(Path.Combine(AzureYamlTests.RepoRoot, "docs", "configuration.md"));

    [Fact]
    public void ConfigurationDoc_Tables_ListEveryOptionKey()
    {
        var documented = DocumentedKeys();
        var missing = OptionKeys().Where(k => !documented.Contains(k)).ToList();

        Assert.True(missing.Count == 0, "Settings missing from docs/configuration.md: " + string.Join(", ", missing));
    }

    [Fact]
    public void ConfigurationDoc_Tables_ListNoKeyTheOptionsDoNotHave()
    {
        var keys = OptionKeys();
        var stale = DocumentedKeys().Where(k => !keys.Contains(k)).ToList();

        Assert.True(stale.Count == 0, "docs/configuration.md lists settings that do not exist: " + string.Join(", ", stale));
    }

    [Fact]
    public void OptionKeys_FindEverySection()
    {
        // The walk below finds the sections by their SectionName constant; make sure it sees
        // each host's options, so the two tests above cannot pass on an empty set.
        var keys = OptionKeys();

        Assert.Contains("BackupMx:HostName", keys);
        Assert.Contains("BackupMx:Domains:N:OutboundTls", keys);
        Assert.Contains("BackupMx:Smtp:MaxConnections", keys);
        Assert.Contains("BackupMx:Azure:SpoolTable", keys);
        Assert.Contains("BackupMx:Functions:ForwardTimeBudget", keys);
    }

    private static HashSet<string> DocumentedKeys() =>
        KeyRow().Matches(Doc).Select(m => m.Groups["key"].Value).ToHashSet(StringComparer.Ordinal);

    /// <summary>
    /// Every configuration key the options classes bind: each class with a
    /// <c>SectionName</c> constant under <c>BackupMx</c>, walked through nested option classes;
    /// a list of option classes is a key of its own and its items are <c>:N:</c>.
    /// </summary>
    private static HashSet<string> OptionKeys()
    {
        var keys = new HashSet<string>(StringComparer.Ordinal);
        foreach (var type in OptionSections())
        {
            var section = (string)type.GetField("SectionName", BindingFlags.Public | BindingFlags.Static)!.GetRawConstantValue()!;
            AddKeys(type, section, keys);
        }

        return keys;
    }

    private static IEnumerable<Type> OptionSections()
    {
        var folder = Path.GetDirectoryName(typeof(BackupMxOptions).Assembly.Location)!;
        return Directory.EnumerateFiles(folder, "BackupMx.*.dll")
            .Where(f => !Path.GetFileName(f).Contains(".Tests", StringComparison.Ordinal))
            .Select(Assembly.LoadFrom)
            .SelectMany(a => a.GetTypes())
            .Where(t => t.GetField("SectionName", BindingFlags.Public | BindingFlags.Static) is { IsLiteral: true } f
                && f.GetRawConstantValue() is string name && (name == "BackupMx" || name.StartsWith("BackupMx:", StringComparison.Ordinal)))
            .DistinctBy(t => t.AssemblyQualifiedName);
    }

    private static void AddKeys(Type type, string prefix, HashSet<string> keys)
    {
        foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.SetMethod is { IsPublic: true }))
        {
            var key = $"{prefix}:{property.Name}";
            var item = ListItemType(property.PropertyType);
            if (IsOptionClass(property.PropertyType))
            {
                AddKeys(property.PropertyType, key, keys);
            }
            else if (item is not null && IsOptionClass(item))
            {
                keys.Add(key);
                AddKeys(item, key + ":N", keys);
            }
            else
            {
                keys.Add(key);
            }
        }
    }

    private static bool IsOptionClass(Type type) =>
        type.IsClass && type != typeof(string) && type.Namespace?.StartsWith("BackupMx", StringComparison.Ordinal) == true;

    private static Type? ListItemType(Type type) =>
        type.IsGenericType && typeof(IEnumerable).IsAssignableFrom(type) ? type.GetGenericArguments()[0] : null;

    /// <summary>The first cell of a table row: "| `BackupMx:...` |".</summary>
    [GeneratedRegex(@"^\| `(?<key>BackupMx(?::[A-Za-z0-9]+)+)` \|", RegexOptions.Multiline)]
    private static partial Regex KeyRow();
}
