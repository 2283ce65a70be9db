using Azure;
using Azure.Data.Tables;
using Azure.Storage.Blobs;
using BackupMx.Core.Hosting;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BackupMx.Azure;

/// <summary>
/// Creates the bodies container and the tables at start-up if they are missing, so a fresh
/// emulator or a developer's account works at once. Registered only with a storage connection
/// string: in Azure the infrastructure creates them and the managed identity has data-plane
/// rights only. A "403 forbidden" (a connection string with a restricted SAS) still means "not
/// ours to create" and is fine; any other failure stops the host with a <see cref="StartupException"/>
/// naming what could not be reached.
/// </summary>
public sealed partial class AzureStorageInitializer(
    BlobServiceClient blobs,
    TableServiceClient tables,
    IOptions<AzureOptions> options,
    ILogger<AzureStorageInitializer> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => EnsureCreatedAsync(cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task EnsureCreatedAsync(CancellationToken cancellationToken)
    {
        var o = options.Value;
        await CreateAsync("container", o.BodiesContainer, "BodiesContainer", ct => blobs.GetBlobContainerClient(o.BodiesContainer).CreateIfNotExistsAsync(cancellationToken: ct), cancellationToken).ConfigureAwait(false);
        await CreateAsync("table", o.SpoolTable, "SpoolTable", ct => tables.GetTableClient(o.SpoolTable).CreateIfNotExistsAsync(ct), cancellationToken).ConfigureAwait(false);
        await CreateAsync("table", o.PrimariesTable, "PrimariesTable", ct => tables.GetTableClient(o.PrimariesTable).CreateIfNotExistsAsync(ct), cancellationToken).ConfigureAwait(false);
        await CreateAsync("table", o.VerificationsTable, "VerificationsTable", ct => tables.GetTableClient(o.VerificationsTable).CreateIfNotExistsAsync(ct), cancellationToken).ConfigureAwait(false);
    }

    private async Task CreateAsync<T>(string kind, string name, string key, Func<CancellationToken, Task<T>> create, CancellationToken cancellationToken)
    {
        try
        {
            await create(cancellationToken).ConfigureAwait(false);
            LogReady(logger, kind, name);
        }
        catch (RequestFailedException ex) when (ex.Status == 403)
        {
            LogNotAllowed(logger, kind, name);
        }
        // With retries the SDK reports a storage it never reached as an AggregateException of the
        // failed tries; either way it becomes one line through HostRunner, not a crash with a stack trace.
        catch (Exception ex) when (ex is RequestFailedException || (ex is AggregateException all && all.InnerExceptions.All(e => e is RequestFailedException)))
        {
            throw new StartupException(
                $"could not create or open the storage {kind} '{name}' ({AzureOptions.SectionName}:{key}) at {Endpoint(kind)}: {Reason(ex)}. Check the connection string and that the storage is running.",
                ex);
        }
    }

    private Uri Endpoint(string kind) => kind == "container" ? blobs.Uri : tables.Uri;

    private static string Reason(Exception ex)
    {
        var last = ex is AggregateException all ? all.InnerExceptions[^1] : ex;
        if (last is RequestFailedException { Status: > 0 } failed)
        {
            return $"HTTP {failed.Status} {failed.ErrorCode}".TrimEnd();
        }

        // No answer at all: the innermost exception says why (connection refused, name not resolved, ...).
        while (last.InnerException is not null)
        {
            last = last.InnerException;
        }

        return last.Message;
    }

    [LoggerMessage(EventId = 5730, Level = LogLevel.Debug, Message = "Storage {Kind} {Name} is ready")]
    private static partial void LogReady(ILogger logger, string kind, string name);

    [LoggerMessage(EventId = 5731, Level = LogLevel.Information, Message = "Not allowed to create storage {Kind} {Name}; assuming the infrastructure created it")]
    private static partial void LogNotAllowed(ILogger logger, string kind, string name);
}
