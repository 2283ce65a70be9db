using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace BackupMx.Smtp.Tests;

/// <summary>Keeps every log line, formatted, with its level.</summary>
internal sealed class CollectingLoggerProvider : ILoggerProvider
{
    public ConcurrentQueue<(LogLevel Level, string Message)> Entries { get; } = new();

    /// <summary>The exceptions logged with any line (a stack trace in a real log).</summary>
    public ConcurrentQueue<Exception> Exceptions { get; } = new();

    public ILogger CreateLogger(string categoryName) => new Collector(Entries, Exceptions);

    public void Dispose()
    {
    }

    private sealed class Collector(ConcurrentQueue<(LogLevel Level, string Message)> entries, ConcurrentQueue<Exception> exceptions) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            entries.Enqueue((logLevel, formatter(state, exception)));
            if (exception is not null)
            {
                exceptions.Enqueue(exception);
            }
        }
    }
}
