using System.Globalization;
using System.IO.Compression;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Azure.Data.Tables;
using BackupMx.Core.Model;

namespace BackupMx.Azure;

/// <summary>
/// Converts <see cref="SpoolRecord"/> to and from a table entity. Every instant is stored as
/// UTC ticks (exact to 100 ns over the whole DateTimeOffset range, where an Edm.DateTime column
/// could not hold DateTimeOffset.MinValue); the offset is not kept, so values come back in UTC
/// and compare equal. See <see cref="TableSpoolStore"/> for the layout.
/// </summary>
internal static class SpoolEntityMapper
{
    /// <summary>
    /// Largest recipient JSON kept as plain text. A string property may hold 64 KiB of UTF-16,
    /// i.e. 32,768 characters; the margin leaves room for the service's own accounting.
    /// </summary>
    internal const int MaxPlainRecipientChars = 30_000;

    /// <summary>Largest binary property (64 KiB).</summary>
    internal const int MaxBinaryChunk = 64 * 1024;

    /// <summary>
    /// Most compressed recipient bytes kept at full reply length: half the entity's 1 MiB, so the
    /// other columns and the service's per-property overhead always fit.
    /// </summary>
    internal const int MaxCompressedRecipientBytes = 8 * MaxBinaryChunk;

    /// <summary>Reply texts are cut to this when the recipients would not fit otherwise.</summary>
    internal const int ShortReplyChars = 100;

    internal static class Columns
    {
        public const string Domain = "Domain";
        public const string Kind = "Kind";
        public const string Sender = "Sender";
        public const string Body = "ParamBody";
        public const string Ret = "ParamRet";
        public const string EnvelopeId = "ParamEnvelopeId";
        public const string DeclaredSize = "ParamDeclaredSize";
        public const string SmtpUtf8 = "ParamSmtpUtf8";
        public const string Recipients = "Recipients";
        public const string RecipientsCompressed = "RecipientsBr";
        public const string RecipientsCompressedParts = "RecipientsBrParts";
        public const string RecipientCount = "RecipientCount";
        public const string ReceivedAt = "ReceivedAtTicks";
        public const string ExpiresAt = "ExpiresAtTicks";
        public const string NextAttemptAt = "NextAttemptAt";
        public const string Attempts = "Attempts";
        public const string LastError = "LastError";
        public const string LastAttemptAt = "LastAttemptAtTicks";
        public const string AttemptHistory = "AttemptHistory";
        public const string BodyLength = "BodyLength";
        public const string ClientAddress = "ClientAddress";
        public const string HeloName = "HeloName";
        public const string LeaseOwner = "LeaseOwner";
        public const string LeaseExpiresAt = "LeaseExpiresAtTicks";
        public const string WakeUpToken = "WakeUpToken";
        public const string HeldAt = "HeldAtTicks";
        public const string WriteId = "WriteId";
    }

    /// <summary>
    /// The domain in lower case. Characters a key may not hold (/ \ # ? and controls) cannot occur
    /// in a domain name, but a DSN's domain comes from a remote MAIL FROM, so they are %-escaped
    /// rather than trusted.
    /// </summary>
    public static string PartitionKey(string domain)
    {
        var lower = domain.ToLowerInvariant();
        if (!lower.Any(IsForbidden))
        {
            return lower;
        }

        var escaped = new StringBuilder(lower.Length + 8);
        foreach (var c in lower)
        {
            if (IsForbidden(c))
            {
                escaped.Append('%').Append(((int)c).ToString("X2", CultureInfo.InvariantCulture));
            }
            else
            {
                escaped.Append(c);
            }
        }

        return escaped.ToString();
    }

    private static bool IsForbidden(char c) => c is '/' or '\\' or '#' or '?' or '%' || char.IsControl(c);

    /// <summary>
    /// NextAttemptAt as 19 zero-padded digits of UTC ticks. A string, not an Int64, because the
    /// due-query compares it: strings of equal length compare like the numbers they spell both in
    /// Azure and in Azurite, whose Int64 filters compare as text and so go wrong across lengths.
    /// </summary>
    public static string DueKey(DateTimeOffset value) => value.UtcTicks.ToString("D19", CultureInfo.InvariantCulture);

    public static TableEntity ToEntity(SpoolRecord record)
    {
        var entity = new TableEntity(PartitionKey(record.Domain), record.QueueId)
        {
            [Columns.Domain] = record.Domain,
            [Columns.Kind] = (int)record.Kind,
            [Columns.Sender] = record.Sender,
            [Columns.ReceivedAt] = record.ReceivedAt.UtcTicks,
            [Columns.ExpiresAt] = record.ExpiresAt.UtcTicks,
            [Columns.NextAttemptAt] = DueKey(record.NextAttemptAt),
            [Columns.Attempts] = record.Attempts,
            [Columns.BodyLength] = record.BodyLength,
            [Columns.RecipientCount] = record.Recipients.Count,
        };

        // Absent columns mean null: the service does not store null properties at all.
        SetIfNotNull(entity, Columns.Body, record.Parameters.Body);
        SetIfNotNull(entity, Columns.Ret, record.Parameters.Ret);
        SetIfNotNull(entity, Columns.EnvelopeId, record.Parameters.EnvelopeId);
        if (record.Parameters.DeclaredSize is { } size)
        {
            entity[Columns.DeclaredSize] = size;
        }

        if (record.Parameters.SmtpUtf8)
        {
            entity[Columns.SmtpUtf8] = true;
        }

        // Core bounds it already (StoredText); the column limit is enforced here too, because a
        // write over it fails with 400 and no later outcome of the record could be saved.
        SetIfNotNull(entity, Columns.LastError, record.LastError is { } error ? StoredText.Bound(error, MaxPlainRecipientChars) : null);
        SetIfNotNull(entity, Columns.ClientAddress, record.ClientAddress);
        SetIfNotNull(entity, Columns.HeloName, record.HeloName);
        SetIfNotNull(entity, Columns.LeaseOwner, record.LeaseOwner);
        SetIfNotNull(entity, Columns.WakeUpToken, record.WakeUpToken);
        if (record.LastAttemptAt is { } lastAttempt)
        {
            entity[Columns.LastAttemptAt] = lastAttempt.UtcTicks;
        }

        if (record.LeaseExpiresAt is { } leaseExpires)
        {
            entity[Columns.LeaseExpiresAt] = leaseExpires.UtcTicks;
        }

        if (record.HeldAt is { } heldAt)
        {
            entity[Columns.HeldAt] = heldAt.UtcTicks;
        }

        WriteRecipients(entity, record.Recipients);
        WriteAttemptHistory(entity, record.AttemptHistory);
        return entity;
    }

    public static SpoolRecord FromEntity(TableEntity entity)
    {
        var record = new SpoolRecord
        {
            QueueId = entity.RowKey,
            Domain = entity.GetString(Columns.Domain) ?? entity.PartitionKey,
            Kind = (MessageKind)(entity.GetInt32(Columns.Kind) ?? 0),
            Sender = entity.GetString(Columns.Sender) ?? string.Empty,
            Parameters = new MailParameters
            {
                Body = entity.GetString(Columns.Body),
                Ret = entity.GetString(Columns.Ret),
                EnvelopeId = entity.GetString(Columns.EnvelopeId),
                DeclaredSize = entity.GetInt64(Columns.DeclaredSize),
                SmtpUtf8 = entity.GetBoolean(Columns.SmtpUtf8) ?? false,
            },
            Recipients = ReadRecipients(entity),
            ReceivedAt = FromTicks(entity.GetInt64(Columns.ReceivedAt) ?? 0),
            ExpiresAt = FromTicks(entity.GetInt64(Columns.ExpiresAt) ?? 0),
            NextAttemptAt = FromDueKey(entity.GetString(Columns.NextAttemptAt)),
            Attempts = entity.GetInt32(Columns.Attempts) ?? 0,
            LastError = entity.GetString(Columns.LastError),
            LastAttemptAt = FromTicks(entity.GetInt64(Columns.LastAttemptAt)),
            AttemptHistory = ReadAttemptHistory(entity),
            BodyLength = entity.GetInt64(Columns.BodyLength) ?? 0,
            ClientAddress = entity.GetString(Columns.ClientAddress),
            HeloName = entity.GetString(Columns.HeloName),
            LeaseOwner = entity.GetString(Columns.LeaseOwner),
            LeaseExpiresAt = FromTicks(entity.GetInt64(Columns.LeaseExpiresAt)),
            WakeUpToken = entity.GetString(Columns.WakeUpToken),
            HeldAt = FromTicks(entity.GetInt64(Columns.HeldAt)),
            ETag = entity.ETag.ToString(),
        };
        return record;
    }

    /// <summary>
    /// Marks <paramref name="entity"/> with a fresh write id. The SDK resends the same request
    /// after a lost response, so a stored entity that carries this id is this very write.
    /// </summary>
    public static string StampWrite(TableEntity entity)
    {
        var writeId = Guid.NewGuid().ToString("N");
        entity[Columns.WriteId] = writeId;
        return writeId;
    }

    /// <summary>Whether <paramref name="stored"/> is the result of the write stamped <paramref name="writeId"/>.</summary>
    public static bool IsWrite(TableEntity stored, string writeId) =>
        string.Equals(stored.GetString(Columns.WriteId), writeId, StringComparison.Ordinal);

    public static DateTimeOffset FromDueKey(string? value) =>
        value is null ? default : FromTicks(long.Parse(value, NumberStyles.None, CultureInfo.InvariantCulture));

    private static DateTimeOffset FromTicks(long ticks) => new(ticks, TimeSpan.Zero);

    private static DateTimeOffset? FromTicks(long? ticks) => ticks is { } t ? new DateTimeOffset(t, TimeSpan.Zero) : null;

    private static void SetIfNotNull(TableEntity entity, string column, string? value)
    {
        if (value is not null)
        {
            entity[column] = value;
        }
    }

    /// <summary>
    /// Recipients as JSON: plain text while it fits one string property (readable in Storage
    /// Explorer), otherwise Brotli-compressed and split over 64 KiB binary columns. A thousand
    /// recipients with long replies compress to a few of those; the entity as a whole must stay
    /// under the service's 1 MiB, which only pathological envelopes could exceed (the write then
    /// fails and intake answers 451).
    /// </summary>
    private static void WriteRecipients(TableEntity entity, IReadOnlyList<RecipientState> recipients)
    {
        var dtos = recipients.Select(RecipientDto.From).ToList();
        var utf8 = JsonSerializer.SerializeToUtf8Bytes(dtos, SpoolJsonContext.Default.ListRecipientDto);
        if (utf8.Length <= MaxPlainRecipientChars)
        {
            // UTF-8 bytes bound the UTF-16 length from above, so the check is safe for any text.
            entity[Columns.Recipients] = Encoding.UTF8.GetString(utf8);
            return;
        }

        var compressed = Compress(utf8);
        if (compressed.Length > MaxCompressedRecipientBytes)
        {
            // Outcomes must always be savable; the reply texts are only for people, so they give way.
            foreach (var reply in dtos.Select(d => d.LastReply).OfType<ReplyDto>())
            {
                reply.Text = StoredText.Bound(reply.Text, ShortReplyChars);
            }

            compressed = Compress(JsonSerializer.SerializeToUtf8Bytes(dtos, SpoolJsonContext.Default.ListRecipientDto));
        }

        var parts = (compressed.Length + MaxBinaryChunk - 1) / MaxBinaryChunk;
        for (var i = 0; i < parts; i++)
        {
            var offset = i * MaxBinaryChunk;
            entity[Columns.RecipientsCompressed + i.ToString(CultureInfo.InvariantCulture)] = compressed.AsSpan(offset, Math.Min(MaxBinaryChunk, compressed.Length - offset)).ToArray();
        }

        entity[Columns.RecipientsCompressedParts] = parts;
    }

    private static byte[] Compress(byte[] utf8)
    {
        using var output = new MemoryStream();
        using (var brotli = new BrotliStream(output, CompressionLevel.Optimal, leaveOpen: true))
        {
            brotli.Write(utf8);
        }

        return output.ToArray();
    }

    /// <summary>
    /// The attempts as JSON in one string column. The history is for people, so when escaped reply
    /// texts would not fit one property the oldest attempts give way rather than the write failing.
    /// </summary>
    private static void WriteAttemptHistory(TableEntity entity, IReadOnlyList<DeliveryAttempt> history)
    {
        var dtos = history.Select(AttemptDto.From).ToList();
        while (dtos.Count > 0)
        {
            var json = JsonSerializer.Serialize(dtos, SpoolJsonContext.Default.ListAttemptDto);
            if (json.Length <= MaxPlainRecipientChars)
            {
                entity[Columns.AttemptHistory] = json;
                return;
            }

            dtos.RemoveAt(0);
        }
    }

    private static List<DeliveryAttempt> ReadAttemptHistory(TableEntity entity) =>
        entity.GetString(Columns.AttemptHistory) is { } json
            ? (JsonSerializer.Deserialize(json, SpoolJsonContext.Default.ListAttemptDto) ?? []).Select(d => d.ToAttempt()).ToList()
            : [];

    private static List<RecipientState> ReadRecipients(TableEntity entity)
    {
        List<RecipientDto>? dtos;
        if (entity.GetString(Columns.Recipients) is { } json)
        {
            dtos = JsonSerializer.Deserialize(json, SpoolJsonContext.Default.ListRecipientDto);
        }
        else if (entity.GetInt32(Columns.RecipientsCompressedParts) is { } parts)
        {
            using var compressed = new MemoryStream();
            for (var i = 0; i < parts; i++)
            {
                var chunk = entity.GetBinary(Columns.RecipientsCompressed + i.ToString(CultureInfo.InvariantCulture))
                    ?? throw new InvalidDataException($"Spool record {entity.RowKey} lacks recipient part {i} of {parts}.");
                compressed.Write(chunk);
            }

            compressed.Position = 0;
            using var brotli = new BrotliStream(compressed, CompressionMode.Decompress);
            dtos = JsonSerializer.Deserialize(brotli, SpoolJsonContext.Default.ListRecipientDto);
        }
        else
        {
            throw new InvalidDataException($"Spool record {entity.RowKey} has no recipients column.");
        }

        return (dtos ?? []).Select(d => d.ToState()).ToList();
    }
}

// Deliberately not Core's RecipientState/SmtpReply: these DTOs freeze the stored JSON against model renames (pinned by SpoolEntityMapperTests).
/// <summary>One recipient in the JSON column; short names because a thousand of them share 64 KiB.</summary>
internal sealed class RecipientDto
{
    [JsonPropertyName("a")]
    public string Address { get; set; } = string.Empty;

    [JsonPropertyName("o")]
    public string? OriginalRecipient { get; set; }

    [JsonPropertyName("n")]
    public string? Notify { get; set; }

    [JsonPropertyName("s")]
    public RecipientStatus Status { get; set; }

    [JsonPropertyName("r")]
    public ReplyDto? LastReply { get; set; }

    [JsonPropertyName("f")]
    public string? FailureStatus { get; set; }

    [JsonPropertyName("nn")]
    public bool NeedsNotification { get; set; }

    /// <summary>UTC ticks.</summary>
    [JsonPropertyName("t")]
    public long? CompletedAt { get; set; }

    [JsonPropertyName("h")]
    public string? RemoteHost { get; set; }

    public static RecipientDto From(RecipientState state) => new()
    {
        Address = state.Address,
        OriginalRecipient = state.OriginalRecipient,
        Notify = state.Notify,
        Status = state.Status,
        LastReply = state.LastReply is { } reply ? new ReplyDto { Code = reply.Code, EnhancedCode = reply.EnhancedCode, Text = reply.Text, Local = reply.FromRemote ? null : true } : null,
        FailureStatus = state.FailureStatus,
        NeedsNotification = state.NeedsNotification,
        CompletedAt = state.CompletedAt?.UtcTicks,
        RemoteHost = state.RemoteHost,
    };

    public RecipientState ToState() => new()
    {
        Address = Address,
        OriginalRecipient = OriginalRecipient,
        Notify = Notify,
        Status = Status,
        LastReply = LastReply is { } r ? new SmtpReply(r.Code, r.EnhancedCode, r.Text, FromRemote: r.Local != true) : null,
        FailureStatus = FailureStatus,
        NeedsNotification = NeedsNotification,
        CompletedAt = CompletedAt is { } ticks ? new DateTimeOffset(ticks, TimeSpan.Zero) : null,
        RemoteHost = RemoteHost,
    };
}

internal sealed class ReplyDto
{
    [JsonPropertyName("c")]
    public int Code { get; set; }

    [JsonPropertyName("e")]
    public string? EnhancedCode { get; set; }

    [JsonPropertyName("t")]
    public string Text { get; set; } = string.Empty;

    /// <summary>True for a reply we synthesised (no remote server answered); absent otherwise.</summary>
    [JsonPropertyName("l")]
    public bool? Local { get; set; }
}

/// <summary>One attempt in the history column; short names, like the recipients'.</summary>
internal sealed class AttemptDto
{
    /// <summary>UTC ticks.</summary>
    [JsonPropertyName("t")]
    public long At { get; set; }

    [JsonPropertyName("h")]
    public string? Host { get; set; }

    [JsonPropertyName("r")]
    public string? Reply { get; set; }

    [JsonPropertyName("d")]
    public int Delivered { get; set; }

    [JsonPropertyName("f")]
    public int Failed { get; set; }

    [JsonPropertyName("p")]
    public int Deferred { get; set; }

    public static AttemptDto From(DeliveryAttempt attempt) => new()
    {
        At = attempt.At.UtcTicks,
        Host = attempt.Host,
        Reply = attempt.Reply,
        Delivered = attempt.Delivered,
        Failed = attempt.Failed,
        Deferred = attempt.Deferred,
    };

    public DeliveryAttempt ToAttempt() => new()
    {
        At = new DateTimeOffset(At, TimeSpan.Zero),
        Host = Host,
        Reply = Reply,
        Delivered = Delivered,
        Failed = Failed,
        Deferred = Deferred,
    };
}

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingDefault, UseStringEnumConverter = false)]
[JsonSerializable(typeof(List<RecipientDto>))]
[JsonSerializable(typeof(List<AttemptDto>))]
internal sealed partial class SpoolJsonContext : JsonSerializerContext;
