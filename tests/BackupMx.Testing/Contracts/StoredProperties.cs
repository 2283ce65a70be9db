using System.Reflection;
using BackupMx.Core.Model;
using Xunit;

namespace BackupMx.Testing.Contracts;

/// <summary>
/// The stored shape of a spool record, found by reflection: every public property with a setter
/// (init or set) of <see cref="SpoolRecord"/>, <see cref="RecipientState"/>,
/// <see cref="MailParameters"/> and <see cref="DeliveryAttempt"/>, except the store's own concurrency token.
/// </summary>
public static class StoredProperties
{
    public static IReadOnlyList<PropertyInfo> Of(Type type) =>
        type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.SetMethod is { IsPublic: true } && p.Name != nameof(SpoolRecord.ETag))
            .OrderBy(p => p.Name, StringComparer.Ordinal)
            .ToList();

    /// <summary>A record whose every stored property, its recipient's and its parameters' included, holds a value other than its default.</summary>
    public static SpoolRecord FullyPopulated()
    {
        var record = new SpoolRecord
        {
            QueueId = QueueId.New(SpoolRecords.T0),
            Domain = "example.test",
            Sender = "alice@sender.test",
            Recipients = [Populate(new RecipientState { Address = "bob@example.test" }, 100)],
            ReceivedAt = SpoolRecords.T0,
            ExpiresAt = SpoolRecords.T0.AddDays(5),
        };
        record = Populate(record, 0);
        return record with
        {
            Parameters = Populate(new MailParameters(), 200),
            AttemptHistory = [Populate(new DeliveryAttempt { At = default }, 300), Populate(new DeliveryAttempt { At = default }, 400)],
        };
    }

    /// <summary>Fails naming the first stored property that differs.</summary>
    public static void AssertSame(SpoolRecord expected, SpoolRecord actual)
    {
        ArgumentNullException.ThrowIfNull(expected);
        ArgumentNullException.ThrowIfNull(actual);
        AssertProperties(expected, actual, nameof(SpoolRecord));
        AssertProperties(expected.Parameters, actual.Parameters, nameof(MailParameters));
        Assert.Equal(expected.Recipients.Count, actual.Recipients.Count);
        for (var i = 0; i < expected.Recipients.Count; i++)
        {
            AssertProperties(expected.Recipients[i], actual.Recipients[i], nameof(RecipientState));
        }

        Assert.True(expected.AttemptHistory.Count == actual.AttemptHistory.Count, $"{nameof(SpoolRecord)}.{nameof(SpoolRecord.AttemptHistory)} was not stored: wrote {expected.AttemptHistory.Count} attempt(s), read {actual.AttemptHistory.Count}.");
        for (var i = 0; i < expected.AttemptHistory.Count; i++)
        {
            AssertProperties(expected.AttemptHistory[i], actual.AttemptHistory[i], nameof(DeliveryAttempt));
        }
    }

    // Compared element by element above, or by their own properties.
    private static bool IsNested(Type type) =>
        type == typeof(IReadOnlyList<RecipientState>) || type == typeof(MailParameters) || type == typeof(IReadOnlyList<DeliveryAttempt>);

    private static void AssertProperties<T>(T expected, T actual, string owner)
    {
        foreach (var property in Of(typeof(T)))
        {
            if (IsNested(property.PropertyType))
            {
                continue;
            }

            var want = property.GetValue(expected);
            var got = property.GetValue(actual);
            Assert.True(Equals(want, got), $"{owner}.{property.Name} was not stored: wrote '{want}', read '{got}'.");
        }
    }

    /// <summary>
    /// Sets every stored property still at its default to a value of its type that is not the
    /// default (the n-th of its kind, so no two properties share a value). Identity properties set
    /// by the caller keep their values.
    /// </summary>
    private static T Populate<T>(T target, int seed)
        where T : class
    {
        var n = seed;
        foreach (var property in Of(typeof(T)))
        {
            n++;
            var current = property.GetValue(target);
            var type = property.PropertyType;
            if (IsNested(type))
            {
                continue;
            }

            var isDefault = current is null
                || (type.IsValueType && Nullable.GetUnderlyingType(type) is null && current.Equals(Activator.CreateInstance(type)));
            if (!isDefault)
            {
                continue;
            }

            var value = ValueFor(property, n);
            Assert.False(value is null || (type.IsValueType && value.Equals(Activator.CreateInstance(Nullable.GetUnderlyingType(type) ?? type))),
                $"No non-default test value for {typeof(T).Name}.{property.Name} ({type.Name}): add one to {nameof(StoredProperties)}.");
            property.SetValue(target, value);
        }

        return target;
    }

    private static object? ValueFor(PropertyInfo property, int n)
    {
        var type = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
        if (type == typeof(string))
        {
            // Values the stores accept for what these fields mean (an xtext ENVID, an address, a keyword list).
            return property.Name switch
            {
                nameof(RecipientState.Notify) => "SUCCESS,FAILURE",
                nameof(RecipientState.OriginalRecipient) => "rfc822;Bob@example.test",
                nameof(MailParameters.Body) => "8BITMIME",
                nameof(MailParameters.Ret) => "HDRS",
                _ => $"{property.Name.ToLowerInvariant()}-{n}",
            };
        }

        if (type == typeof(DateTimeOffset))
        {
            return SpoolRecords.T0.AddMinutes(n);
        }

        if (type == typeof(int))
        {
            return n;
        }

        if (type == typeof(long))
        {
            return 1000L + n;
        }

        if (type == typeof(bool))
        {
            return true;
        }

        if (type.IsEnum)
        {
            return Enum.GetValues(type).Cast<object>().Last();
        }

        if (type == typeof(SmtpReply))
        {
            return new SmtpReply(451, "4.2.1", $"reply {n}");
        }

        return null;
    }
}
