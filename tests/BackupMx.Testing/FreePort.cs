using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace BackupMx.Testing;

/// <summary>Free loopback TCP ports for servers under test.</summary>
/// <remarks>
/// A port found by binding port 0 comes from the kernel's ephemeral range, the same range every
/// outgoing connection and every other "port 0" listener on the machine draws from. Between
/// letting go of such a port and the server binding it (or while a fake primary is stopped and
/// waits to come back on it), any of those can take it, and the test fails on "address in use"
/// or, worse, talks to the wrong server. Ports are therefore picked at random from outside the
/// ephemeral range, where only explicit binds land, checked free, and never handed out twice by
/// one test process.
/// </remarks>
public static class FreePort
{
    private const int LowestPort = 10_000;
    private static readonly (int First, int Last)[] Ranges = OutsideEphemeralRange();
    private static readonly HashSet<int> Given = [];

    /// <summary>A loopback port that was free a moment ago and that no other caller in this process got.</summary>
    public static int Next()
    {
        lock (Given)
        {
            var size = Ranges.Sum(r => r.Last - r.First + 1);
            for (var attempt = 0; attempt < 1000 && size > 0; attempt++)
            {
                var port = Pick(Random.Shared.Next(size));
                if (!Given.Contains(port) && IsFree(port))
                {
                    Given.Add(port);
                    return port;
                }
            }

            // No range outside the ephemeral one (an unusual sysctl): fall back to the kernel's choice.
            while (true)
            {
                var port = KernelChoice();
                if (Given.Add(port))
                {
                    return port;
                }
            }
        }
    }

    private static int Pick(int index)
    {
        foreach (var (first, last) in Ranges)
        {
            var length = last - first + 1;
            if (index < length)
            {
                return first + index;
            }

            index -= length;
        }

        throw new ArgumentOutOfRangeException(nameof(index));
    }

    private static bool IsFree(int port)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.Bind(new IPEndPoint(IPAddress.Loopback, port));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private static int KernelChoice()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        try
        {
            return ((IPEndPoint)listener.LocalEndpoint).Port;
        }
        finally
        {
            listener.Stop();
        }
    }

    private static (int First, int Last)[] OutsideEphemeralRange()
    {
        // Linux publishes its range; elsewhere assume the IANA dynamic range (49152-65535).
        int low = 49152, high = 65535;
        try
        {
            var parts = File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range")
                .Split((char[])[' ', '\t', '\n'], StringSplitOptions.RemoveEmptyEntries);
            low = int.Parse(parts[0], CultureInfo.InvariantCulture);
            high = int.Parse(parts[1], CultureInfo.InvariantCulture);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
        }

        var ranges = new List<(int, int)>();
        if (low - 1 >= LowestPort)
        {
            ranges.Add((LowestPort, low - 1));
        }

        if (high + 1 <= 65535)
        {
            ranges.Add((Math.Max(high + 1, LowestPort), 65535));
        }

        return [.. ranges];
    }
}
