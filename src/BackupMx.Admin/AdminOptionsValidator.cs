using System.Net;
using Microsoft.Extensions.Options;

namespace BackupMx.Admin;

/// <summary>Checks the admin settings at start-up; each failure names its key.</summary>
internal sealed class AdminOptionsValidator : IValidateOptions<AdminOptions>
{
    public ValidateOptionsResult Validate(string? name, AdminOptions options)
    {
        if (!options.Enabled)
        {
            return ValidateOptionsResult.Success;
        }

        var errors = new List<string>();
        var endpoint = options.ParsedEndpoint;
        if (endpoint is null)
        {
            errors.Add($"{AdminOptions.EndpointKey} '{options.Endpoint}' is not an IP address and port such as 127.0.0.1:8025 (empty turns the endpoint off).");
        }
        else if (!IPAddress.IsLoopback(endpoint.Address) && !options.HasToken)
        {
            errors.Add($"{AdminOptions.TokenKey} is required: {AdminOptions.EndpointKey} {options.Endpoint} is not a loopback address, and the endpoint can flush the spool.");
        }

        if (options.HasToken && (options.Token!.Length < AdminOptions.MinimumTokenLength || options.Token.Any(char.IsWhiteSpace)))
        {
            errors.Add($"{AdminOptions.TokenKey} must have at least {AdminOptions.MinimumTokenLength} characters and no white space.");
        }

        if (options.DashboardRefresh < TimeSpan.FromSeconds(1) || options.DashboardRefresh > TimeSpan.FromHours(1))
        {
            errors.Add($"{AdminOptions.SectionName}:DashboardRefresh must be between 00:00:01 and 01:00:00.");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
