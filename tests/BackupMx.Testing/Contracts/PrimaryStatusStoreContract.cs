using BackupMx.Core.Ports;
using Xunit;

namespace BackupMx.Testing.Contracts;

/// <summary>What every <see cref="IPrimaryStatusStore"/> must do: keep the last state per domain, case-insensitively.</summary>
public abstract class PrimaryStatusStoreContract
{
    protected abstract Task<IPrimaryStatusStore> CreateStoreAsync();

    private static readonly CancellationToken None = CancellationToken.None;

    [Fact]
    public async Task GetAsync_Unknown_ReturnsNull()
    {
        var store = await CreateStoreAsync();
        Assert.Null(await store.GetAsync("example.test", None));
        Assert.Empty(await store.ListAsync(None));
    }

    [Fact]
    public async Task SetAsync_ThenGet_RoundTripsEveryField()
    {
        var store = await CreateStoreAsync();
        var status = new PrimaryStatus("Example.Test", PrimaryState.Down, SpoolRecords.T0.AddTicks(7), SpoolRecords.T0.AddMinutes(1), "connection refused", "mx1.example.test:25");

        await store.SetAsync(status, None);

        Assert.Equal(status, await store.GetAsync("example.test", None));
    }

    [Fact]
    public async Task SetAsync_Again_ReplacesAndClearsNullFields()
    {
        var store = await CreateStoreAsync();
        await store.SetAsync(new PrimaryStatus("example.test", PrimaryState.Down, SpoolRecords.T0, SpoolRecords.T0, "refused", null), None);
        var up = new PrimaryStatus("example.test", PrimaryState.Up, SpoolRecords.T0.AddMinutes(5), SpoolRecords.T0.AddMinutes(5), null, "mx1.example.test");

        await store.SetAsync(up, None);

        Assert.Equal(up, await store.GetAsync("example.test", None));
        Assert.Single(await store.ListAsync(None));
    }

    [Fact]
    public async Task ListAsync_ReturnsEveryDomain()
    {
        var store = await CreateStoreAsync();
        await store.SetAsync(new PrimaryStatus("a.test", PrimaryState.Up, null, null, null, null), None);
        await store.SetAsync(new PrimaryStatus("b.test", PrimaryState.Unknown, null, SpoolRecords.T0, null, null), None);

        var all = await store.ListAsync(None);

        Assert.Equal(["a.test", "b.test"], all.Select(s => s.Domain).Order());
        Assert.Equal(new PrimaryStatus("b.test", PrimaryState.Unknown, null, SpoolRecords.T0, null, null), all.Single(s => s.Domain == "b.test"));
    }
}
