using System.Net;
using System.Text;
using BackupMx.Functions.Tests.Fakes;

namespace BackupMx.Functions.Tests;

/// <summary>
/// With BackupMx:Functions:AdminRole set, every admin function answers 401 without App Service's
/// client principal and 403 when its roles claim lacks the role, before it reads or changes anything.
/// </summary>
public sealed class AdminRoleTests
{
    private static readonly CancellationToken None = CancellationToken.None;

    [Fact]
    public async Task AdminRole_Set_RefusesWithoutPrincipalAndWithoutTheRole_AndServesTheRole()
    {
        using var h = new FunctionsHarness(new FunctionsOptions { AdminRole = "BackupMx.Operator" });
        var id = await h.AcceptAsync();

        var anonymous = await h.Admin.Flush(new FakeHttpRequestData("POST", "/api/queue/example.test/flush"), "example.test", None);
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);

        var reader = Request("POST", $"/api/messages/{id}/hold", Principal(("roles", "BackupMx.Reader"), ("name", "eve")));
        Assert.Equal(HttpStatusCode.Forbidden, (await h.Messages.Hold(reader, id, None)).StatusCode);
        Assert.Null((await h.AllRecordsAsync()).Single().HeldAt);

        var forged = Request("DELETE", $"/api/messages/{id}", "not base64 at all");
        Assert.Equal(HttpStatusCode.Unauthorized, (await h.Messages.Delete(forged, id, None)).StatusCode);

        var operatorRequest = Request("POST", $"/api/messages/{id}/hold", Principal(("roles", "BackupMx.Reader"), ("roles", "BackupMx.Operator")));
        Assert.Equal(HttpStatusCode.OK, (await h.Messages.Hold(operatorRequest, id, None)).StatusCode);
        Assert.NotNull((await h.AllRecordsAsync()).Single().HeldAt);

        Assert.Equal(HttpStatusCode.Forbidden, (await h.Admin.Summary(Request("GET", "/api/queue", Principal(("groups", "x"))), None)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await h.Admin.Summary(Request("GET", "/api/queue", Principal(("http://schemas.microsoft.com/ws/2008/06/identity/claims/role", "BackupMx.Operator"))), None)).StatusCode);
    }

    [Fact]
    public async Task AdminRole_NotSet_FunctionKeysAloneAsBefore()
    {
        using var h = new FunctionsHarness();

        var response = await h.Admin.Summary(new FakeHttpRequestData("GET", "/api/queue"), None);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    private static FakeHttpRequestData Request(string method, string path, string principal)
    {
        var request = new FakeHttpRequestData(method, path);
        request.Headers.Add(AdminRole.PrincipalHeader, principal);
        return request;
    }

    // The shape App Service authentication sends: auth_typ, claims [{typ, val}], name_typ, role_typ.
    private static string Principal(params (string Type, string Value)[] claims)
    {
        var json = new StringBuilder("{\"auth_typ\":\"aad\",\"claims\":[");
        json.AppendJoin(',', claims.Select(c => $"{{\"typ\":\"{c.Type}\",\"val\":\"{c.Value}\"}}"));
        json.Append("],\"name_typ\":\"name\",\"role_typ\":\"http://schemas.microsoft.com/ws/2008/06/identity/claims/role\"}");
        return Convert.ToBase64String(Encoding.UTF8.GetBytes(json.ToString()));
    }
}
