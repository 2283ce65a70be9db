// The Azure-mode receiver (ReceiverHost, unchanged) as a child process that a test kills with
// SIGKILL. Two things differ from the container:
//
// - Wake-ups go to an Azurite table named by BACKUPMX_CRASH_WAKEUPS_TABLE instead of Service Bus
//   (there is no Service Bus emulator). Like a scheduled message, a row is durable once the call
//   returns, so the test can read the wake-ups of a killed process afterwards.
// - BACKUPMX_CRASH_AT=<point>:<n> makes the process SIGKILL itself right after the n-th call at
//   that point completes: "blob" (body uploaded, no record yet), "record" (record inserted, no
//   wake-up yet) or "wakeup" (wake-up scheduled, the 250 not yet sent). Without it the test kills
//   the process at random moments from outside.
using BackupMx.Core.Ports;
using BackupMx.Core.Hosting;
using BackupMx.Receiver;
using BackupMx.Receiver.CrashHelper;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;

var crash = CrashPoint.FromEnvironment(Environment.GetEnvironmentVariable("BACKUPMX_CRASH_AT"));
var table = Environment.GetEnvironmentVariable("BACKUPMX_CRASH_WAKEUPS_TABLE")
    ?? throw new InvalidOperationException("BACKUPMX_CRASH_WAKEUPS_TABLE is not set");

var builder = ReceiverHost.CreateBuilder(args);
var storage = builder.Configuration["BackupMx:Azure:StorageConnectionString"]
    ?? throw new InvalidOperationException("BackupMx:Azure:StorageConnectionString is not set");
var wakeUps = await TableWakeUpQueue.CreateAsync(storage, table);

var services = builder.Services;
services.Replace(ServiceDescriptor.Singleton<IWakeUpQueue>(CrashingProxy<IWakeUpQueue>.Wrap(wakeUps, crash, "wakeup", nameof(IWakeUpQueue.ScheduleAsync))));
Decorate<IBodyStore>(services, inner => CrashingProxy<IBodyStore>.Wrap(inner, crash, "blob", nameof(IBodyStore.WriteAsync)));
Decorate<ISpoolStore>(services, inner => CrashingProxy<ISpoolStore>.Wrap(inner, crash, "record", nameof(ISpoolStore.CreateAsync)));

using var host = builder.Build();
return await HostRunner.RunAsync(host, "BackupMx receiver (crash helper)", Console.Error);

static void Decorate<T>(IServiceCollection services, Func<T, T> wrap)
    where T : class
{
    var original = services.Last(d => d.ServiceType == typeof(T));
    var factory = original.ImplementationFactory ?? throw new InvalidOperationException(typeof(T).Name + " is not registered by a factory");
    services.Replace(ServiceDescriptor.Singleton<T>(sp => wrap((T)factory(sp))));
}
