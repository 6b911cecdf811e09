namespace Kong.PluginServer.Testing;

/// <summary>
/// The in-memory request (and, for the <c>response</c> and <c>log</c> phases, the response) a simulated Kong
/// serves the plugin's PDK calls from. Every property has a sensible default; set only what the test needs.
/// </summary>
public sealed class SimRequest
{
    /// <summary>HTTP method (<c>kong.request.get_method</c>).</summary>
    public string Method { get; set; } = "GET";
    /// <summary>Scheme (<c>kong.request.get_scheme</c>).</summary>
    public string Scheme { get; set; } = "http";
    /// <summary>Host (<c>kong.request.get_host</c>).</summary>
    public string Host { get; set; } = "localhost";
    /// <summary>Port (<c>kong.request.get_port</c>).</summary>
    public int Port { get; set; } = 8000;
    /// <summary>Normalized path without the query (<c>kong.request.get_path</c>).</summary>
    public string Path { get; set; } = "/";
    /// <summary>Raw query without '?' (<c>kong.request.get_raw_query</c>, parsed for get_query/get_query_arg).</summary>
    public string RawQuery { get; set; } = "";
    /// <summary>Client request headers (multi-valued, case-insensitive).</summary>
    public HeaderCollection Headers { get; set; } = new();
    /// <summary><c>kong.client.get_ip</c>.</summary>
    public string ClientIp { get; set; } = "127.0.0.1";
    /// <summary><c>kong.client.get_port</c>.</summary>
    public int ClientPort { get; set; } = 54321;
    /// <summary><c>kong.client.get_forwarded_ip</c> (defaults to <see cref="ClientIp"/>).</summary>
    public string? ForwardedIp { get; set; }
    /// <summary><c>kong.client.get_forwarded_port</c> (defaults to <see cref="ClientPort"/>).</summary>
    public int? ForwardedPort { get; set; }
    /// <summary><c>kong.request.get_forwarded_scheme</c> (defaults to <see cref="Scheme"/>).</summary>
    public string? ForwardedScheme { get; set; }
    /// <summary><c>kong.request.get_forwarded_host</c> (defaults to <see cref="Host"/>).</summary>
    public string? ForwardedHost { get; set; }
    /// <summary><c>kong.request.get_forwarded_port</c> (defaults to <see cref="Port"/>).</summary>
    public int? ForwardedRequestPort { get; set; }
    /// <summary><c>kong.request.get_http_version</c>.</summary>
    public double HttpVersion { get; set; } = 1.1;
    /// <summary>Raw request body (<c>kong.request.get_raw_body</c>); null means an empty body.</summary>
    public byte[]? Body { get; set; }
    /// <summary>When set, the body "did not fit in memory": get_raw_body returns this temp-file path (ProtoBuf <c>body_filepath</c>).</summary>
    public string? BodyFilePath { get; set; }
    /// <summary>Unnamed regex captures of the route path (<c>kong.request.get_uri_captures</c>).</summary>
    public List<string> UriCaptures { get; set; } = new();
    /// <summary>Named regex captures of the route path.</summary>
    public Dictionary<string, string> NamedUriCaptures { get; set; } = new();
    /// <summary><c>kong.router.get_route</c> (null: no route, an empty reply).</summary>
    public SimRoute? Route { get; set; }
    /// <summary><c>kong.router.get_service</c> (null: no service).</summary>
    public SimService? Service { get; set; }
    /// <summary>Extra consumers for <c>kong.client.load_consumer</c>, searched before <see cref="KongSimulator.Consumers"/>.</summary>
    public List<SimConsumer> Consumers { get; set; } = new();
    /// <summary>Consumer already authenticated (by an earlier plugin or phase).</summary>
    public SimConsumer? AuthenticatedConsumer { get; set; }
    /// <summary>Credential already authenticated.</summary>
    public SimCredential? AuthenticatedCredential { get; set; }
    /// <summary>Initial <c>kong.ctx.shared</c> (values: null, bool, double, string, List&lt;object?&gt;, Dictionary&lt;string, object?&gt;).</summary>
    public Dictionary<string, object?> CtxShared { get; set; } = new();
    /// <summary>Initial <c>ngx.ctx</c> (<c>kong.nginx.get_ctx</c>/<c>set_ctx</c>).</summary>
    public Dictionary<string, object?> NgxCtx { get; set; } = new();
    /// <summary><c>ngx.var</c> (<c>kong.nginx.get_var</c>).</summary>
    public Dictionary<string, string> NginxVars { get; set; } = new();
    /// <summary><c>kong.nginx.get_tls1_version_str</c> (null when not TLS).</summary>
    public string? TlsVersion { get; set; }
    /// <summary><c>kong.nginx.req_start_time</c> (epoch seconds).</summary>
    public double StartTime { get; set; } = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0;
    /// <summary>Overrides <see cref="KongSimulator.NodeId"/> for <c>kong.node.get_id</c>.</summary>
    public string? NodeId { get; set; }
    /// <summary>The upstream's (or the response's) status for the response/log phases; null means 200.</summary>
    public int? ResponseStatus { get; set; }
    /// <summary>The upstream's response headers (<c>kong.service.response.get_headers</c>, and the base of <c>kong.response.get_headers</c>).</summary>
    public HeaderCollection ResponseHeaders { get; set; } = new();
    /// <summary>The upstream's response body (<c>kong.service.response.get_raw_body</c>).</summary>
    public byte[]? ResponseBody { get; set; }
    /// <summary><c>kong.response.get_source</c>: service, exit or error.</summary>
    public string ResponseSource { get; set; } = "service";
    /// <summary>The JSON <c>kong.log.serialize</c> returns in the log phase; null builds a basic one from this request.</summary>
    public string? SerializeJson { get; set; }
    /// <summary>Serialize values set in earlier phases (merged into the default serialize JSON).</summary>
    public Dictionary<string, object?> SerializeValues { get; set; } = new();

    /// <summary>
    /// A copy of this request for a later phase of the same request, carrying what <paramref name="previous"/>
    /// changed: ctx.shared, ngx.ctx, the authenticated consumer/credential, serialize values, and, when the
    /// plugin exited, the response status, headers and source.
    /// </summary>
    public SimRequest NextPhase(SimResult previous)
    {
        var r = (SimRequest)MemberwiseClone();
        r.Headers = Headers.Clone();
        r.ResponseHeaders = previous.ResponseHeaders.Clone();
        r.CtxShared = new Dictionary<string, object?>(previous.CtxShared);
        r.NgxCtx = new Dictionary<string, object?>(previous.NgxCtx);
        r.SerializeValues = new Dictionary<string, object?>(previous.SerializeValues);
        r.AuthenticatedConsumer = previous.Consumer ?? AuthenticatedConsumer;
        r.AuthenticatedCredential = previous.Credential ?? AuthenticatedCredential;
        if (previous.Exit is { } exit)
        {
            r.ResponseStatus = exit.Status;
            foreach (var name in exit.Headers.Names) r.ResponseHeaders.Set(name, exit.Headers.GetValues(name));
            r.ResponseSource = "exit";
        }
        else if (previous.Outcome == SimOutcome.Failed)
        {
            r.ResponseStatus = 500;
            r.ResponseSource = "error";
        }
        else if (previous.ResponseStatusSet is int s)
        {
            r.ResponseStatus = s;
        }
        return r;
    }
}
