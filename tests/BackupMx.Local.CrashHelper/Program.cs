// Writes messages to the spool in args[0] and prints each queue id once its body and record
// are committed ("committed <id>"), as intake would before answering 250. With "lease" it
// also claims each record the way the forwarder does. It never exits on its own: the test
// kills it with SIGKILL at an arbitrary point and then checks what survived. With "inline"
// each body goes into the database with its record (intake's path for small mail), and is
// made of its queue id repeated, so the test can check every byte. With "lock" it only takes
// the spool lock, as a running relay does, and waits to be killed.
using BackupMx.Core.Model;
using BackupMx.Local;

var path = args[0];
if (args.Length > 1 && args[1] == "lock")
{
    // Stands for a running relay: holds the spool lock until killed.
    using var held = SpoolLock.Acquire(path);
    Console.Out.WriteLine("locked");
    Console.Out.Flush();
    await Task.Delay(Timeout.Infinite);
}

var lease = args.Length > 1 && args[1] == "lease";
var inline = args.Length > 1 && args[1] == "inline";
var bodies = new FileBodyStore(path);
var spool = new SqliteSpoolStore(path);
spool.Open();
bodies.Open();
var now = DateTimeOffset.UtcNow;
var body = new byte[8192];
Random.Shared.NextBytes(body);

for (var i = 0; ; i++)
{
    var id = QueueId.New(now);
    long length;
    if (inline)
    {
        body = InlineBody(id);
        length = body.Length;
    }
    else
    {
        length = await bodies.WriteAsync(id, new MemoryStream(body), CancellationToken.None);
    }

    var record = new SpoolRecord
    {
        QueueId = id,
        Domain = "example.test",
        Sender = "alice@sender.test",
        Recipients = [new RecipientState { Address = "bob@example.test" }],
        ReceivedAt = now,
        ExpiresAt = now.AddDays(5),
        NextAttemptAt = now,
        BodyLength = length,
    };
    if (inline)
    {
        record = await spool.CreateWithBodyAsync(record, body, CancellationToken.None);
    }
    else
    {
        record = await spool.CreateAsync(record, CancellationToken.None);
    }

    if (lease)
    {
        if (await spool.TryUpdateAsync(record with { LeaseOwner = "crash-helper", LeaseExpiresAt = now.AddMinutes(15) }, CancellationToken.None) is null)
        {
            throw new InvalidOperationException("claim failed");
        }
    }

    Console.Out.WriteLine($"committed {id}");
    Console.Out.Flush();
}

// Kept in step with CrashTests.InlineBody.
static byte[] InlineBody(string id) => System.Text.Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat(id + "\r\n", 400)));
