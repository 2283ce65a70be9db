using System.Text;
using System.Text.RegularExpressions;

namespace BackupMx.Functions.Tests;

/// <summary>
/// The documentation is split over several Markdown files that link to each other: a link to a
/// file that is not there, or to a heading that was renamed, fails here.
/// </summary>
public sealed partial class DocumentationLinkTests
{
    private static readonly string Root = AzureYamlTests.RepoRoot;

    public static TheoryData<string> Documents()
    {
        var data = new TheoryData<string>();
        foreach (var file in new[] { "README.md", "SECURITY.md", "BENCHMARKS.md", "bench/README.md", "bench/HISTORY.md" }
            .Concat(Directory.EnumerateFiles(Path.Combine(Root, "docs"), "*.md").Select(f => Path.GetRelativePath(Root, f).Replace('\\', '/')))
            .Order(StringComparer.Ordinal))
        {
            data.Add(file);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Documents))]
    public void Document_RelativeLinks_PointToAFileAndHeadingThatExist(string document)
    {
        var path = Path.Combine(Root, document);
        var text = File.ReadAllText(path);
        var broken = new List<string>();
        foreach (Match link in MarkdownLink().Matches(WithoutCode(text)))
        {
            var target = link.Groups["target"].Value;
            if (target.Contains("://", StringComparison.Ordinal) || target.StartsWith("mailto:", StringComparison.Ordinal))
            {
                continue;
            }

            var hash = target.IndexOf('#', StringComparison.Ordinal);
            var file = hash < 0 ? target : target[..hash];
            var anchor = hash < 0 ? null : target[(hash + 1)..];
            var resolved = file.Length == 0 ? path : Path.GetFullPath(Path.Combine(Path.GetDirectoryName(path)!, file));
            if (!File.Exists(resolved) && !Directory.Exists(resolved))
            {
                broken.Add($"{target} (no such file)");
                continue;
            }

            if (anchor is not null && !Anchors(File.ReadAllText(resolved)).Contains(anchor))
            {
                broken.Add($"{target} (no such heading)");
            }
        }

        Assert.True(broken.Count == 0, $"{document}: broken links: {string.Join(", ", broken)}");
    }

    [Fact]
    public void Anchors_FollowGitHubsRules()
    {
        var anchors = Anchors("## Port 25 in both directions\n### Rule 1 — 250 means durable\n## `azd up`\n## 10,000 spooled\n");

        Assert.Equal(["10000-spooled", "azd-up", "port-25-in-both-directions", "rule-1--250-means-durable"], anchors.Order(StringComparer.Ordinal));
    }

    /// <summary>GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens.</summary>
    private static HashSet<string> Anchors(string markdown)
    {
        var anchors = new HashSet<string>(StringComparer.Ordinal);
        foreach (Match heading in Heading().Matches(WithoutCode(markdown)))
        {
            var slug = new StringBuilder();
            foreach (var c in heading.Groups["text"].Value.Trim().ToLowerInvariant())
            {
                if (char.IsLetterOrDigit(c) || c is '-' or '_')
                {
                    slug.Append(c);
                }
                else if (c == ' ')
                {
                    slug.Append('-');
                }
            }

            anchors.Add(slug.ToString());
        }

        return anchors;
    }

    /// <summary>Fenced code blocks removed: a "#" there is a comment, not a heading.</summary>
    private static string WithoutCode(string markdown) => CodeFence().Replace(markdown, "");

    [GeneratedRegex(@"^```.*?^```", RegexOptions.Multiline | RegexOptions.Singleline)]
    private static partial Regex CodeFence();

    [GeneratedRegex(@"^#{1,6} (?<text>.+)$", RegexOptions.Multiline)]
    private static partial Regex Heading();

    [GeneratedRegex(@"\]\((?<target>[^)\s]+)\)")]
    private static partial Regex MarkdownLink();
}
