using BackupMx.Testing.Azurite;

namespace BackupMx.Azure.Tests;

public sealed class AzuriteFixtureTests
{
    [Fact]
    public async Task InitializeAsync_AzuriteExitsAtStart_FailsWithItsOutput()
    {
        // A stand-in "Azurite" that dies at once, as the real one does on a bad flag or a port in use.
        var directory = Directory.CreateTempSubdirectory("backupmx-fake-azurite-").FullName;
        try
        {
            var entryPoint = Path.Combine(directory, "node_modules", "azurite", "dist", "src");
            Directory.CreateDirectory(entryPoint);
            await File.WriteAllTextAsync(Path.Combine(directory, "package.json"), "{}");
            await File.WriteAllTextAsync(Path.Combine(entryPoint, "azurite.js"), "console.error('cannot start: simulated'); process.exit(3);");
            var fixture = AzuriteFixture.ForDirectory(directory);

            var ex = await Assert.ThrowsAsync<InvalidOperationException>(fixture.InitializeAsync);
            await fixture.DisposeAsync();

            Assert.Contains("exited with code 3", ex.Message, StringComparison.Ordinal);
            Assert.Contains("cannot start: simulated", ex.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public void UniqueName_IsAValidTableAndContainerName()
    {
        var a = AzuriteFixture.UniqueName("Spool-Table_");
        var b = AzuriteFixture.UniqueName("Spool-Table_");

        Assert.NotEqual(a, b);
        Assert.Matches("^[a-z][a-z0-9]{2,62}$", a);
        Assert.Matches("^[a-z][a-z0-9]{2,62}$", AzuriteFixture.UniqueName("9"));
    }
}
