using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using BackupMx.Core.Model;

namespace BackupMx.Local;

/// <summary>
/// The JSON document kept per spool row. Source-generated so it works trimmed. Only settable
/// (init-only included) properties are stored: computed ones (IsFinished, PendingRecipients, WantsFailureNotice…)
/// are derived on read, and the ETag is the row's version column, not part of the document.
/// New settable properties of the Core model are picked up without a change here.
/// </summary>
internal static class SpoolJson
{
    // A separate class, so these are built after the generated context's own statics.
    private static readonly string ETagName = JsonNamingPolicy.CamelCase.ConvertName(nameof(SpoolRecord.ETag));

    public static JsonSerializerOptions Options { get; } = new(SpoolJsonContext.Default.Options!)
    {
        TypeInfoResolver = SpoolJsonContext.Default.WithAddedModifier(StoredStateOnly),
    };

    public static JsonTypeInfo<SpoolRecord> Record { get; } = (JsonTypeInfo<SpoolRecord>)Options.GetTypeInfo(typeof(SpoolRecord));

    private static void StoredStateOnly(JsonTypeInfo typeInfo)
    {
        if (typeInfo.Kind != JsonTypeInfoKind.Object)
        {
            return;
        }

        for (var i = typeInfo.Properties.Count - 1; i >= 0; i--)
        {
            var property = typeInfo.Properties[i];
            var isConstructorParameter = property.AssociatedParameter is not null;
            if (property.Set is null && !isConstructorParameter)
            {
                typeInfo.Properties.RemoveAt(i);
            }
            else if (typeInfo.Type == typeof(SpoolRecord) && property.Name == ETagName)
            {
                // Never written. Init-only, it stays in the contract (its constructor parameter must
                // bind); the store sets it from the row's version after every read.
                property.ShouldSerialize = static (_, _) => false;
            }
        }
    }
}

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    UseStringEnumConverter = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(SpoolRecord))]
internal sealed partial class SpoolJsonContext : JsonSerializerContext;
