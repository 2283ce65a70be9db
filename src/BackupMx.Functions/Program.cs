// BackupMx in Azure mode, the function app: Forward (drains due Service Bus wake-ups),
// ProbePrimaries, Expire and the admin API. The SMTP receiver runs as a container
// (BackupMx.Receiver) and shares the storage and the Service Bus queue with it.
using BackupMx.Functions;
using Microsoft.Extensions.Hosting;

var host = FunctionsHost.CreateBuilder().Build();
await host.RunAsync().ConfigureAwait(false);
