using System.Reflection;
using Microsoft.Extensions.Logging;

namespace BackupMx.Architecture.Tests;

/// <summary>
/// A log EventId names one message in the whole solution, so a query or an alert on it is not
/// ambiguous. Each project logs in its own range; the table is in docs/architecture.md
/// ("Log EventIds") and must match <see cref="Ranges"/>.
/// </summary>
public sealed class LogEventIdTests
{
    private static readonly Dictionary<string, (int From, int To)[]> Ranges = new(StringComparer.Ordinal)
    {
        ["BackupMx.Core"] = [(1000, 1999)],
        ["BackupMx.Smtp"] = [(2000, 2999)],
        ["BackupMx.Delivery"] = [(3000, 3999)],
        ["BackupMx.Local"] = [(4000, 4999)],
        ["BackupMx.Azure"] = [(5000, 5999)],
        ["BackupMx.Functions"] = [(6000, 6999)],
        ["BackupMx.Receiver"] = [(7000, 7499)],
        // The admin commands and check-dns use 7800–7999 of this.
        ["BackupMx.Server"] = [(7500, 7999)],
        ["BackupMx.Telemetry"] = [(8000, 8499)],
        // The admin HTTP endpoint of embedded mode (the dashboard itself, BackupMx.Dashboard, logs nothing).
        ["BackupMx.Admin"] = [(8500, 8999)],
    };

    [Fact]
    public void LoggerMessages_AllAssemblies_EveryEventIdUniqueAndInItsProjectsRange()
    {
        var messages = SourceAssemblies().SelectMany(LoggerMessages).ToList();
        Assert.True(messages.Count > 100, $"only {messages.Count} LoggerMessage methods found: is the attribute still read?");

        var problems = new List<string>();
        foreach (var m in messages)
        {
            if (m.EventId < 0)
            {
                problems.Add($"{m.Method} has no EventId");
            }
            else if (!Ranges.TryGetValue(m.Assembly, out var ranges))
            {
                problems.Add($"{m.Method}: assembly {m.Assembly} has no EventId range (add one here and in docs/architecture.md)");
            }
            else if (!ranges.Any(r => m.EventId >= r.From && m.EventId <= r.To))
            {
                problems.Add($"{m.Method}: EventId {m.EventId} is outside {m.Assembly}'s range {string.Join(", ", ranges.Select(r => $"{r.From}–{r.To}"))}");
            }
        }

        foreach (var duplicate in messages.Where(m => m.EventId >= 0).GroupBy(m => m.EventId).Where(g => g.Count() > 1))
        {
            problems.Add($"EventId {duplicate.Key} is used by {string.Join(" and ", duplicate.Select(m => m.Method))}");
        }

        Assert.True(problems.Count == 0, string.Join(Environment.NewLine, problems));
    }

    [Fact]
    public void EventIdRanges_DoNotOverlapAndAreWrittenInArchitectureDoc()
    {
        var all = Ranges.SelectMany(p => p.Value.Select(r => (Project: p.Key, r.From, r.To))).OrderBy(r => r.From).ToList();
        for (var i = 1; i < all.Count; i++)
        {
            Assert.True(all[i].From > all[i - 1].To, $"{all[i - 1].Project} and {all[i].Project} overlap");
        }

        var doc = File.ReadAllText(Path.Combine(RepositoryRoot(), "docs", "architecture.md"));
        var rows = doc.Split('\n').Select(l => l.Trim()).ToList();
        foreach (var (project, from, to) in all)
        {
            var row = rows.SingleOrDefault(l => l.StartsWith($"| {project} |", StringComparison.Ordinal));
            Assert.True(row is not null, $"docs/architecture.md has no row for {project}");
            Assert.Contains($"{from}–{to}", row, StringComparison.Ordinal);
        }
    }

    private static IEnumerable<Assembly> SourceAssemblies()
    {
        // Each project under src/ is loaded by name: one that this test project does not
        // reference fails here rather than escaping the check.
        var projects = Directory.GetDirectories(Path.Combine(RepositoryRoot(), "src"))
            .Where(d => File.Exists(Path.Combine(d, Path.GetFileName(d) + ".csproj")))
            .Select(Path.GetFileName)
            .ToList();
        Assert.NotEmpty(projects);
        return projects.Select(name => Assembly.Load(new AssemblyName(name!)));
    }

    private static IEnumerable<(string Assembly, string Method, int EventId)> LoggerMessages(Assembly assembly)
    {
        const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static | BindingFlags.Instance | BindingFlags.DeclaredOnly;
        var name = assembly.GetName().Name!;
        foreach (var type in assembly.GetTypes())
        {
            foreach (var method in type.GetMethods(all))
            {
                var attribute = method.GetCustomAttribute<LoggerMessageAttribute>();
                if (attribute is not null)
                {
                    yield return (name, $"{type.FullName}.{method.Name}", attribute.EventId);
                }
            }
        }
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "BackupMx.Functions.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("Repository root (BackupMx.Functions.sln) not found above " + AppContext.BaseDirectory);
    }
}
