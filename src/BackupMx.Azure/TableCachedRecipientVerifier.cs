// Recipient verification shared by every receiver replica.
//
// Each replica keeps its own short memory of callout answers (RecipientPolicy), but
// replicas come and go and a sender's retries land on any of them: without a shared
// answer each one would call the primary out again for the same address. This verifier
// sits in front of the callout and keeps definite answers (exists, does not exist) in
// Azure Tables, one entity per address, with the same lifetimes as the local cache
// (RecipientVerification:PositiveCacheDuration / NegativeCacheDuration). "Unknown" is
// never stored: the next RCPT should ask again. The table is a cache, not state: when it
// cannot be read or written (service down, a missing role, a token that cannot be had)
// the callout still happens and the answer still counts.
//
// Keys: PartitionKey is the domain (as the spool's), RowKey a SHA-256 of the address,
// since a local part may hold characters a RowKey must not ('/', '\', '#', '?').
using System.Security.Cryptography;
using System.Text;
using Azure.Data.Tables;
using BackupMx.Core.Configuration;
using BackupMx.Core.Ports;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BackupMx.Azure;

public sealed partial class TableCachedRecipientVerifier : IRecipientVerifier
{
    private readonly IRecipientVerifier _inner;
    private readonly TableClient _table;
    private readonly IOptions<BackupMxOptions> _options;
    private readonly TimeProvider _time;
    private readonly ILogger<TableCachedRecipientVerifier> _logger;

    public TableCachedRecipientVerifier(
        IRecipientVerifier inner,
        TableClient table,
        IOptions<BackupMxOptions> options,
        TimeProvider time,
        ILogger<TableCachedRecipientVerifier> logger)
    {
        ArgumentNullException.ThrowIfNull(inner);
        ArgumentNullException.ThrowIfNull(table);
        _inner = inner;
        _table = table;
        _options = options;
        _time = time;
        _logger = logger;
    }

    public TableClient Table => _table;

    public async Task<VerificationResult> VerifyAsync(string domain, string address, CancellationToken cancellationToken)
    {
        var partitionKey = SpoolEntityMapper.PartitionKey(domain);
        var rowKey = RowKey(address);
        var known = await ReadAsync(partitionKey, rowKey, domain, cancellationToken).ConfigureAwait(false);
        if (known is { } exists)
        {
            return new VerificationResult(exists ? VerificationOutcome.Exists : VerificationOutcome.DoesNotExist, null);
        }

        var result = await _inner.VerifyAsync(domain, address, cancellationToken).ConfigureAwait(false);
        if (result.Outcome is VerificationOutcome.Exists or VerificationOutcome.DoesNotExist)
        {
            await WriteAsync(partitionKey, rowKey, domain, result.Outcome == VerificationOutcome.Exists, cancellationToken).ConfigureAwait(false);
        }

        return result;
    }

    private async Task<bool?> ReadAsync(string partitionKey, string rowKey, string domain, CancellationToken cancellationToken)
    {
        try
        {
            var response = await _table.GetEntityIfExistsAsync<TableEntity>(partitionKey, rowKey, ["Exists", "ExpiresAtTicks"], cancellationToken).ConfigureAwait(false);
            if (!response.HasValue
                || response.Value!.GetBoolean("Exists") is not { } exists
                || response.Value.GetInt64("ExpiresAtTicks") is not { } expiresAt
                || expiresAt <= _time.GetUtcNow().UtcTicks)
            {
                return null;
            }

            return exists;
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            LogCacheUnavailable(_logger, ex, domain);
            return null;
        }
    }

    private async Task WriteAsync(string partitionKey, string rowKey, string domain, bool exists, CancellationToken cancellationToken)
    {
        var verification = _options.Value.RecipientVerification;
        var lifetime = exists ? verification.PositiveCacheDuration : verification.NegativeCacheDuration;
        var entity = new TableEntity(partitionKey, rowKey)
        {
            ["Exists"] = exists,
            ["ExpiresAtTicks"] = (_time.GetUtcNow() + lifetime).UtcTicks,
        };
        try
        {
            // Last answer wins: two replicas that called out at once both heard the primary.
            await _table.UpsertEntityAsync(entity, TableUpdateMode.Replace, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            LogCacheUnavailable(_logger, ex, domain);
        }
    }

    private static string RowKey(string address) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(address)));

    [LoggerMessage(EventId = 5740, Level = LogLevel.Warning, Message = "Shared recipient verification cache unavailable for {Domain}; calling the primary out directly")]
    private static partial void LogCacheUnavailable(ILogger logger, Exception exception, string domain);
}
