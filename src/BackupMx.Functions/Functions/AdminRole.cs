using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.Azure.Functions.Worker.Http;
using Microsoft.Extensions.Options;

namespace BackupMx.Functions;

/// <summary>
/// The app role a caller of the admin API must hold (<see cref="FunctionsOptions.AdminRole"/>).
/// App Service authentication (authsettingsV2) can restrict callers to groups, identities and
/// client applications but has no app-role check, so it is made here, on the claims App Service
/// puts in the <c>X-MS-CLIENT-PRINCIPAL</c> header of every authenticated request (external
/// requests cannot set it). Without a configured role, nothing is checked: function keys, and
/// App Service authentication where it is deployed, guard the API.
/// </summary>
public sealed class AdminRole(IOptions<FunctionsOptions> options)
{
    public const string PrincipalHeader = "X-MS-CLIENT-PRINCIPAL";

    // Entra ID writes app roles in the "roles" claim; App Service names the role claim type in role_typ.
    private const string RolesClaim = "roles";
    private const string RoleClaimUri = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role";

    /// <summary>Null when the request may go on; otherwise the answer to give (401 without a principal, 403 without the role).</summary>
    public async Task<HttpResponseData?> DenyAsync(HttpRequestData request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var role = options.Value.AdminRole;
        if (string.IsNullOrWhiteSpace(role))
        {
            return null;
        }

        var roles = Roles(request);
        if (roles is null)
        {
            return await QueueAdminFunctions.JsonAsync(request, HttpStatusCode.Unauthorized, new ErrorResponse("the admin API needs an Entra ID token (App Service authentication)"), cancellationToken).ConfigureAwait(false);
        }

        return roles.Contains(role, StringComparer.Ordinal)
            ? null
            : await QueueAdminFunctions.JsonAsync(request, HttpStatusCode.Forbidden, new ErrorResponse($"the caller does not hold the app role '{role}'"), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The caller's app roles, or null when the request carries no readable client principal.</summary>
    internal static List<string>? Roles(HttpRequestData request)
    {
        if (!request.Headers.TryGetValues(PrincipalHeader, out var values) || values.FirstOrDefault() is not { Length: > 0 } encoded)
        {
            return null;
        }

        try
        {
            using var principal = JsonDocument.Parse(Encoding.UTF8.GetString(Convert.FromBase64String(encoded)));
            var root = principal.RootElement;
            var roleType = root.TryGetProperty("role_typ", out var typ) && typ.ValueKind == JsonValueKind.String ? typ.GetString() : null;
            if (!root.TryGetProperty("claims", out var claims) || claims.ValueKind != JsonValueKind.Array)
            {
                return [];
            }

            return claims.EnumerateArray()
                .Where(c => c.TryGetProperty("typ", out var t) && t.GetString() is { } type
                    && (type == RolesClaim || type == RoleClaimUri || type == roleType))
                .Select(c => c.TryGetProperty("val", out var v) ? v.GetString() : null)
                .OfType<string>()
                .ToList();
        }
        catch (Exception ex) when (ex is FormatException or JsonException or InvalidOperationException)
        {
            return null;
        }
    }
}
