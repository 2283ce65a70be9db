using System.Collections.Frozen;
using System.Diagnostics.Metrics;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Text.RegularExpressions;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace BackupMx.Functions.Tests;

/// <summary>
/// The one list of telemetry names the BackupMx assemblies emit, read from the code itself: the
/// instruments published under the "BackupMx" meter (created for real and caught by a
/// MeterListener), the tag constants, the LoggerMessage templates and their properties, the
/// [Function] names and the cloud role names. Alert rules and workbook queries may name only these.
/// </summary>
internal static partial class EmittedTelemetry
{
    private static readonly Lazy<Names> All = new(Collect);

    /// <summary>Instrument names under the BackupMx meter, e.g. backupmx.spool.depth.</summary>
    public static IReadOnlySet<string> Metrics => All.Value.Metrics;

    /// <summary>Metric and span tags (customDimensions keys of customMetrics and dependencies).</summary>
    public static IReadOnlySet<string> Tags => All.Value.Tags;

    /// <summary>Every LoggerMessage template (the formatted line starts like its template up to the first placeholder).</summary>
    public static IReadOnlyList<string> MessageTemplates => All.Value.Templates;

    /// <summary>Placeholders of the templates: the customDimensions keys of traces.</summary>
    public static IReadOnlySet<string> LogProperties => All.Value.LogProperties;

    /// <summary>Names of the functions (requests.name in Application Insights).</summary>
    public static IReadOnlySet<string> Functions => All.Value.Functions;

    /// <summary>The service names the hosts report as (cloud_RoleName).</summary>
    public static IReadOnlySet<string> Roles => All.Value.Roles;

    /// <summary>
    /// The Application Insights tables the Azure Monitor exporter writes what the code emits to:
    /// metrics to customMetrics, log lines to traces (exceptions when one is attached), spans to
    /// dependencies, and function invocations to requests. Fixed by the exporter, not by the code.
    /// </summary>
    public static readonly IReadOnlySet<string> Tables = new[] { "customMetrics", "traces", "exceptions", "dependencies", "requests" }.ToFrozenSet(StringComparer.Ordinal);

    /// <summary>The BackupMx assemblies this test project loads, found through the references.</summary>
    public static IReadOnlyList<Assembly> Assemblies()
    {
        var found = new Dictionary<string, Assembly>(StringComparer.Ordinal);
        var pending = new Stack<Assembly>([typeof(EmittedTelemetry).Assembly]);
        while (pending.Count > 0)
        {
            foreach (var name in pending.Pop().GetReferencedAssemblies())
            {
                if (name.Name is { } n && n.StartsWith("BackupMx.", StringComparison.Ordinal) && !n.EndsWith(".Tests", StringComparison.Ordinal) && !found.ContainsKey(n))
                {
                    var assembly = Assembly.Load(name);
                    found[n] = assembly;
                    pending.Push(assembly);
                }
            }
        }

        return [.. found.Values.OrderBy(a => a.GetName().Name, StringComparer.Ordinal)];
    }

    private static Names Collect()
    {
        var assemblies = Assemblies();
        var types = assemblies.SelectMany(Types).ToList();
        const BindingFlags Everything = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static | BindingFlags.Instance | BindingFlags.DeclaredOnly;

        var templates = types
            .SelectMany(t => t.GetMethods(Everything))
            .Select(m => m.GetCustomAttribute<LoggerMessageAttribute>()?.Message)
            .OfType<string>()
            .Where(m => m.Length > 0)
            .Distinct(StringComparer.Ordinal)
            .Order(StringComparer.Ordinal)
            .ToList();
        var properties = templates
            .SelectMany(t => Placeholder().Matches(t).Select(m => m.Groups["name"].Value))
            .ToFrozenSet(StringComparer.Ordinal);

        var functions = types
            .SelectMany(t => t.GetMethods(Everything))
            .Select(m => m.GetCustomAttribute<FunctionAttribute>()?.Name)
            .OfType<string>()
            .ToFrozenSet(StringComparer.Ordinal);

        var constants = types
            .SelectMany(t => t.GetFields(Everything))
            .Where(f => f.IsLiteral && f.FieldType == typeof(string))
            .ToList();
        var tags = constants.Where(f => f.Name.EndsWith("Tag", StringComparison.Ordinal)).Select(f => (string)f.GetRawConstantValue()!).ToFrozenSet(StringComparer.Ordinal);
        var roles = constants.Where(f => f.Name == "ServiceName").Select(f => (string)f.GetRawConstantValue()!).ToFrozenSet(StringComparer.Ordinal);

        return new Names(PublishedInstruments(types), tags, templates, properties, functions, roles);
    }

    /// <summary>
    /// Creates every instrument the code defines and records what the "BackupMx" meter publishes:
    /// static meters (classes with a Meter field) are initialised, and every class whose constructor
    /// asks only for an IMeterFactory and a TimeProvider (the gauges) is instantiated.
    /// </summary>
    private static FrozenSet<string> PublishedInstruments(IReadOnlyList<Type> types)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, _) =>
            {
                if (instrument.Meter.Name == Core.Telemetry.Name)
                {
                    lock (names)
                    {
                        names.Add(instrument.Name);
                    }
                }
            },
        };
        listener.Start();

        using var services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var meterFactory = services.GetRequiredService<IMeterFactory>();
        foreach (var type in types.Where(t => t is { IsClass: true, ContainsGenericParameters: false }))
        {
            if (type.GetFields(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static).Any(f => f.FieldType == typeof(Meter)))
            {
                RuntimeHelpers.RunClassConstructor(type.TypeHandle);
            }

            if (type.IsAbstract)
            {
                continue;
            }

            foreach (var constructor in type.GetConstructors(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance))
            {
                var parameters = constructor.GetParameters();
                if (parameters.Length == 0 || !parameters.Any(p => p.ParameterType == typeof(IMeterFactory))
                    || !parameters.All(p => p.ParameterType == typeof(IMeterFactory) || p.ParameterType == typeof(TimeProvider)))
                {
                    continue;
                }

                constructor.Invoke([.. parameters.Select(p => p.ParameterType == typeof(IMeterFactory) ? meterFactory : (object)TimeProvider.System)]);
            }
        }

        lock (names)
        {
            return names.ToFrozenSet(StringComparer.Ordinal);
        }
    }

    private static IEnumerable<Type> Types(Assembly assembly)
    {
        try
        {
            return assembly.GetTypes();
        }
        catch (ReflectionTypeLoadException partial)
        {
            return partial.Types.OfType<Type>();
        }
    }

    [GeneratedRegex(@"\{(?<name>[A-Za-z_][A-Za-z0-9_]*)(?:[:,][^}]*)?\}")]
    private static partial Regex Placeholder();

    private sealed record Names(
        FrozenSet<string> Metrics,
        FrozenSet<string> Tags,
        IReadOnlyList<string> Templates,
        FrozenSet<string> LogProperties,
        FrozenSet<string> Functions,
        FrozenSet<string> Roles);
}
