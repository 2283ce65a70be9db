// BackupMx embedded mode: the SMTP receiver, the forwarder, the primary monitor and
// the expiry sweep in one process, over a filesystem + SQLite spool.
//
//   dotnet run --project src/BackupMx.Server                 run the relay
//   dotnet run --project src/BackupMx.Server -- queue        show what is queued and why
//   dotnet run --project src/BackupMx.Server -- flush DOMAIN make a domain's mail due now
//   dotnet run --project src/BackupMx.Server -- check-dns    check DNS, MTA-STS and DANE (docs/check-dns.md)
using BackupMx.Server;
using Microsoft.Extensions.Hosting;

return await EmbeddedHost.RunAsync(args);
