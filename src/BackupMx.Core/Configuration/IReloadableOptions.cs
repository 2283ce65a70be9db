namespace BackupMx.Core.Configuration;

/// <summary>One part of the configuration that <see cref="ConfigurationReload"/> replaces with the others, all or none.</summary>
public interface IReloadableOptions
{
    /// <summary>
    /// Binds and validates the next value from the configuration as it is now and keeps it aside.
    /// Throws <see cref="Microsoft.Extensions.Options.OptionsValidationException"/> (or a binding
    /// error) when it is not valid; the value in use stays.
    /// </summary>
    void Prepare();

    /// <summary>Puts the prepared value in use.</summary>
    void Commit();

    /// <summary>Drops the prepared value, if any.</summary>
    void Discard();
}
