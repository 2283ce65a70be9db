using BackupMx.Core.Ports;
using Xunit;

namespace BackupMx.Testing.Contracts;

/// <summary>
/// What every <see cref="IPrimaryStatusStore"/> must do: keep the last state per domain,
/// case-insensitively, and write only when the caller names the version stored now (none for a
/// domain not stored yet), so that of several writers deciding from the same read only one wins.
/// </summary>
public abstract class PrimaryStatusStoreContract
{
    protected abstract Task<IPrimaryStatusStore> CreateStoreAsync();

    private static readonly CancellationToken None = CancellationToken.None;

    private static PrimaryStatus Down(string domain = "example.test", string error = "connection refused") =>
        new(domain, PrimaryState.Down, SpoolRecords.T0, SpoolRecords.T0, error, null);

    private static PrimaryStatus Up(string domain = "example.test", string host = "mx1.example.test") =>
        new(domain, PrimaryState.Up, SpoolRecords.T0.AddMinutes(5), SpoolRecords.T0.AddMinutes(5), null, host);

    [Fact]
    public async Task GetAsync_Unknown_ReturnsNull()
    {
        var store = await CreateStoreAsync();
        Assert.Null(await store.GetAsync("example.test", None));
        Assert.Empty(await store.ListAsync(None));
    }

    [Fact]
    public async Task TrySetAsync_New_ThenGet_RoundTripsEveryField()
    {
        var store = await CreateStoreAsync();
        var status = new PrimaryStatus("Example.Test", PrimaryState.Down, SpoolRecords.T0.AddTicks(7), SpoolRecords.T0.AddMinutes(1), "connection refused", "mx1.example.test:25");

        Assert.True(await store.TrySetAsync(status, null, None));

        var read = await store.GetAsync("example.test", None);
        Assert.Equal(status, read!.Status);
        Assert.False(string.IsNullOrEmpty(read.Version));
    }

    [Fact]
    public async Task TrySetAsync_CurrentVersion_ReplacesAndClearsNullFields()
    {
        var store = await CreateStoreAsync();
        Assert.True(await store.TrySetAsync(Down(), null, None));
        var before = await store.GetAsync("example.test", None);

        // Another spelling of the domain names the same entry.
        var up = Up("EXAMPLE.test");
        Assert.True(await store.TrySetAsync(up, before!.Version, None));

        var after = await store.GetAsync("example.test", None);
        Assert.Equal(up, after!.Status);
        Assert.NotEqual(before.Version, after.Version);
        Assert.Single(await store.ListAsync(None));
    }

    [Fact]
    public async Task TrySetAsync_NewButAlreadyStored_ReturnsFalseAndKeepsStored()
    {
        var store = await CreateStoreAsync();
        Assert.True(await store.TrySetAsync(Down(), null, None));

        Assert.False(await store.TrySetAsync(Up(), null, None));

        Assert.Equal(Down(), (await store.GetAsync("example.test", None))!.Status);
    }

    [Fact]
    public async Task TrySetAsync_StaleVersion_ReturnsFalseAndKeepsStored()
    {
        var store = await CreateStoreAsync();
        Assert.True(await store.TrySetAsync(Down(), null, None));
        var stale = (await store.GetAsync("example.test", None))!.Version;
        Assert.True(await store.TrySetAsync(Up(), stale, None));
        var current = await store.GetAsync("example.test", None);

        Assert.False(await store.TrySetAsync(Down(error: "too late"), stale, None));

        Assert.Equal(current, await store.GetAsync("example.test", None));
        Assert.Equal(Up(), current!.Status);
    }

    [Fact]
    public async Task TrySetAsync_VersionButNothingStored_ReturnsFalse()
    {
        var store = await CreateStoreAsync();
        Assert.True(await store.TrySetAsync(Up("a.test"), null, None));
        var otherDomainsVersion = (await store.GetAsync("a.test", None))!.Version;

        Assert.False(await store.TrySetAsync(Up("b.test"), otherDomainsVersion, None));

        Assert.Null(await store.GetAsync("b.test", None));
    }

    [Fact]
    public async Task TrySetAsync_ConcurrentWritersFromTheSameRead_ExactlyOneWins()
    {
        var store = await CreateStoreAsync();
        Assert.True(await store.TrySetAsync(Down(), null, None));
        var read = await store.GetAsync("example.test", None);
        var candidates = Enumerable.Range(0, 8).Select(i => Up(host: "mx" + i)).ToList();

        var results = await Task.WhenAll(candidates.Select(c => store.TrySetAsync(c, read!.Version, None)));

        Assert.Equal(1, results.Count(r => r));
        Assert.Equal(candidates[Array.IndexOf(results, true)], (await store.GetAsync("example.test", None))!.Status);
    }

    [Fact]
    public async Task TrySetAsync_ConcurrentFirstWrites_ExactlyOneWins()
    {
        var store = await CreateStoreAsync();
        var candidates = Enumerable.Range(0, 8).Select(i => Up(host: "mx" + i)).ToList();

        var results = await Task.WhenAll(candidates.Select(c => store.TrySetAsync(c, null, None)));

        Assert.Equal(1, results.Count(r => r));
        Assert.Equal(candidates[Array.IndexOf(results, true)], (await store.GetAsync("example.test", None))!.Status);
    }

    [Fact]
    public async Task ListAsync_ReturnsEveryDomain()
    {
        var store = await CreateStoreAsync();
        Assert.True(await store.TrySetAsync(new PrimaryStatus("a.test", PrimaryState.Up, null, null, null, null), null, None));
        Assert.True(await store.TrySetAsync(new PrimaryStatus("b.test", PrimaryState.Unknown, null, SpoolRecords.T0, null, null), null, None));

        var all = await store.ListAsync(None);

        Assert.Equal(["a.test", "b.test"], all.Select(s => s.Domain).Order());
        Assert.Equal(new PrimaryStatus("b.test", PrimaryState.Unknown, null, SpoolRecords.T0, null, null), all.Single(s => s.Domain == "b.test"));
    }
}
