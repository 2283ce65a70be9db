using BackupMx.Testing.Azurite;

namespace BackupMx.Azure.Tests;

/// <summary>One Azurite for the whole assembly; each test uses its own table or container.</summary>
[CollectionDefinition(AzuriteFixture.CollectionName)]
public sealed class AzuriteCollection : ICollectionFixture<AzuriteFixture>;
