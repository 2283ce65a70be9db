using System.Text;

namespace BackupMx.Smtp.Connection;

/// <summary>
/// The sessions open now, so that at the end of a graceful stop the ones still open can be cut
/// off with 421 4.3.2, and a session that opens after the cut-off gets it at once.
/// </summary>
internal sealed class SessionRegistry(string hostName)
{
    private readonly Lock _lock = new();
    private readonly HashSet<SessionPipe> _pipes = [];
    private bool _cutOff;

    /// <summary>The reply to every session cut off at shutdown (RFC 5321 §3.8: transient, try again later).</summary>
    public byte[] ShutdownReply => Encoding.ASCII.GetBytes("421 4.3.2 " + hostName + " Service shutting down, try again later\r\n");

    public void Add(SessionPipe pipe)
    {
        lock (_lock)
        {
            _pipes.Add(pipe);
            if (_cutOff)
            {
                pipe.BeginShutdown(ShutdownReply);
            }
        }
    }

    public void Remove(SessionPipe pipe)
    {
        lock (_lock)
        {
            _pipes.Remove(pipe);
        }
    }

    /// <summary>
    /// Makes every session still open answer 421 4.3.2 in place of its next reply (a 25x still goes
    /// out first) and close. Returns how many sessions were open.
    /// </summary>
    public int CutOff()
    {
        var reply = ShutdownReply;
        lock (_lock)
        {
            _cutOff = true;
            foreach (var pipe in _pipes)
            {
                pipe.BeginShutdown(reply);
            }

            return _pipes.Count;
        }
    }
}
