using System.Globalization;
using Azure.Data.Tables;
using BackupMx.Core.Ports;

namespace BackupMx.Receiver.CrashHelper;

/// <summary>
/// Wake-ups as rows of an Azurite table: the stand-in for Service Bus scheduled messages whose
/// state outlives a killed receiver. The row key is the Service Bus adapter's message id
/// ("queue id:due ticks"), so a repeated schedule of the same attempt is one row, as with
/// duplicate detection. The test reads the rows and hands them to the forwarder.
/// </summary>
public sealed class TableWakeUpQueue(TableClient table) : IWakeUpQueue
{
    public const string DomainColumn = "Domain";
    public const string QueueIdColumn = "QueueId";
    public const string DueAtColumn = "DueAtTicks";
    public const string Partition = "wakeups";

    public static async Task<TableWakeUpQueue> CreateAsync(string connectionString, string tableName)
    {
        var table = new TableClient(connectionString, tableName);
        await table.CreateIfNotExistsAsync().ConfigureAwait(false);
        return new TableWakeUpQueue(table);
    }

    public async Task<string?> ScheduleAsync(WakeUp wakeUp, DateTimeOffset dueAt, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(wakeUp);
        var rowKey = string.Create(CultureInfo.InvariantCulture, $"{wakeUp.QueueId}:{dueAt.UtcTicks}");
        var entity = new TableEntity(Partition, rowKey)
        {
            [DomainColumn] = wakeUp.Domain,
            [QueueIdColumn] = wakeUp.QueueId,
            [DueAtColumn] = dueAt.UtcTicks,
        };
        await table.UpsertEntityAsync(entity, TableUpdateMode.Replace, cancellationToken).ConfigureAwait(false);
        return rowKey;
    }

    public async Task CancelAsync(string token, CancellationToken cancellationToken) =>
        await table.DeleteEntityAsync(Partition, token, cancellationToken: cancellationToken).ConfigureAwait(false);
}
