using System.Diagnostics;
using System.Globalization;
using System.Reflection;

namespace BackupMx.Receiver.CrashHelper;

/// <summary>Where this process dies: right after the <see cref="Count"/>-th completed call at <see cref="Point"/>.</summary>
public sealed class CrashPoint
{
    private int _left;

    private CrashPoint(string point, int count)
    {
        Point = point;
        Count = count;
        _left = count;
    }

    public string Point { get; }

    public int Count { get; }

    /// <summary>Parses "point:n"; null or empty means no crash point.</summary>
    public static CrashPoint? FromEnvironment(string? value)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return null;
        }

        var parts = value.Split(':');
        if (parts.Length != 2 || parts[0] is not ("blob" or "record" or "wakeup")
            || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var count) || count < 1)
        {
            throw new InvalidOperationException($"BACKUPMX_CRASH_AT must be blob|record|wakeup:<n>, not '{value}'");
        }

        return new CrashPoint(parts[0], count);
    }

    /// <summary>Called after a call at <paramref name="point"/> completed successfully.</summary>
    public void Passed(string point)
    {
        if (point == Point && Interlocked.Decrement(ref _left) == 0)
        {
            // SIGKILL to ourselves: no finally block, no flush, no reply goes out.
            Console.Error.WriteLine($"crash point {Point}:{Count} reached, killing pid {Environment.ProcessId}");
            Process.GetCurrentProcess().Kill();
            Thread.Sleep(Timeout.Infinite);
        }
    }
}

/// <summary>Forwards every call to the real port and reports a completed <c>method</c> call to the crash point.</summary>
public class CrashingProxy<T> : DispatchProxy
    where T : class
{
    private T _inner = null!;
    private CrashPoint? _crash;
    private string _point = "";
    private string _method = "";

    public static T Wrap(T inner, CrashPoint? crash, string point, string method)
    {
        var proxy = Create<T, CrashingProxy<T>>();
        var self = (CrashingProxy<T>)(object)proxy;
        self._inner = inner;
        self._crash = crash;
        self._point = point;
        self._method = method;
        return proxy;
    }

    protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
    {
        ArgumentNullException.ThrowIfNull(targetMethod);
        object? result;
        try
        {
            result = targetMethod.Invoke(_inner, args);
        }
        catch (TargetInvocationException ex) when (ex.InnerException is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(ex.InnerException).Throw();
            throw;
        }

        if (_crash is not { } crash || targetMethod.Name != _method || result is not Task task)
        {
            return result;
        }

        // The caller gets a task that completes only after the crash point has been passed, so the
        // process dies before the caller can act on the completed call.
        void Passed() => crash.Passed(_point);
        var type = targetMethod.ReturnType;
        return type.IsGenericType
            ? typeof(CrashingProxy<T>).GetMethod(nameof(AfterValueAsync), BindingFlags.NonPublic | BindingFlags.Static)!
                .MakeGenericMethod(type.GetGenericArguments()[0])
                .Invoke(null, [task, (Action)Passed])
            : AfterAsync(task, Passed);
    }

    private static async Task AfterAsync(Task task, Action passed)
    {
        await task.ConfigureAwait(false);
        passed();
    }

    private static async Task<TResult> AfterValueAsync<TResult>(Task<TResult> task, Action passed)
    {
        var value = await task.ConfigureAwait(false);
        passed();
        return value;
    }
}
