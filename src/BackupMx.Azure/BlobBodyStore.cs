// Message bodies in Blob Storage.
//
// Layout: one block blob per queue id in one container (default "bodies"), named by
// the queue id itself (ids are validated, so a name can never escape the container).
// The bytes are opaque (rule 3): no content type sniffing, no transformation.
//
// Writing streams: the body is read in blocks of BlockSize bytes, so memory stays
// bounded whatever the message size. A body that fits in one block goes up in a
// single Put Blob; a larger one is staged block by block and becomes visible only
// when the block list is committed. Either way the blob appears whole or not at all,
// and WriteAsync returns (durable, rule 1) only after that final request succeeded.
// Each request carries a transactional MD5 that the service checks; the MD5 and a
// SHA-256 of the whole body, computed while streaming, are stored with the blob
// (Content-MD5 and metadata "sha256") and the SHA-256 is verified again on read.
//
// Concurrency: there is none to manage. A queue id is written once at intake (an
// overwrite replaces the blob atomically) and deleted once the spool record is gone.
using System.Buffers;
using System.Security.Cryptography;
using Azure;
using Azure.Storage;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Azure.Storage.Blobs.Specialized;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace BackupMx.Azure;

/// <summary>Checksums and size of a stored body.</summary>
public sealed record StoredBodyInfo(long Length, byte[]? ContentMd5, string? Sha256, ETag ETag);

public sealed partial class BlobBodyStore : IBodyStore, IBodyInventory
{
    /// <summary>Metadata key of the hex SHA-256 of the whole body.</summary>
    public const string Sha256MetadataKey = "sha256";

    /// <summary>Bytes per staged block (and the largest body sent in a single request).</summary>
    public const int DefaultBlockSize = 4 * 1024 * 1024;

    private readonly BlobContainerClient _container;
    private readonly int _blockSize;
    private readonly ILogger _logger;

    public BlobBodyStore(BlobContainerClient container, ILogger<BlobBodyStore>? logger = null)
        : this(container, DefaultBlockSize, logger)
    {
    }

    /// <param name="blockSize">Bytes per block; small values exist for tests of the multi-block path.</param>
    public BlobBodyStore(BlobContainerClient container, int blockSize, ILogger<BlobBodyStore>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(container);
        ArgumentOutOfRangeException.ThrowIfLessThan(blockSize, 1024);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(blockSize, 100 * 1024 * 1024);
        _container = container;
        _blockSize = blockSize;
        _logger = logger ?? NullLogger<BlobBodyStore>.Instance;
    }

    public BlobContainerClient Container => _container;

    public async Task<long> WriteAsync(string queueId, Stream content, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(content);
        var blob = BlobFor(queueId);
        using var md5 = IncrementalHash.CreateHash(HashAlgorithmName.MD5);
        using var sha256 = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = ArrayPool<byte>.Shared.Rent(_blockSize);
        try
        {
            var filled = await FillAsync(content, buffer, cancellationToken).ConfigureAwait(false);
            if (filled < _blockSize)
            {
                // The common case for mail: the whole body in one request.
                md5.AppendData(buffer, 0, filled);
                sha256.AppendData(buffer, 0, filled);
                using var single = new MemoryStream(buffer, 0, filled, writable: false);
                await blob.UploadAsync(single, UploadOptions(md5, sha256), cancellationToken).ConfigureAwait(false);
                LogStored(_logger, queueId, filled, 1);
                return filled;
            }

            // Block ids must all have one length; the per-upload prefix keeps a concurrent or
            // abandoned upload of the same id from mixing its uncommitted blocks into ours.
            var prefix = Guid.NewGuid().ToString("N");
            var blockIds = new List<string>();
            long total = 0;
            while (filled > 0)
            {
                md5.AppendData(buffer, 0, filled);
                sha256.AppendData(buffer, 0, filled);
                var blockId = Convert.ToBase64String(System.Text.Encoding.ASCII.GetBytes($"{prefix}{blockIds.Count:D8}"));
                using (var block = new MemoryStream(buffer, 0, filled, writable: false))
                {
                    await blob.StageBlockAsync(
                        blockId,
                        block,
                        new BlockBlobStageBlockOptions { TransferValidation = Md5Validation },
                        cancellationToken).ConfigureAwait(false);
                }

                blockIds.Add(blockId);
                total += filled;
                filled = await FillAsync(content, buffer, cancellationToken).ConfigureAwait(false);
            }

            var final = UploadOptions(md5, sha256);
            await blob.CommitBlockListAsync(
                blockIds,
                new CommitBlockListOptions { HttpHeaders = final.HttpHeaders, Metadata = final.Metadata },
                cancellationToken).ConfigureAwait(false);
            LogStored(_logger, queueId, total, blockIds.Count);
            return total;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    public async Task<Stream> OpenReadAsync(string queueId, CancellationToken cancellationToken)
    {
        var blob = BlobFor(queueId);
        try
        {
            // One streaming GET; the SDK's retriable stream resumes from the last offset if the
            // connection drops, so a large body is never buffered.
            var response = await blob.DownloadStreamingAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
            var details = response.Value.Details;
            details.Metadata.TryGetValue(Sha256MetadataKey, out var expected);
            return new VerifyingReadStream(response.Value.Content, response.Value.Details.ContentLength, expected, queueId);
        }
        // Only a missing blob is a missing body, which the forwarder treats as final. A missing
        // container (404 ContainerNotFound) is a deployment fault that must stay a retryable error.
        catch (RequestFailedException ex) when (ex.Status == 404 && ex.ErrorCode == BlobErrorCode.BlobNotFound)
        {
            throw new BodyNotFoundException(queueId);
        }
    }

    public async Task DeleteAsync(string queueId, CancellationToken cancellationToken)
    {
        var blob = BlobFor(queueId);
        var response = await blob.DeleteIfExistsAsync(DeleteSnapshotsOption.IncludeSnapshots, cancellationToken: cancellationToken).ConfigureAwait(false);
        if (response.Value)
        {
            LogDeleted(_logger, queueId);
        }
    }

    /// <summary>
    /// Lists the container (one List Blobs request per 5000 blobs) and keeps the blobs last
    /// modified before <paramref name="cutoff"/>; a name that is not a queue id is not ours.
    /// </summary>
    public async IAsyncEnumerable<StoredBody> ListWrittenBeforeAsync(DateTimeOffset cutoff, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await foreach (var blob in _container.GetBlobsAsync(cancellationToken: cancellationToken).ConfigureAwait(false))
        {
            if (QueueId.IsValid(blob.Name) && blob.Properties.LastModified is { } written && written < cutoff)
            {
                yield return new StoredBody(blob.Name, written);
            }
        }
    }

    /// <summary>Size and checksums of a stored body, or null when there is none.</summary>
    public async Task<StoredBodyInfo?> GetInfoAsync(string queueId, CancellationToken cancellationToken)
    {
        try
        {
            var properties = await BlobFor(queueId).GetPropertiesAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
            properties.Value.Metadata.TryGetValue(Sha256MetadataKey, out var sha);
            return new StoredBodyInfo(properties.Value.ContentLength, properties.Value.ContentHash, sha, properties.Value.ETag);
        }
        catch (RequestFailedException ex) when (ex.Status == 404)
        {
            return null;
        }
    }

    private static readonly UploadTransferValidationOptions Md5Validation = new() { ChecksumAlgorithm = StorageChecksumAlgorithm.MD5 };

    private static BlobUploadOptions UploadOptions(IncrementalHash md5, IncrementalHash sha256) => new()
    {
        // Opaque bytes: never let a client or proxy treat the body as text.
        HttpHeaders = new BlobHttpHeaders { ContentType = "application/octet-stream", ContentHash = md5.GetHashAndReset() },
        Metadata = new Dictionary<string, string> { [Sha256MetadataKey] = Convert.ToHexStringLower(sha256.GetHashAndReset()) },
        TransferValidation = Md5Validation,
    };

    private BlockBlobClient BlobFor(string queueId)
    {
        if (!QueueId.IsValid(queueId))
        {
            throw new ArgumentException($"'{queueId}' is not a queue id.", nameof(queueId));
        }

        return _container.GetBlockBlobClient(queueId);
    }

    /// <summary>Reads until the buffer is full or the stream ends (streams may return short reads).</summary>
    private async Task<int> FillAsync(Stream content, byte[] buffer, CancellationToken cancellationToken)
    {
        var filled = 0;
        while (filled < _blockSize)
        {
            var read = await content.ReadAsync(buffer.AsMemory(filled, _blockSize - filled), cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                break;
            }

            filled += read;
        }

        return filled;
    }

    [LoggerMessage(EventId = 5700, Level = LogLevel.Debug, Message = "Stored body {QueueId}: {Length} bytes in {Blocks} block(s)")]
    private static partial void LogStored(ILogger logger, string queueId, long length, int blocks);

    [LoggerMessage(EventId = 5701, Level = LogLevel.Debug, Message = "Deleted body {QueueId}")]
    private static partial void LogDeleted(ILogger logger, string queueId);
}
