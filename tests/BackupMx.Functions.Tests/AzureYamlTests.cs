using System.Text.Json;
using System.Text.RegularExpressions;

namespace BackupMx.Functions.Tests;

/// <summary>
/// azd reads azure.yaml and infra/main.parameters.json only when someone runs
/// <c>azd up</c>, which no test here can. These checks catch the mistakes that
/// would otherwise surface there: a renamed project folder, a wrong host or
/// Docker path, a parameter mapped in the parameters file that main.bicep no
/// longer declares, or a required parameter left unmapped.
/// </summary>
public sealed partial class AzureYamlTests
{
    internal static readonly string RepoRoot = FindRepoRoot();

    private static readonly IReadOnlyDictionary<string, string> AzureYaml =
        SimpleYaml.Parse(File.ReadAllLines(Path.Combine(RepoRoot, "azure.yaml")));

    [Fact]
    public void AzureYaml_Name_IsBackupmx()
    {
        Assert.Equal("backupmx", AzureYaml["name"]);
    }

    [Fact]
    public void AzureYaml_Receiver_IsDotnetContainerApp()
    {
        Assert.Equal("./src/BackupMx.Receiver", AzureYaml["services.receiver.project"]);
        Assert.Equal("dotnet", AzureYaml["services.receiver.language"]);
        Assert.Equal("containerapp", AzureYaml["services.receiver.host"]);
    }

    [Fact]
    public void AzureYaml_Functions_IsDotnetFunctionApp()
    {
        Assert.Equal("./src/BackupMx.Functions", AzureYaml["services.functions.project"]);
        Assert.Equal("dotnet", AzureYaml["services.functions.language"]);
        Assert.Equal("function", AzureYaml["services.functions.host"]);
    }

    [Fact]
    public void AzureYaml_OnlyReceiverAndFunctions_AreServices()
    {
        var services = AzureYaml.Keys
            .Where(k => k.StartsWith("services.", StringComparison.Ordinal))
            .Select(k => k.Split('.')[1])
            .Distinct(StringComparer.Ordinal)
            .Order(StringComparer.Ordinal);

        Assert.Equal(["functions", "receiver"], services);
    }

    [Theory]
    [InlineData("receiver", "BackupMx.Receiver.csproj")]
    [InlineData("functions", "BackupMx.Functions.csproj")]
    public void AzureYaml_ServiceProject_FolderHoldsTheProject(string service, string projectFile)
    {
        var folder = Resolve(RepoRoot, AzureYaml[$"services.{service}.project"]);

        Assert.True(Directory.Exists(folder), $"services.{service}.project points at {folder}, which does not exist.");
        Assert.True(File.Exists(Path.Combine(folder, projectFile)), $"{folder} has no {projectFile}.");
    }

    [Fact]
    public void AzureYaml_ReceiverDocker_BuildsProjectDockerfileRemotelyFromRepoRoot()
    {
        var project = Resolve(RepoRoot, AzureYaml["services.receiver.project"]);

        // azd resolves docker.path and docker.context against the project folder.
        var dockerfile = Resolve(project, AzureYaml["services.receiver.docker.path"]);
        var context = Resolve(project, AzureYaml["services.receiver.docker.context"]);

        Assert.Equal(Path.Combine(RepoRoot, "src", "BackupMx.Receiver", "Dockerfile"), dockerfile);
        Assert.Equal(RepoRoot, context);
        Assert.Equal("true", AzureYaml["services.receiver.docker.remoteBuild"]);
    }

    [Fact]
    public void AzureYaml_Infra_IsBicepInInfraFolder()
    {
        Assert.Equal("bicep", AzureYaml["infra.provider"]);
        Assert.Equal("infra", AzureYaml["infra.path"]);
        Assert.True(File.Exists(Path.Combine(RepoRoot, "infra", "main.bicep")));
    }

    [Fact]
    public void MainParameters_EveryParameter_IsDeclaredInMainBicep()
    {
        var declared = DeclaredBicepParameters();

        foreach (var name in ParametersFileNames())
        {
            Assert.True(declared.ContainsKey(name), $"infra/main.parameters.json sets '{name}', which infra/main.bicep does not declare.");
        }
    }

    [Fact]
    public void MainParameters_EveryRequiredBicepParameter_IsMapped()
    {
        var mapped = ParametersFileNames().ToHashSet(StringComparer.Ordinal);

        foreach (var (name, hasDefault) in DeclaredBicepParameters())
        {
            if (!hasDefault)
            {
                Assert.True(mapped.Contains(name), $"infra/main.bicep requires '{name}' but infra/main.parameters.json does not map it.");
            }
        }
    }

    [Fact]
    public void MainParameters_EveryBicepParameter_IsAnAzdSubstitution()
    {
        var values = ParametersFileValues();

        foreach (var name in DeclaredBicepParameters().Keys)
        {
            Assert.True(values.TryGetValue(name, out var value), $"infra/main.bicep declares '{name}' but infra/main.parameters.json does not map it to an azd environment value.");
            Assert.Matches(AzdSubstitution(), value);
        }

        Assert.Equal("${AZURE_ENV_NAME}", values["environmentName"]);
        Assert.Equal("${AZURE_LOCATION}", values["location"]);
    }

    [Fact]
    public void DeployWorkflow_PassesEveryAzdValueOfTheParametersFileOn()
    {
        var workflow = File.ReadAllText(Path.Combine(RepoRoot, ".github", "workflows", "azure-dev.yml"));

        Assert.Contains("id-token: write", workflow, StringComparison.Ordinal);
        Assert.Contains("--federated-credential-provider github", workflow, StringComparison.Ordinal);

        // Skipped, not failed, in a repository without Azure configured.
        Assert.Matches(@"(?m)^  deploy:\r?\n    if: \$\{\{ vars\.AZURE_CLIENT_ID != '' \}\}\r?$", workflow);
        foreach (var variable in ParametersFileValues().Values.Select(v => AzdSubstitution().Match(v).Groups["name"].Value))
        {
            if (variable.StartsWith("SERVICE_", StringComparison.Ordinal))
            {
                continue; // set by azd itself
            }

            // A value that holds a secret (a webhook URL carries its token) comes from the repository's secrets.
            Assert.Matches(new Regex($@"(?m)^\s+{variable}: \$\{{\{{ (vars|secrets)\.{variable}\b"), workflow);
        }
    }

    [Fact]
    public void MainParameters_AzdDefault_IsTheBicepDefault()
    {
        // A default written in the parameters file is what azd always passes, so a different
        // Bicep default would never apply and would only mislead whoever reads main.bicep.
        var bicepDefaults = BicepParameterDefaults();

        foreach (var (name, value) in ParametersFileValues())
        {
            var fallback = AzdSubstitution().Match(value).Groups["default"];
            if (!fallback.Success)
            {
                continue;
            }

            Assert.True(bicepDefaults.TryGetValue(name, out var bicepDefault), $"infra/main.parameters.json gives '{name}' the default '{fallback.Value}' but infra/main.bicep has no default for it.");
            Assert.True(
                string.Equals(fallback.Value, bicepDefault, StringComparison.Ordinal),
                $"'{name}' defaults to '{fallback.Value}' in infra/main.parameters.json but to '{bicepDefault}' in infra/main.bicep.");
        }
    }

    [Fact]
    public void Bicep_EveryParameterOfEveryTemplate_HasADescription()
    {
        var missing = new List<string>();
        foreach (var file in Directory.EnumerateFiles(Path.Combine(RepoRoot, "infra"), "*.bicep", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            var lines = File.ReadAllLines(file);
            for (var i = 0; i < lines.Length; i++)
            {
                var name = BicepParam().Match(lines[i]) is { Success: true } match ? match.Groups["name"].Value : null;
                if (name is null)
                {
                    continue;
                }

                // The decorators are the lines (single- or multi-line) right above the declaration.
                var described = false;
                for (var j = i - 1; j >= 0 && lines[j].Trim().Length > 0 && !BicepParam().IsMatch(lines[j]); j--)
                {
                    described |= lines[j].TrimStart().StartsWith("@description(", StringComparison.Ordinal);
                }

                if (!described)
                {
                    missing.Add($"{Path.GetRelativePath(RepoRoot, file)}: {name}");
                }
            }
        }

        Assert.True(missing.Count == 0, "Parameters without @description: " + string.Join(", ", missing));
    }

    [Theory]
    [InlineData("receiver", "infra/modules/receiver.bicep")]
    [InlineData("functions", "infra/modules/function-app.bicep")]
    public void AzureYaml_EveryService_HasTheResourceTaggedWithItsName(string service, string module)
    {
        Assert.True(AzureYaml.ContainsKey($"services.{service}.host"));
        var text = File.ReadAllText(Path.Combine(RepoRoot, module));

        Assert.Contains($"'azd-service-name': '{service}'", text, StringComparison.Ordinal);
    }

    [Fact]
    public void DeployAzureDoc_ParameterTable_ListsEveryBicepParameterWithItsAzdValue()
    {
        var doc = File.ReadAllText(Path.Combine(RepoRoot, "docs", "deploy-azure.md"));
        var values = ParametersFileValues();
        var declared = DeclaredBicepParameters().Keys.ToList();

        foreach (var name in declared)
        {
            var variable = AzdSubstitution().Match(values[name]).Groups["name"].Value;
            Assert.Contains($"| `{name}` | `{variable}` |", doc, StringComparison.Ordinal);
        }

        // And the table names no parameter the template no longer has.
        var rows = DocParameterRow().Matches(doc).Select(m => m.Groups["name"].Value).ToList();
        Assert.Equal(declared.Order(StringComparer.Ordinal), rows.Order(StringComparer.Ordinal));
    }

    /// <summary>A row of the parameter table: "| `name` | `AZD_VALUE` |".</summary>
    [GeneratedRegex(@"^\| `(?<name>[a-zA-Z][a-zA-Z0-9]*)` \| `[A-Z][A-Z0-9_]*` \|", RegexOptions.Multiline)]
    private static partial Regex DocParameterRow();

    /// <summary>Parameter name to its value in infra/main.parameters.json.</summary>
    private static Dictionary<string, string> ParametersFileValues()
    {
        using var document = JsonDocument.Parse(File.ReadAllText(Path.Combine(RepoRoot, "infra", "main.parameters.json")));
        return document.RootElement.GetProperty("parameters").EnumerateObject()
            .ToDictionary(p => p.Name, p => p.Value.GetProperty("value").ToString(), StringComparer.Ordinal);
    }

    /// <summary>"${NAME}" or "${NAME=default}", the whole value.</summary>
    [GeneratedRegex(@"^\$\{(?<name>[A-Z][A-Z0-9_]*)(=(?<default>[^}]*))?\}$")]
    private static partial Regex AzdSubstitution();

    private static List<string> ParametersFileNames()
    {
        var text = File.ReadAllText(Path.Combine(RepoRoot, "infra", "main.parameters.json"));
        using var document = JsonDocument.Parse(text);
        var parameters = document.RootElement.GetProperty("parameters");
        Assert.Equal(JsonValueKind.Object, parameters.ValueKind);

        var names = new List<string>();
        foreach (var parameter in parameters.EnumerateObject())
        {
            Assert.True(parameter.Value.TryGetProperty("value", out _), $"Parameter '{parameter.Name}' has no value.");
            names.Add(parameter.Name);
        }

        Assert.NotEmpty(names);
        return names;
    }

    /// <summary>Parameter name to whether it has a default value.</summary>
    private static Dictionary<string, bool> DeclaredBicepParameters()
    {
        var text = File.ReadAllText(Path.Combine(RepoRoot, "infra", "main.bicep"));
        var declared = new Dictionary<string, bool>(StringComparer.Ordinal);
        foreach (Match match in BicepParam().Matches(text))
        {
            declared[match.Groups["name"].Value] = match.Groups["default"].Success;
        }

        Assert.NotEmpty(declared);
        return declared;
    }

    /// <summary>
    /// Parameter name to its one-line Bicep default as azd would write it: a string without its
    /// quotes, a number, a bool or an empty array as written.
    /// </summary>
    private static Dictionary<string, string> BicepParameterDefaults()
    {
        var text = File.ReadAllText(Path.Combine(RepoRoot, "infra", "main.bicep"));
        var defaults = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (Match match in BicepParam().Matches(text))
        {
            if (match.Groups["default"].Success)
            {
                var value = match.Groups["default"].Value.Trim().TrimStart('=').Trim();
                defaults[match.Groups["name"].Value] = value.Length >= 2 && value[0] == '\'' && value[^1] == '\''
                    ? value[1..^1].Replace("\\'", "'", StringComparison.Ordinal)
                    : value;
            }
        }

        return defaults;
    }

    [GeneratedRegex(@"^param\s+(?<name>[A-Za-z_][A-Za-z0-9_]*)\s+[^=\r\n]+?(?<default>\s=.*)?\r?$", RegexOptions.Multiline)]
    private static partial Regex BicepParam();

    private static string Resolve(string baseFolder, string relative) =>
        Path.TrimEndingDirectorySeparator(Path.GetFullPath(Path.Combine(baseFolder, relative)));

    private static string FindRepoRoot()
    {
        for (var folder = new DirectoryInfo(AppContext.BaseDirectory); folder is not null; folder = folder.Parent)
        {
            if (File.Exists(Path.Combine(folder.FullName, "BackupMx.Functions.sln")))
            {
                return Path.TrimEndingDirectorySeparator(folder.FullName);
            }
        }

        throw new InvalidOperationException($"No folder above {AppContext.BaseDirectory} holds BackupMx.Functions.sln.");
    }

    /// <summary>
    /// Reads the block-style mappings azure.yaml uses into dotted paths
    /// ("services.receiver.docker.path" → "./Dockerfile"). Sequences, flow
    /// collections and multi-line scalars are out of scope: azure.yaml has none.
    /// </summary>
    private static class SimpleYaml
    {
        public static Dictionary<string, string> Parse(IEnumerable<string> lines)
        {
            var values = new Dictionary<string, string>(StringComparer.Ordinal);
            var path = new List<(int Indent, string Key)>();

            foreach (var raw in lines)
            {
                var line = StripComment(raw).TrimEnd();
                if (line.Trim().Length == 0)
                {
                    continue;
                }

                var indent = line.Length - line.TrimStart(' ').Length;
                var content = line.Trim();
                var colon = content.IndexOf(':', StringComparison.Ordinal);
                if (colon <= 0)
                {
                    throw new FormatException($"Unsupported YAML line: '{raw}'");
                }

                var key = content[..colon].Trim();
                var value = Unquote(content[(colon + 1)..].Trim());

                while (path.Count > 0 && path[^1].Indent >= indent)
                {
                    path.RemoveAt(path.Count - 1);
                }

                var fullKey = string.Join('.', path.Select(p => p.Key).Append(key));
                if (value.Length == 0)
                {
                    path.Add((indent, key));
                }
                else
                {
                    values[fullKey] = value;
                }
            }

            return values;
        }

        private static string StripComment(string line)
        {
            var inSingle = false;
            var inDouble = false;
            for (var i = 0; i < line.Length; i++)
            {
                switch (line[i])
                {
                    case '\'' when !inDouble:
                        inSingle = !inSingle;
                        break;
                    case '"' when !inSingle:
                        inDouble = !inDouble;
                        break;
                    case '#' when !inSingle && !inDouble && (i == 0 || char.IsWhiteSpace(line[i - 1])):
                        return line[..i];
                }
            }

            return line;
        }

        private static string Unquote(string value) =>
            value.Length >= 2 && (value[0] == '"' || value[0] == '\'') && value[^1] == value[0]
                ? value[1..^1]
                : value;
    }
}
