using System.Net;
using System.Security.Claims;
using System.Text.Json;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Azure.Functions.Worker.Http;

namespace BackupMx.Functions.Tests.Fakes;

/// <summary>Just enough of a FunctionContext for HTTP functions called directly.</summary>
public sealed class FakeFunctionContext : FunctionContext
{
    public override string InvocationId { get; } = Guid.NewGuid().ToString();

    public override string FunctionId { get; } = "test";

    public override TraceContext TraceContext => null!;

    public override BindingContext BindingContext => null!;

    public override RetryContext RetryContext => null!;

    public override IServiceProvider InstanceServices { get; set; } = new EmptyServices();

    public override FunctionDefinition FunctionDefinition => null!;

    public override IDictionary<object, object> Items { get; set; } = new Dictionary<object, object>();

    public override IInvocationFeatures Features => null!;

    private sealed class EmptyServices : IServiceProvider
    {
        public object? GetService(Type serviceType) => null;
    }
}

public sealed class FakeHttpRequestData(string method, string path) : HttpRequestData(new FakeFunctionContext())
{
    public override Stream Body { get; } = new MemoryStream();

    public override HttpHeadersCollection Headers { get; } = [];

    public override IReadOnlyCollection<IHttpCookie> Cookies => CookieList;

    public List<IHttpCookie> CookieList { get; } = [];

    public override Uri Url { get; } = new("https://backupmx.test" + path);

    public override IEnumerable<ClaimsIdentity> Identities { get; } = [];

    public override string Method { get; } = method;

    public override HttpResponseData CreateResponse() => new FakeHttpResponseData(FunctionContext);
}

public sealed class FakeHttpResponseData(FunctionContext context) : HttpResponseData(context)
{
    public override HttpStatusCode StatusCode { get; set; }

    public override HttpHeadersCollection Headers { get; set; } = [];

    public override Stream Body { get; set; } = new MemoryStream();

    public override HttpCookies Cookies => FakeCookieJar;

    /// <summary>The cookies the function set.</summary>
    public IReadOnlyList<IHttpCookie> SetCookies => FakeCookieJar.Appended;

    private FakeCookies FakeCookieJar { get; } = new();

    public string ReadText()
    {
        Body.Position = 0;
        return new StreamReader(Body).ReadToEnd();
    }

    public JsonDocument ReadJson()
    {
        Body.Position = 0;
        return JsonDocument.Parse(Body);
    }

    private sealed class FakeCookies : HttpCookies
    {
        public List<IHttpCookie> Appended { get; } = [];

        public override void Append(string name, string value) => Appended.Add(new HttpCookie(name, value));

        public override void Append(IHttpCookie cookie) => Appended.Add(cookie);

        public override IHttpCookie CreateNew() => new HttpCookie(string.Empty, string.Empty);
    }
}
