using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace BackupMx.Core.Hosting;

/// <summary>What every BackupMx host that is run by <see cref="HostRunner"/> sets up the same way.</summary>
public static class HostDefaults
{
    /// <summary>
    /// One-line console logs with UTC timestamps; the generic host's own category only at Critical
    /// (see <see cref="HostRunner.HostLogCategory"/>); and a service provider that checks at build
    /// time, in every environment, that each registered service can be constructed, so a host
    /// that lacks an adapter fails at start and not at its first message.
    /// </summary>
    public static TBuilder UseBackupMxDefaults<TBuilder>(this TBuilder builder)
        where TBuilder : IHostApplicationBuilder
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.ConfigureContainer(new DefaultServiceProviderFactory(new ServiceProviderOptions
        {
            ValidateScopes = true,
            ValidateOnBuild = true,
        }));
        builder.Logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";
            o.UseUtcTimestamp = true;
        });
        builder.Logging.AddFilter(HostRunner.HostLogCategory, LogLevel.Critical);
        return builder;
    }
}
