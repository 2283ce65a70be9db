using System.Diagnostics;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace BackupMx.Functions.Tests;

/// <summary>
/// infra/main.bicep compiled to ARM JSON by the Bicep CLI that scripts/check-infra.sh pins (the
/// script fetches it from NuGet on first use). What Azure would deploy is checked on this JSON:
/// each module's template is inline under its deployment resource.
/// </summary>
internal static partial class CompiledMainTemplate
{
    private static readonly Lazy<JsonObject> Template = new(Compile);

    public static JsonObject Root => Template.Value;

    /// <summary>A top-level resource (symbolic name) of main.bicep.</summary>
    public static JsonObject Resource(string symbolicName) =>
        Root["resources"]?[symbolicName]?.AsObject() ?? throw new InvalidOperationException($"main.bicep has no resource '{symbolicName}'.");

    /// <summary>The inline template of one of main.bicep's modules.</summary>
    public static JsonObject ModuleTemplate(string symbolicName) =>
        Resource(symbolicName)["properties"]?["template"]?.AsObject() ?? throw new InvalidOperationException($"'{symbolicName}' is not a module.");

    /// <summary>The expression main.bicep passes to one parameter of a module.</summary>
    public static string ModuleParameter(string symbolicName, string parameter)
    {
        var value = Resource(symbolicName)["properties"]?["parameters"]?[parameter] ?? throw new InvalidOperationException($"Module '{symbolicName}' gets no '{parameter}'.");

        // A plain value is {"value": x}; a conditional one is a single expression that builds that object.
        return value is JsonObject wrapped && wrapped["value"] is { } inner ? inner.ToString() : value.ToString();
    }

    /// <summary>A resource (symbolic name) of a module's template.</summary>
    public static JsonObject ModuleResource(string module, string symbolicName) =>
        ModuleTemplate(module)["resources"]?[symbolicName]?.AsObject() ?? throw new InvalidOperationException($"Module '{module}' has no resource '{symbolicName}'.");

    private static JsonObject Compile()
    {
        var root = AzureYamlTests.RepoRoot;
        var bicep = BicepExecutable(root);
        var start = new ProcessStartInfo(bicep, ["build", Path.Combine(root, "infra", "main.bicep"), "--stdout"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = root,
        };
        start.Environment["BICEP_TRACING_ENABLED"] = "false";
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"bicep build infra/main.bicep failed ({process.ExitCode}): {stderr.Result}");
        }

        var template = JsonNode.Parse(stdout.Result)!.AsObject();
        if (template["resources"] is not JsonObject)
        {
            throw new InvalidOperationException("Expected a template with symbolic resource names (languageVersion 2.0).");
        }

        return template;
    }

    /// <summary>The CLI of scripts/check-infra.sh; the script itself fetches it when it is missing.</summary>
    private static string BicepExecutable(string root)
    {
        var script = Path.Combine(root, "scripts", "check-infra.sh");
        var version = BicepVersion().Match(File.ReadAllText(script)).Groups["v"].Value;
        var path = Path.Combine(root, ".tools", "nuget", "azure.bicep.commandline.linux-x64", version, "tools", "bicep");
        if (!IsExecutable(path))
        {
            using var fetch = Process.Start(new ProcessStartInfo("bash", [script]) { WorkingDirectory = root })!;
            fetch.WaitForExit();
        }

        if (!IsExecutable(path))
        {
            throw new InvalidOperationException($"The Bicep CLI {version} is not at {path}, and scripts/check-infra.sh did not fetch it.");
        }

        return path;
    }

    private static bool IsExecutable(string path) =>
        File.Exists(path) && (OperatingSystem.IsWindows() || File.GetUnixFileMode(path).HasFlag(UnixFileMode.UserExecute));

    [GeneratedRegex("^BICEP_VERSION=\"(?<v>[^\"]+)\"", RegexOptions.Multiline)]
    private static partial Regex BicepVersion();
}
