namespace BackupMx.Core.Hosting;

/// <summary>
/// Something a host needs at start-up is unusable: an endpoint that cannot be listened on, a
/// certificate that cannot be loaded. The message names the setting and the reason, and is
/// meant to be shown to the operator as it is.
/// </summary>
public sealed class StartupException : Exception
{
    public StartupException()
    {
    }

    public StartupException(string message)
        : base(message)
    {
    }

    public StartupException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
