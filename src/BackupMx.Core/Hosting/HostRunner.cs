using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace BackupMx.Core.Hosting;

/// <summary>
/// Runs a host so that a start-up failure the operator can fix (a bad setting, a port in use,
/// an unusable certificate) ends the process with exit code 2 and the reason on standard error,
/// one line per problem, instead of an unhandled exception and a stack trace.
/// </summary>
public static class HostRunner
{
    public const int StartupFailedExitCode = 2;

    /// <summary>
    /// A background loop (receiving, forwarding, probing, sweeping) failed and stopped the host
    /// (EX_SOFTWARE). Not 0, so a supervisor that restarts on failure (systemd's
    /// Restart=on-failure, a container platform) brings the relay back.
    /// </summary>
    public const int ServiceFailedExitCode = 70;

    /// <summary>
    /// The generic host's own log category. A host run here logs it at Critical only: its Error
    /// events are a failed start, which <see cref="RunAsync(IHost, string, TextWriter)"/> reports
    /// in one line (or, when unexpected, the runtime prints with its stack), and a faulted
    /// BackgroundService, which with the default StopHost behaviour is logged again at Critical.
    /// </summary>
    public const string HostLogCategory = "Microsoft.Extensions.Hosting.Internal.Host";

    public static Task<int> RunAsync(IHost host, string product, TextWriter error)
    {
        ArgumentNullException.ThrowIfNull(host);
        return RunAsync(
            async () =>
            {
                // Before StartAsync, so that a bad setting is reported here alone and not also logged as a failed start.
                (host.Services.GetService(typeof(IStartupValidator)) as IStartupValidator)?.Validate();
                try
                {
                    await host.StartAsync().ConfigureAwait(false);
                }
                catch
                {
                    // Stops the services that did start, so their loops end as a stop rather than as failures.
                    await host.StopAsync().ConfigureAwait(false);
                    throw;
                }

                await host.WaitForShutdownAsync().ConfigureAwait(false);
                return await FaultedServicesAsync(host, product, error).ConfigureAwait(false) ? ServiceFailedExitCode : 0;
            },
            product,
            error);
    }

    /// <summary>
    /// The generic host stops when a BackgroundService throws (the default StopHost behaviour) but
    /// then ends as if asked to stop; the services' own tasks tell the difference.
    /// </summary>
    private static async Task<bool> FaultedServicesAsync(IHost host, string product, TextWriter error)
    {
        var faulted = false;
        foreach (var service in host.Services.GetServices<IHostedService>().OfType<BackgroundService>())
        {
            if (service.ExecuteTask is { IsFaulted: true } task)
            {
                faulted = true;
                await error.WriteLineAsync($"{product} stopped: {service.GetType().Name} failed: {task.Exception!.GetBaseException().Message}").ConfigureAwait(false);
            }
        }

        return faulted;
    }

    /// <summary>Runs <paramref name="run"/> (a host, or a one-off command over the same configuration), reporting start-up failures as above.</summary>
    public static async Task<int> RunAsync(Func<Task<int>> run, string product, TextWriter error)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(error);
        try
        {
            return await run().ConfigureAwait(false);
        }
        catch (Exception ex) when (Failures(ex) is { } failures)
        {
            await error.WriteLineAsync($"{product} cannot start: the configuration is invalid.").ConfigureAwait(false);
            foreach (var failure in failures)
            {
                await error.WriteLineAsync("  " + failure).ConfigureAwait(false);
            }

            return StartupFailedExitCode;
        }
        catch (StartupException ex)
        {
            await error.WriteLineAsync($"{product} cannot start: {ex.Message}").ConfigureAwait(false);
            return StartupFailedExitCode;
        }
    }

    // Several options classes failing at once arrive as an AggregateException, and one whose
    // validation reads another's options repeats that one's failures.
    private static List<string>? Failures(Exception ex) => ex switch
    {
        OptionsValidationException one => [.. one.Failures.Distinct()],
        AggregateException all when all.InnerExceptions.All(e => e is OptionsValidationException) =>
            [.. all.InnerExceptions.SelectMany(e => ((OptionsValidationException)e).Failures).Distinct()],
        _ => null,
    };
}
