using System.Text;

namespace Kong.PluginServer.Testing.Internal;

[Flags]
internal enum Ph
{
    None = 0,
    Rewrite = 1,
    Access = 2,
    Response = 4,
    Log = 8,
    All = Rewrite | Access | Response | Log,
    Request = Rewrite | Access | Response,
}

internal delegate object? PdkFunction(PdkContext c, in LuaArgs a);

/// <summary>One Lua PDK function as Kong exposes it to plugin servers.</summary>
/// <param name="Name">Dotted name, e.g. kong.request.get_header.</param>
/// <param name="Allowed">Phases whose phase check passes (rewrite/access/response/log; other phases are not checked).</param>
/// <param name="LiveRequest">Needs ngx.var / ngx.req: fails inside the log timer ("API disabled in the context of ngx.timer").</param>
/// <param name="Fn">The implementation.</param>
internal sealed record PdkMethod(string Name, Ph Allowed, bool LiveRequest, PdkFunction Fn);

/// <summary>The state one event's PDK calls act on (a request as Kong holds it) and the recording of what the plugin did.</summary>
internal sealed class PdkContext
{
    public readonly KongSimulator Sim;
    public readonly PluginEntity Entity;
    public readonly string Phase;
    public readonly Ph PhaseFlag;
    public readonly SimRequest Req;
    public readonly SimResult Res;
    public Dictionary<string, object?>? ConsumerTable;
    public Dictionary<string, object?>? CredentialTable;

    public PdkContext(KongSimulator sim, PluginEntity entity, string phase, SimRequest req, SimResult res)
    {
        Sim = sim;
        Entity = entity;
        Phase = phase;
        PhaseFlag = phase switch
        {
            "rewrite" => Ph.Rewrite,
            "access" => Ph.Access,
            "response" => Ph.Response,
            "log" => Ph.Log,
            _ => Ph.None,
        };
        Req = req;
        Res = res;
        var up = res.Upstream;
        up.Method = req.Method;
        up.Scheme = req.Service?.Protocol ?? req.Scheme;
        up.Path = req.Path;
        up.RawQuery = req.RawQuery;
        up.Body = req.Body;
        up.Headers = req.Headers.Clone();
        res.ResponseHeaders = req.ResponseHeaders.Clone();
        res.CtxShared = new Dictionary<string, object?>(req.CtxShared, StringComparer.Ordinal);
        res.NgxCtx = new Dictionary<string, object?>(req.NgxCtx, StringComparer.Ordinal);
        res.SerializeValues = new Dictionary<string, object?>(req.SerializeValues, StringComparer.Ordinal);
        ConsumerTable = req.AuthenticatedConsumer?.ToLua();
        CredentialTable = req.AuthenticatedCredential?.ToLua();
        res.Consumer = req.AuthenticatedConsumer;
        res.Credential = req.AuthenticatedCredential;
    }

    public void CheckPhase(PdkMethod m)
    {
        if (PhaseFlag == Ph.None) return;
        if ((m.Allowed & PhaseFlag) == 0) throw new LuaError($"function cannot be called in {Phase} phase");
        if (PhaseFlag == Ph.Log && m.LiveRequest) throw new LuaError("API disabled in the context of ngx.timer");
    }
}

internal static class KongPdk
{
    public static readonly Dictionary<string, PdkMethod> Methods = Build();

    private static readonly HashSet<string> ValidMethods = new(StringComparer.Ordinal)
    {
        "GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS", "MKCOL", "COPY", "MOVE", "PROPFIND", "PROPPATCH",
        "LOCK", "UNLOCK", "PATCH", "TRACE",
    };

    public static object? Invoke(PdkContext c, PdkMethod m, in LuaArgs a)
    {
        c.CheckPhase(m);
        return m.Fn(c, a);
    }

    private static Dictionary<string, PdkMethod> Build()
    {
        var d = new Dictionary<string, PdkMethod>(StringComparer.Ordinal);
        void Add(string name, Ph allowed, bool live, PdkFunction fn) => d[name] = new PdkMethod(name, allowed, live, fn);
        const Ph Auth = Ph.Access | Ph.Response | Ph.Log;

        // ---- kong.client
        Add("kong.client.get_ip", Ph.All, true, (c, in a) => c.Req.ClientIp);
        Add("kong.client.get_forwarded_ip", Ph.All, true, (c, in a) => c.Req.ForwardedIp ?? c.Req.ClientIp);
        Add("kong.client.get_port", Ph.All, true, (c, in a) => (double)c.Req.ClientPort);
        Add("kong.client.get_forwarded_port", Ph.All, true, (c, in a) => (double)(c.Req.ForwardedPort ?? c.Req.ClientPort));
        Add("kong.client.get_credential", Auth, false, (c, in a) => c.CredentialTable);
        Add("kong.client.get_consumer", Auth, false, (c, in a) => c.ConsumerTable);
        Add("kong.client.load_consumer", Auth | Ph.Rewrite, false, LoadConsumer);
        Add("kong.client.authenticate", Ph.Rewrite | Ph.Access, false, Authenticate);
        Add("kong.client.get_protocol", Ph.All, true, (c, in a) =>
        {
            var allow = a[0];
            if (allow is not null and not bool) throw new LuaError("allow_terminated must be a boolean");
            return Lua.Truthy(allow) && c.Req.ForwardedScheme is { } fs ? fs : c.Req.Scheme;
        });

        // ---- kong.ctx / kong.ip / kong.node / kong.plugin
        Add("kong.ctx.shared.set", Ph.All, false, (c, in a) => { TableSet(c.Res.CtxShared, a[0], a[1]); return null; });
        Add("kong.ctx.shared.get", Ph.All, false, (c, in a) => TableGet(c.Res.CtxShared, a[0]));
        Add("kong.ip.is_trusted", Ph.All, false, (c, in a) =>
        {
            var ip = Lua.AsString(a[0]) ?? throw new LuaError("bad argument #1 to 'is_trusted' (string expected, got " + Lua.TypeName(a[0]) + ")");
            var t = c.Sim.Options.TrustedIps;
            return t.Contains(ip) || t.Contains("0.0.0.0/0") && ip.Contains('.') || t.Contains("::/0") && ip.Contains(':');
        });
        Add("kong.node.get_id", Ph.All, false, (c, in a) => c.Req.NodeId ?? c.Sim.NodeId);
        Add("kong.node.get_memory_stats", Ph.All, false, (c, in a) => new Dictionary<string, object?>
        {
            ["lua_shared_dicts"] = new Dictionary<string, object?>
            {
                ["kong"] = new Dictionary<string, object?> { ["allocated_slabs"] = 12288.0, ["capacity"] = 5242880.0 },
                ["kong_db_cache"] = new Dictionary<string, object?> { ["allocated_slabs"] = 12288.0, ["capacity"] = 134217728.0 },
            },
            ["workers_lua_vms"] = new List<object?>
            {
                new Dictionary<string, object?> { ["http_allocated_gc"] = 1024.0, ["pid"] = (double)Environment.ProcessId },
            },
        });
        Add("kong.plugin.get_id", Ph.All, false, (c, in a) => c.Entity.Id); // reachable through MsgPack only

        // ---- kong.log
        foreach (var level in new[] { "alert", "crit", "err", "warn", "notice", "info", "debug" })
        {
            var lv = level;
            Add("kong.log." + lv, Ph.All, false, (c, in a) =>
            {
                var sb = new StringBuilder();
                for (int i = 0; i < a.Count; i++) sb.Append(Lua.ToLuaString(a[i]));
                lock (c.Res.Logs) c.Res.Logs.Add(new SimLogLine(lv, sb.ToString()));
                return null;
            });
        }
        Add("kong.log.set_serialize_value", Ph.All, false, (c, in a) =>
        {
            var key = a[0] as string ?? throw new LuaError("key must be a string");
            var value = a[1];
            if (!IsSerializable(value))
                throw new LuaError("value must be a number, string, boolean or a non-self-referencial table containing numbers, string and booleans");
            if (value is null) c.Res.SerializeValues.Remove(key);
            else c.Res.SerializeValues[key] = Lua.DeepCopy(value);
            return null;
        });
        Add("kong.log.serialize", Ph.Log, false, (c, in a) => c.Req.SerializeJson ?? Cjson.Encode(BuildSerialize(c)));

        // ---- kong.nginx
        Add("kong.nginx.get_var", Ph.All, true, (c, in a) =>
        {
            var name = Lua.AsString(a[0]) ?? throw new LuaError("bad argument #1 to 'get_var' (string expected, got " + Lua.TypeName(a[0]) + ")");
            return c.Req.NginxVars.TryGetValue(name, out var v) ? v : null;
        });
        Add("kong.nginx.get_tls1_version_str", Ph.All, true, (c, in a) => c.Req.TlsVersion);
        Add("kong.nginx.set_ctx", Ph.All, false, (c, in a) => { TableSet(c.Res.NgxCtx, a[0], a[1]); return null; });
        Add("kong.nginx.get_ctx", Ph.All, false, (c, in a) => TableGet(c.Res.NgxCtx, a[0]));
        Add("kong.nginx.req_start_time", Ph.All, false, (c, in a) => c.Req.StartTime);
        Add("kong.nginx.get_subsystem", Ph.All, false, (c, in a) => "http");

        // ---- kong.request
        Add("kong.request.get_scheme", Ph.All, true, (c, in a) => c.Req.Scheme);
        Add("kong.request.get_host", Ph.All, true, (c, in a) => c.Req.Host);
        Add("kong.request.get_port", Ph.All, true, (c, in a) => (double)c.Req.Port);
        Add("kong.request.get_forwarded_scheme", Ph.All, true, (c, in a) => c.Req.ForwardedScheme ?? c.Req.Scheme);
        Add("kong.request.get_forwarded_host", Ph.All, true, (c, in a) => c.Req.ForwardedHost ?? c.Req.Host);
        Add("kong.request.get_forwarded_port", Ph.All, true, (c, in a) => (double)(c.Req.ForwardedRequestPort ?? c.Req.Port));
        Add("kong.request.get_http_version", Ph.All, true, (c, in a) => c.Req.HttpVersion);
        Add("kong.request.get_method", Ph.All, true, (c, in a) => c.Req.Method);
        Add("kong.request.get_path", Ph.All, true, (c, in a) => c.Req.Path);
        Add("kong.request.get_path_with_query", Ph.All, true, (c, in a) =>
            string.IsNullOrEmpty(c.Req.RawQuery) ? c.Req.Path : c.Req.Path + "?" + c.Req.RawQuery);
        Add("kong.request.get_raw_query", Ph.All, true, (c, in a) => c.Req.RawQuery ?? "");
        Add("kong.request.get_query_arg", Ph.All, true, (c, in a) =>
        {
            var name = Lua.AsString(a[0]) ?? throw new LuaError("query argument name must be a string");
            var v = Lua.ParseQuery(c.Req.RawQuery ?? "", 100).GetValueOrDefault(name);
            return v is List<object?> l ? l[0] : v;
        });
        Add("kong.request.get_query", Ph.All, true, (c, in a) => Lua.ParseQuery(c.Req.RawQuery ?? "", CheckMax(a[0], "max_args")));
        Add("kong.request.get_header", Ph.All, false, (c, in a) =>
        {
            var name = Lua.AsString(a[0]) ?? throw new LuaError("header name must be a string");
            return c.Req.Headers[NormalizeHeaderName(name)];
        });
        Add("kong.request.get_headers", Ph.All, false, (c, in a) =>
            HeaderTable(c.Req.Headers, c.PhaseFlag == Ph.Log ? 100 : CheckMax(a[0], "max_headers")));
        Add("kong.request.get_raw_body", Ph.Request, true, (c, in a) =>
            c.Req.BodyFilePath is not null
                ? new LuaMulti(null, "request body did not fit into client body buffer, consider raising 'client_body_buffer_size'")
                : c.Req.Body ?? Array.Empty<byte>());
        Add("kong.request.get_uri_captures", Ph.All, false, (c, in a) => new Dictionary<string, object?>
        {
            ["unnamed"] = c.Req.UriCaptures.Select(x => (object?)x).ToList(),
            ["named"] = c.Req.NamedUriCaptures.ToDictionary(kv => kv.Key, kv => (object?)kv.Value),
        });
        Add("kong.request.get_start_time", Ph.All, false, (c, in a) => Math.Floor(c.Req.StartTime * 1000)); // MsgPack only

        // ---- kong.response (downstream)
        const Ph Later = Ph.Response | Ph.Log;
        Add("kong.response.get_status", Later, false, (c, in a) => (double)(c.Res.ResponseStatusSet ?? c.Req.ResponseStatus ?? 200));
        Add("kong.response.get_header", Later, false, (c, in a) =>
        {
            var name = Lua.AsString(a[0]) ?? throw new LuaError("header name must be a string");
            return c.Res.ResponseHeaders[NormalizeHeaderName(name)];
        });
        Add("kong.response.get_headers", Later, false, (c, in a) =>
            HeaderTable(c.Res.ResponseHeaders, c.PhaseFlag == Ph.Log ? 100 : CheckMax(a[0], "max_headers")));
        Add("kong.response.get_source", Later, false, (c, in a) => c.Req.ResponseSource);
        Add("kong.response.get_raw_body", Ph.Response, true, (c, in a) => c.Req.ResponseBody ?? Array.Empty<byte>()); // MsgPack only
        Add("kong.response.set_status", Ph.Request, false, (c, in a) =>
        {
            c.Res.ResponseStatusSet = CheckStatus(a[0]);
            return null;
        });
        Add("kong.response.set_header", Ph.Request, false, (c, in a) =>
        {
            var (n, v) = ValidateHeader(a[0], a[1]);
            c.Res.ResponseHeaders.Set(n, v);
            return null;
        });
        Add("kong.response.add_header", Ph.Request, false, (c, in a) =>
        {
            var (n, v) = ValidateHeader(a[0], a[1]);
            foreach (var x in v) c.Res.ResponseHeaders.Add(n, x);
            return null;
        });
        Add("kong.response.clear_header", Ph.Request, false, (c, in a) =>
        {
            c.Res.ResponseHeaders.Remove(HeaderName(a[0]));
            return null;
        });
        Add("kong.response.set_headers", Ph.Request, false, (c, in a) =>
        {
            foreach (var (n, v) in ValidateHeaders(a[0])) c.Res.ResponseHeaders.Set(n, v);
            return null;
        });
        Add("kong.response.exit", Ph.Request, false, Exit);
        Add("kong.response.error", Ph.Request, false, Error); // MsgPack only

        // ---- kong.router
        Add("kong.router.get_route", Ph.All, false, (c, in a) => c.Req.Route?.ToLua());
        Add("kong.router.get_service", Ph.All, false, (c, in a) => c.Req.Service?.ToLua());

        // ---- kong.service
        const Ph Before = Ph.Rewrite | Ph.Access;
        Add("kong.service.set_upstream", Before, false, (c, in a) =>
        {
            c.Res.Upstream.UpstreamName = a[0] as string ?? throw new LuaError("host must be a string");
            c.Res.Upstream.Changes.Add("set_upstream");
            return true;
        });
        Add("kong.service.set_target", Before, false, (c, in a) =>
        {
            var host = a[0] as string ?? throw new LuaError("host must be a string");
            if (Lua.AsNumber(a[1]) is not double p || !Lua.IsInteger(p)) throw new LuaError("port must be an integer");
            if (p < 0 || p > 65535) throw new LuaError("port must be an integer between 0 and 65535: given " + Lua.FormatNumber(p));
            c.Res.Upstream.TargetHost = host;
            c.Res.Upstream.TargetPort = (int)p;
            c.Res.Upstream.Changes.Add("set_target");
            return null;
        });

        // ---- kong.service.request
        Add("kong.service.request.set_scheme", Before, false, (c, in a) =>
        {
            var s = a[0] as string ?? throw new LuaError("scheme must be a string");
            if (s is not ("http" or "https" or "grpc" or "grpcs")) throw new LuaError("invalid scheme: " + s);
            c.Res.Upstream.Scheme = s;
            c.Res.Upstream.Changes.Add("set_scheme");
            return null;
        });
        Add("kong.service.request.set_path", Before, false, (c, in a) =>
        {
            var p = a[0] as string ?? throw new LuaError("path must be a string");
            if (!p.StartsWith('/')) throw new LuaError("path must start with /");
            c.Res.Upstream.Path = p;
            c.Res.Upstream.Changes.Add("set_path");
            return null;
        });
        Add("kong.service.request.set_raw_query", Before, false, (c, in a) =>
        {
            c.Res.Upstream.RawQuery = a[0] as string ?? throw new LuaError("query must be a string");
            c.Res.Upstream.Changes.Add("set_raw_query");
            return null;
        });
        Add("kong.service.request.set_method", Before, false, (c, in a) =>
        {
            var m = a[0] as string ?? throw new LuaError("method must be a string");
            if (!ValidMethods.Contains(m)) throw new LuaError("invalid method: " + m);
            c.Res.Upstream.Method = m;
            c.Res.Upstream.Changes.Add("set_method");
            return null;
        });
        Add("kong.service.request.set_query", Before, false, (c, in a) =>
        {
            var args = a[0] as Dictionary<string, object?> ?? (a[0] is List<object?> { Count: 0 }
                ? new Dictionary<string, object?>() : throw new LuaError("args must be a table"));
            c.Res.Upstream.RawQuery = Lua.EncodeQuery(args);
            c.Res.Upstream.Changes.Add("set_query");
            return null;
        });
        Add("kong.service.request.set_header", Before, false, (c, in a) =>
        {
            var (n, v) = ValidateHeader(a[0], a[1]);
            c.Res.Upstream.Headers.Set(n, v);
            c.Res.Upstream.Changes.Add("set_header");
            return null;
        });
        Add("kong.service.request.add_header", Before, false, (c, in a) =>
        {
            var (n, v) = ValidateHeader(a[0], a[1]);
            foreach (var x in v) c.Res.Upstream.Headers.Add(n, x);
            c.Res.Upstream.Changes.Add("add_header");
            return null;
        });
        Add("kong.service.request.clear_header", Before, false, (c, in a) =>
        {
            c.Res.Upstream.Headers.Remove(HeaderName(a[0]));
            c.Res.Upstream.Changes.Add("clear_header");
            return null;
        });
        Add("kong.service.request.set_headers", Before, false, (c, in a) =>
        {
            foreach (var (n, v) in ValidateHeaders(a[0])) c.Res.Upstream.Headers.Set(n, v);
            c.Res.Upstream.Changes.Add("set_headers");
            return null;
        });
        Add("kong.service.request.set_raw_body", Before, false, (c, in a) =>
        {
            c.Res.Upstream.Body = Lua.AsBytes(a[0]) ?? throw new LuaError("body must be a string");
            c.Res.Upstream.Changes.Add("set_raw_body");
            return null;
        });

        // ---- kong.service.response (the upstream's response)
        Add("kong.service.response.get_status", Ph.Response | Ph.Log, true, (c, in a) => (double)(c.Req.ResponseStatus ?? 200));
        Add("kong.service.response.get_header", Ph.Response | Ph.Log, true, (c, in a) =>
        {
            var name = Lua.AsString(a[0]) ?? throw new LuaError("header name must be a string");
            return c.Req.ResponseHeaders[NormalizeHeaderName(name)];
        });
        Add("kong.service.response.get_headers", Ph.Response | Ph.Log, true, (c, in a) =>
            HeaderTable(c.Req.ResponseHeaders, CheckMax(a[0], "max_headers")));
        Add("kong.service.response.get_raw_body", Ph.Response | Ph.Log, true, (c, in a) => c.Req.ResponseBody ?? Array.Empty<byte>());

        return d;
    }

    // ------------------------------------------------------------------ helpers

    private static object? LoadConsumer(PdkContext c, in LuaArgs a)
    {
        if (a[0] is not string id) throw new LuaError("consumer_id must be a string");
        bool byUsername = Lua.Truthy(a[1]);
        bool uuid = Lua.IsUuid(id);
        if (!uuid && !byUsername) throw new LuaError("cannot load a consumer with an id that is not a uuid");
        IEnumerable<SimConsumer> all = c.Req.Consumers.Concat(c.Sim.Consumers);
        if (uuid)
        {
            var byId = all.FirstOrDefault(x => string.Equals(x.Id, id, StringComparison.OrdinalIgnoreCase));
            if (byId is not null) return byId.ToLua();
        }
        if (byUsername)
        {
            var byName = all.FirstOrDefault(x => x.Username == id);
            if (byName is not null) return byName.ToLua();
        }
        return null;
    }

    private static object? Authenticate(PdkContext c, in LuaArgs a)
    {
        var consumer = a[0];
        var credential = a[1];
        if (!Lua.Truthy(consumer) && !Lua.Truthy(credential)) throw new LuaError("either credential or consumer must be provided");
        if (Lua.Truthy(consumer) && !Lua.IsTable(consumer)) throw new LuaError("consumer must be a table");
        if (Lua.Truthy(credential) && !Lua.IsTable(credential)) throw new LuaError("credential must be a table");
        c.ConsumerTable = consumer as Dictionary<string, object?> ?? (Lua.IsTable(consumer) ? new() : null);
        c.CredentialTable = credential as Dictionary<string, object?> ?? (Lua.IsTable(credential) ? new() : null);
        c.Res.Consumer = c.ConsumerTable is null ? null : SimConsumer.FromLua(c.ConsumerTable);
        c.Res.Credential = c.CredentialTable is null ? null : SimCredential.FromLua(c.CredentialTable);
        c.Res.Authenticated = true;
        return null;
    }

    private static object? Exit(PdkContext c, in LuaArgs a)
    {
        int status = CheckStatus(a[0]);
        var body = a[1];
        if (body is not null && !Lua.IsString(body) && !Lua.IsTable(body)) throw new LuaError("body must be a nil, string or table");
        var headers = ValidateHeaders(a[2], allowNil: true);
        var h = new HeaderCollection();
        foreach (var (n, v) in headers) h.Set(n, v);
        byte[] bytes;
        if (Lua.IsTable(body))
        {
            bytes = Encoding.UTF8.GetBytes(Cjson.Encode(body));
            if (!h.Contains("Content-Type")) h["Content-Type"] = "application/json; charset=utf-8";
        }
        else bytes = Lua.AsBytes(body) ?? Array.Empty<byte>();
        c.Res.Exit = new SimExit { Status = status, Body = bytes, Headers = h };
        throw ExitSignal.Instance;
    }

    private static object? Error(PdkContext c, in LuaArgs a)
    {
        if (Lua.AsNumber(a[0]) is not double s || !Lua.IsInteger(s) || s < 400 || s > 599)
            throw new LuaError("code must be an integer and be between 400 and 599");
        int status = (int)s;
        var message = a[1] is null ? DefaultMessage(status) : Lua.ToLuaString(a[1]);
        var headers = ValidateHeaders(a[2], allowNil: true);
        var h = new HeaderCollection();
        foreach (var (n, v) in headers) h.Set(n, v);
        h["Content-Type"] = "application/json; charset=utf-8";
        var body = Cjson.Encode(new Dictionary<string, object?> { ["message"] = message });
        c.Res.Exit = new SimExit { Status = status, Body = Encoding.UTF8.GetBytes(body), Headers = h };
        throw ExitSignal.Instance;
    }

    internal static string DefaultMessage(int status) => status switch
    {
        400 => "Bad request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not found",
        405 => "Method not allowed",
        429 => "API rate limit exceeded",
        502 => "An invalid response was received from the upstream server",
        503 => "The upstream server is currently unavailable",
        504 => "The upstream server is timing out",
        _ => "An unexpected error occurred",
    };

    private static int CheckStatus(object? v)
    {
        if (Lua.AsNumber(v) is not double d) throw new LuaError("code must be a number");
        if (d < 100 || d > 599) throw new LuaError("code must be a number between 100 and 599");
        return (int)d;
    }

    private static int CheckMax(object? v, string what)
    {
        if (v is null) return 100;
        if (Lua.AsNumber(v) is not double d) throw new LuaError(what + " must be a number");
        if (d < 1) throw new LuaError(what + " must be >= 1");
        if (d > 1000) throw new LuaError(what + " must be <= 1000");
        return (int)d;
    }

    /// <summary>ngx.req.get_headers' metatable lookup: case-insensitive, '_' equals '-'.</summary>
    private static string NormalizeHeaderName(string name) => name.Replace('_', '-');

    /// <summary>A header table as ngx.req.get_headers returns it: lowercase names, a string or a list when repeated.</summary>
    internal static Dictionary<string, object?> HeaderTable(HeaderCollection headers, int max)
    {
        var t = new Dictionary<string, object?>(StringComparer.Ordinal);
        int n = 0;
        foreach (var (name, value) in headers)
        {
            if (n++ >= max) break;
            var key = name.ToLowerInvariant();
            if (t.TryGetValue(key, out var existing))
            {
                if (existing is List<object?> l) l.Add(value);
                else t[key] = new List<object?> { existing, value };
            }
            else t[key] = value;
        }
        return t;
    }

    private static string HeaderName(object? name) =>
        name as string ?? throw new LuaError($"invalid header name \"{Lua.ToLuaString(name)}\": got {Lua.TypeName(name)}, expected string");

    private static (string, List<string>) ValidateHeader(object? name, object? value)
    {
        var n = HeaderName(name);
        var values = new List<string>();
        switch (value)
        {
            case string or byte[]: values.Add(Lua.AsString(value)!); break;
            case double or int or long or bool: values.Add(Lua.ToLuaString(value)); break;
            case List<object?> list:
                foreach (var item in list)
                {
                    if (item is not (string or byte[] or double or bool))
                        throw new LuaError($"invalid header value in array \"{n}\": got {Lua.TypeName(item)}, expected string");
                    values.Add(Lua.ToLuaString(item));
                }
                break;
            case Dictionary<string, object?>: break; // an empty/hash table: no values
            default:
                throw new LuaError($"invalid header value for \"{n}\": got {Lua.TypeName(value)}, expected array of string, string, number or boolean");
        }
        return (n, values);
    }

    private static List<(string, List<string>)> ValidateHeaders(object? headers, bool allowNil = false)
    {
        var result = new List<(string, List<string>)>();
        if (headers is null && allowNil) return result;
        if (headers is List<object?> { Count: 0 }) return result;
        if (headers is not Dictionary<string, object?> map)
            throw new LuaError(allowNil ? "headers must be a nil or table" : "headers must be a table");
        foreach (var kv in map) result.Add(ValidateHeader(kv.Key, kv.Value));
        return result;
    }

    private static void TableSet(Dictionary<string, object?> t, object? key, object? value)
    {
        if (key is null) throw new LuaError("table index is nil");
        var k = key as string ?? Lua.ToLuaString(key);
        if (value is null) t.Remove(k);
        else t[k] = value;
    }

    private static object? TableGet(Dictionary<string, object?> t, object? key)
    {
        if (key is null) return null;
        return t.GetValueOrDefault(key as string ?? Lua.ToLuaString(key));
    }

    private static bool IsSerializable(object? v) => v switch
    {
        null or bool or double or int or long or string or byte[] => true,
        List<object?> l => l.All(IsSerializable),
        Dictionary<string, object?> d => d.Values.All(IsSerializable),
        _ => false,
    };

    /// <summary>A basic kong.log.serialize() table for the log phase.</summary>
    private static Dictionary<string, object?> BuildSerialize(PdkContext c)
    {
        var r = c.Req;
        string pathQuery = string.IsNullOrEmpty(r.RawQuery) ? r.Path : r.Path + "?" + r.RawQuery;
        var up = c.Res.Upstream;
        var t = new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["request"] = new Dictionary<string, object?>
            {
                ["uri"] = pathQuery,
                ["url"] = $"{r.Scheme}://{r.Host}:{r.Port}{pathQuery}",
                ["querystring"] = Lua.ParseQuery(r.RawQuery ?? "", 100),
                ["method"] = r.Method,
                ["headers"] = HeaderTable(r.Headers, 100),
                ["size"] = (double)(r.Body?.Length ?? 0),
            },
            ["upstream_uri"] = string.IsNullOrEmpty(up.RawQuery) ? up.Path : up.Path + "?" + up.RawQuery,
            ["response"] = new Dictionary<string, object?>
            {
                ["status"] = (double)(r.ResponseStatus ?? 200),
                ["headers"] = HeaderTable(c.Res.ResponseHeaders, 100),
                ["size"] = (double)(r.ResponseBody?.Length ?? 0),
            },
            ["latencies"] = new Dictionary<string, object?> { ["kong"] = 0.0, ["proxy"] = 0.0, ["request"] = 0.0, ["receive"] = 0.0 },
            ["tries"] = new List<object?>(),
            ["client_ip"] = r.ClientIp,
            ["started_at"] = Math.Floor(r.StartTime * 1000),
            ["source"] = r.ResponseSource,
            ["workspace"] = c.Entity.WorkspaceId,
            ["workspace_name"] = "default",
        };
        if (r.Route is not null) t["route"] = r.Route.ToLua();
        if (r.Service is not null) t["service"] = r.Service.ToLua();
        if (c.ConsumerTable is not null) t["consumer"] = c.ConsumerTable;
        if (c.CredentialTable is not null) t["authenticated_entity"] = c.CredentialTable;
        foreach (var kv in c.Res.SerializeValues)
        {
            var parts = kv.Key.Split('.');
            var node = t;
            for (int i = 0; i < parts.Length - 1; i++)
            {
                if (node.GetValueOrDefault(parts[i]) is not Dictionary<string, object?> next)
                {
                    next = new Dictionary<string, object?>(StringComparer.Ordinal);
                    node[parts[i]] = next;
                }
                node = next;
            }
            node[parts[^1]] = kv.Value;
        }
        return t;
    }
}
