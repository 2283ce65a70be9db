// BackupMx in Azure mode, the SMTP receiver container: accepts mail for the configured
// domains and spools it to Blob Storage (bodies), Azure Tables (state) and Service Bus
// (scheduled wake-ups). The function app forwards, probes and expires.
using BackupMx.Receiver;

return await ReceiverHost.RunAsync(args).ConfigureAwait(false);
