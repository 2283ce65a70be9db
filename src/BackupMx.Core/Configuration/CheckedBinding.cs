using System.Collections;
using System.ComponentModel;
using System.Reflection;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace BackupMx.Core.Configuration;

/// <summary>
/// Binds an options class like <c>OptionsBuilder.Bind</c>, but first checks every value the
/// configuration binder would have to convert. The binder alone throws a bare
/// InvalidOperationException for a bad value outside a list and, worse, silently drops a list
/// element with a bad value inside it (a domain would vanish and its mail be refused as relaying).
/// Here each such value is an <see cref="OptionsValidationException"/> failure that names the key,
/// the value and what was expected, so every host reports it like any other bad setting.
/// </summary>
public static class CheckedBinding
{
    public static OptionsBuilder<TOptions> BindChecked<TOptions>(this OptionsBuilder<TOptions> builder, IConfigurationSection section)
        where TOptions : class
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddSingleton<IOptionsChangeTokenSource<TOptions>>(new ConfigurationChangeTokenSource<TOptions>(builder.Name, section));
        return builder.Configure(options =>
        {
            var errors = Check(section, typeof(TOptions));
            if (errors.Count > 0)
            {
                throw new OptionsValidationException(builder.Name, typeof(TOptions), errors);
            }

            section.Bind(options);
        });
    }

    /// <summary>One message per value under <paramref name="section"/> that cannot be bound to <paramref name="type"/>.</summary>
    public static IReadOnlyList<string> Check(IConfigurationSection section, Type type)
    {
        ArgumentNullException.ThrowIfNull(section);
        var errors = new List<string>();
        CheckObject(section, type, errors);
        return errors;
    }

    private static void CheckObject(IConfigurationSection section, Type type, List<string> errors)
    {
        foreach (var child in section.GetChildren())
        {
            // Keys the binder would ignore (no such settable property) are ignored here too.
            var property = type.GetProperty(child.Key, BindingFlags.Public | BindingFlags.Instance | BindingFlags.IgnoreCase);
            if (property is not null && property.SetMethod?.IsPublic == true && property.GetIndexParameters().Length == 0)
            {
                CheckValue(child, property.PropertyType, errors);
            }
        }
    }

    private static void CheckValue(IConfigurationSection section, Type type, List<string> errors)
    {
        var valueType = Nullable.GetUnderlyingType(type) ?? type;
        if (TypeDescriptor.GetConverter(valueType).CanConvertFrom(typeof(string)))
        {
            if (section.Value is not null && !Converts(section, type, valueType))
            {
                errors.Add(Describe(section.Path, section.Value, valueType));
            }

            return;
        }

        var element = ElementType(valueType);
        if (!section.GetChildren().Any())
        {
            // The binder ignores a plain value where it expects a list or a group of settings.
            if (!string.IsNullOrEmpty(section.Value))
            {
                errors.Add(element is null
                    ? $"{section.Path}: '{section.Value}' is a single value; this setting is a group of keys ({section.Path}:…)."
                    : $"{section.Path}: '{section.Value}' is a single value; this setting is a list, given item by item ({section.Path}:0, {section.Path}:1, …).");
            }

            return;
        }

        if (element is null)
        {
            CheckObject(section, valueType, errors);
            return;
        }

        foreach (var item in section.GetChildren())
        {
            CheckValue(item, element, errors);
        }
    }

    // The binder itself decides what converts; only an enum number it would take without a name is refused on top.
    private static bool Converts(IConfigurationSection section, Type type, Type valueType)
    {
        try
        {
            var value = section.Get(type);
            return !valueType.IsEnum || value is null || Enum.IsDefined(valueType, value);
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    private static Type? ElementType(Type type) =>
        type.IsArray ? type.GetElementType()
        : type.IsGenericType && type.GetGenericArguments().Length == 1 && typeof(IEnumerable).IsAssignableFrom(type) ? type.GetGenericArguments()[0]
        : null;

    private static string Describe(string path, string value, Type type)
    {
        var expected = type switch
        {
            _ when type.IsEnum => $"is not a valid value ({string.Join(", ", Enum.GetNames(type))})",
            _ when type == typeof(bool) => "is not a valid value (true, false)",
            _ when type == typeof(TimeSpan) => "is not a valid TimeSpan (for example 00:05:00, or 5.00:00:00 for five days)",
            _ when type == typeof(int) || type == typeof(long) || type == typeof(short) || type == typeof(byte) => "is not a valid whole number",
            _ when type == typeof(double) || type == typeof(decimal) || type == typeof(float) => "is not a number",
            _ when type == typeof(Uri) => "is not a valid URI",
            _ => $"is not a valid {type.Name}",
        };
        return $"{path}: '{value}' {expected}.";
    }
}
