namespace BackupMx.Core.Notifications;

/// <summary>
/// Outage notices to the people who own the domains: e-mail to each domain's
/// <c>BackupMx:Domains:N:NotifyAddresses</c> and a JSON POST to <c>Webhook</c>.
/// </summary>
public sealed class NotificationOptions
{
    public const string SectionName = "BackupMx:Notifications";

    /// <summary>URL that every notice is POSTed to as JSON with a <c>text</c> field (chat webhooks show it). Empty: none.</summary>
    public string? Webhook { get; set; }

    /// <summary>How long a primary must have been down, with mail waiting for it, before the first notice. Default 5 minutes.</summary>
    public TimeSpan After { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>How often a reminder goes out while mail still waits. Default one day.</summary>
    public TimeSpan Reminder { get; set; } = TimeSpan.FromDays(1);

    /// <summary>How often the domains are looked at (and failed notices retried). Default 30 seconds.</summary>
    public TimeSpan CheckInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Attempts per notice and channel before it is given up (logged and counted). Default 5.</summary>
    public int MaxAttempts { get; set; } = 5;
}

/// <summary>The notification part of one <c>BackupMx:Domains</c> entry.</summary>
public sealed class NotifiedDomain
{
    public string Name { get; set; } = "";

    public List<string> NotifyAddresses { get; set; } = [];
}
