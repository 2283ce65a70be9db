using System.Xml.Linq;
using BackupMx.Core.Intake;

namespace BackupMx.Core.Tests;

/// <summary>Core stays free of transport and cloud libraries, so both modes share it unchanged.</summary>
public sealed class DependencyRuleTests
{
    private static readonly string[] Forbidden = ["Azure", "SmtpServer", "MailKit", "MimeKit", "DnsClient", "Microsoft.Data.Sqlite"];

    [Fact]
    public void CoreAssembly_ReferencesNoAzureSmtpServerMailKitOrDnsClient()
    {
        var references = typeof(IntakeService).Assembly.GetReferencedAssemblies().Select(a => a.Name!).ToList();
        Assert.DoesNotContain(references, name => Forbidden.Any(f => name.StartsWith(f, StringComparison.OrdinalIgnoreCase)));
    }

    [Fact]
    public void CoreProject_HasNoForbiddenPackageOrProjectReferences()
    {
        var root = FindRepositoryRoot();
        var project = XDocument.Load(Path.Combine(root, "src", "BackupMx.Core", "BackupMx.Core.csproj"));
        var packages = project.Descendants("PackageReference").Select(e => (string?)e.Attribute("Include") ?? "").ToList();
        Assert.NotEmpty(packages);
        Assert.DoesNotContain(packages, p => Forbidden.Any(f => p.StartsWith(f, StringComparison.OrdinalIgnoreCase)));
        Assert.Empty(project.Descendants("ProjectReference"));
    }

    private static string FindRepositoryRoot()
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
