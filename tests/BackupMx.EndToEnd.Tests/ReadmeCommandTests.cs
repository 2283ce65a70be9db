using System.Diagnostics;
using System.Text.RegularExpressions;

namespace BackupMx.EndToEnd.Tests;

/// <summary>
/// The README's commands are what a newcomer types first and what outside checks run: they must
/// name things that exist, and every operator command it shows must be one the server accepts.
/// </summary>
public sealed partial class ReadmeCommandTests
{
    private const string RunServer = "dotnet run --project src/BackupMx.Server";

    private static readonly string Root = FindRepoRoot();
    private static readonly string Readme = File.ReadAllText(Path.Combine(Root, "README.md"));

    [Fact]
    public void Readme_TheTwoCommands_AreShownAsCommandsAndExist()
    {
        var commands = ShellLines().ToList();

        Assert.Contains(RunServer, commands);
        Assert.Contains("./test.sh", commands);
        Assert.True(File.Exists(Path.Combine(Root, "src", "BackupMx.Server", "BackupMx.Server.csproj")));
        var testScript = new FileInfo(Path.Combine(Root, "test.sh"));
        Assert.True(testScript.Exists);
        Assert.True((testScript.UnixFileMode & UnixFileMode.UserExecute) != 0, "test.sh is not executable");
    }

    [Fact]
    public async Task Readme_OperatorCommands_AreAcceptedByTheServer()
    {
        var operatorCommands = ShellLines()
            .Where(l => l.StartsWith(RunServer + " -- ", StringComparison.Ordinal))
            .Select(l => l[(RunServer.Length + 4)..].Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .ToList();
        Assert.Contains(operatorCommands, a => a is ["queue"]);
        Assert.Contains(operatorCommands, a => a is ["queue", _]);
        Assert.Contains(operatorCommands, a => a is ["flush", _]);

        // In a folder without a spool, a spool command the server accepts gets as far as looking
        // for the spool (66); check-dns reads no spool and ends with its findings (0, or 1 for an
        // ERROR: the example domain's records do not exist). An unknown command or a wrong
        // argument count stops at 64.
        using var folder = new TempFolder();
        foreach (var args in operatorCommands)
        {
            var exitCode = await RunServerAsync(args, folder.Path);
            if (args[0] == "check-dns")
            {
                Assert.True(exitCode is 0 or 1, $"'{string.Join(' ', args)}' from the README exited with {exitCode}, not 0 or 1 (findings)");
            }
            else
            {
                Assert.True(exitCode == 66, $"'{string.Join(' ', args)}' from the README exited with {exitCode}, not 66 (no spool)");
            }
        }

        Assert.Equal(64, await RunServerAsync(["frobnicate"], folder.Path));
    }

    [Theory]
    [InlineData("queue")]
    [InlineData("flush")]
    [InlineData("check-dns")]
    [InlineData("show")]
    [InlineData("hold")]
    [InlineData("release")]
    [InlineData("delete")]
    public void CommandsJsonDoc_NamesEveryCommandsSchema(string command)
    {
        var doc = File.ReadAllText(Path.Combine(Root, "docs", "commands-json.md"));
        var table = doc[..doc.IndexOf("\n## ", StringComparison.Ordinal)];

        Assert.Matches($@"(?m)^\| [^|]*`{Regex.Escape(command)}[ `][^|]*--json`", table);
    }

    /// <summary>Lines of the README's sh code blocks, with trailing comments removed.</summary>
    private static IEnumerable<string> ShellLines() =>
        ShellBlock().Matches(Readme)
            .SelectMany(m => m.Groups["body"].Value.Split('\n'))
            .Select(l => (l.Contains(" #", StringComparison.Ordinal) ? l[..l.IndexOf(" #", StringComparison.Ordinal)] : l).Trim())
            .Where(l => l.Length > 0);

    private static async Task<int> RunServerAsync(string[] args, string workingDirectory)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = workingDirectory };
        start.ArgumentList.Add(typeof(BackupMx.Server.EmbeddedHost).Assembly.Location);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        await output;
        await error;
        return process.ExitCode;
    }

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "BackupMx.Functions.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("repository root not found above " + AppContext.BaseDirectory);
    }

    [GeneratedRegex(@"^```sh\n(?<body>.*?)^```", RegexOptions.Multiline | RegexOptions.Singleline)]
    private static partial Regex ShellBlock();
}
