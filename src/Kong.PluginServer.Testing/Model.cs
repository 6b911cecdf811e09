using System.Text;

namespace Kong.PluginServer.Testing;

/// <summary>The plugin-server protocol Kong speaks to the server (the <c>Protocol</c> of the server's dump).</summary>
public enum KongProtocol
{
    /// <summary><c>ProtoBuf:1</c>: uint32-LE length-prefixed protobuf frames; one connection carries a whole event.</summary>
    ProtoBuf,
    /// <summary><c>MsgPack:1</c>: msgpack-rpc; one call per pooled connection checkout, events keyed by EventId.</summary>
    MsgPack,
}

/// <summary>How an event ended, seen from Kong.</summary>
public enum SimOutcome
{
    /// <summary>The handler finished (ProtoBuf end marker + RpcReturn, MsgPack <c>"ret"</c>); the request goes on.</summary>
    Completed,
    /// <summary>The plugin called <c>kong.response.exit</c> (see <see cref="SimResult.Exit"/>).</summary>
    Exited,
    /// <summary>The event failed and Kong answers 500 (a Lua error, a failed assertion, or a 3.8+ "pluginserver error").</summary>
    Failed,
    /// <summary>The event failed, Kong only logged it and the request continues (MsgPack errors; ProtoBuf before 3.8; any log-phase failure).</summary>
    FailedOpen,
    /// <summary>nginx answered 400 before any plugin ran: a header line it accepts once (Authorization, Host...) came twice.</summary>
    RejectedByNginx,
}

/// <summary>One <c>kong.log.*</c> line written by the plugin.</summary>
/// <param name="Level">alert, crit, err, warn, notice, info or debug.</param>
/// <param name="Message">The arguments concatenated the way Kong does (tostring of each, no separator).</param>
public sealed record SimLogLine(string Level, string Message);

/// <summary>One top-level RPC Kong sent for the event (ProtoBuf <c>cmd_*</c> or MsgPack <c>plugin.*</c>).</summary>
/// <param name="Command">e.g. <c>cmd_start_instance</c>, <c>cmd_handle_event</c>, <c>plugin.Step</c>.</param>
/// <param name="Sequence">The ProtoBuf <c>RpcCall.sequence</c> or the MsgPack msgid.</param>
/// <param name="InstanceId">The instance id the command was about, when it has one.</param>
public sealed record SimRpc(string Command, long Sequence, int? InstanceId);

/// <summary>A consumer entity (Kong's database row) or the consumer a plugin authenticated.</summary>
public sealed class SimConsumer
{
    /// <summary>UUID.</summary>
    public string? Id { get; set; }
    /// <summary>Username.</summary>
    public string? Username { get; set; }
    /// <summary>custom_id.</summary>
    public string? CustomId { get; set; }
    /// <summary>Creation time (epoch seconds).</summary>
    public long? CreatedAt { get; set; }
    /// <summary>Tags.</summary>
    public List<string>? Tags { get; set; }

    internal Dictionary<string, object?> ToLua()
    {
        var t = new Dictionary<string, object?>(StringComparer.Ordinal);
        if (Id is not null) t["id"] = Id;
        if (CreatedAt is not null) t["created_at"] = (double)CreatedAt.Value;
        if (Username is not null) t["username"] = Username;
        if (CustomId is not null) t["custom_id"] = CustomId;
        if (Tags is not null) t["tags"] = Tags.Select(x => (object?)x).ToList();
        return t;
    }

    internal static SimConsumer FromLua(Dictionary<string, object?> t) => new()
    {
        Id = Internal.Lua.AsString(t.GetValueOrDefault("id")),
        Username = Internal.Lua.AsString(t.GetValueOrDefault("username")),
        CustomId = Internal.Lua.AsString(t.GetValueOrDefault("custom_id")),
        CreatedAt = Internal.Lua.AsNumber(t.GetValueOrDefault("created_at")) is double d ? (long)d : null,
        Tags = t.GetValueOrDefault("tags") is List<object?> l ? l.Select(Internal.Lua.ToLuaString).ToList() : null,
    };

    /// <inheritdoc />
    public override string ToString() => $"consumer(id={Id}, username={Username}, custom_id={CustomId})";
}

/// <summary>The credential a plugin authenticated (<c>kong.client.authenticate</c>).</summary>
public sealed class SimCredential
{
    /// <summary>Credential id.</summary>
    public string? Id { get; set; }
    /// <summary>consumer_id.</summary>
    public string? ConsumerId { get; set; }

    internal Dictionary<string, object?> ToLua()
    {
        var t = new Dictionary<string, object?>(StringComparer.Ordinal);
        if (Id is not null) t["id"] = Id;
        if (ConsumerId is not null) t["consumer_id"] = ConsumerId;
        return t;
    }

    internal static SimCredential FromLua(Dictionary<string, object?> t) => new()
    {
        Id = Internal.Lua.AsString(t.GetValueOrDefault("id")),
        ConsumerId = Internal.Lua.AsString(t.GetValueOrDefault("consumer_id")),
    };

    /// <inheritdoc />
    public override string ToString() => $"credential(id={Id}, consumer_id={ConsumerId})";
}

/// <summary>The matched route (<c>kong.router.get_route</c>).</summary>
public sealed class SimRoute
{
    /// <summary>UUID.</summary>
    public string Id { get; set; } = Guid.NewGuid().ToString();
    /// <summary>Name.</summary>
    public string? Name { get; set; }
    /// <summary>created_at.</summary>
    public long CreatedAt { get; set; } = 1700000000;
    /// <summary>updated_at.</summary>
    public long UpdatedAt { get; set; } = 1700000000;
    /// <summary>protocols.</summary>
    public List<string> Protocols { get; set; } = new() { "http", "https" };
    /// <summary>methods.</summary>
    public List<string>? Methods { get; set; }
    /// <summary>hosts.</summary>
    public List<string>? Hosts { get; set; }
    /// <summary>paths.</summary>
    public List<string>? Paths { get; set; }
    /// <summary>https_redirect_status_code.</summary>
    public int HttpsRedirectStatusCode { get; set; } = 426;
    /// <summary>regex_priority.</summary>
    public int RegexPriority { get; set; }
    /// <summary>strip_path.</summary>
    public bool StripPath { get; set; } = true;
    /// <summary>preserve_host.</summary>
    public bool PreserveHost { get; set; }
    /// <summary>tags.</summary>
    public List<string>? Tags { get; set; }
    /// <summary>service.id.</summary>
    public string? ServiceId { get; set; }

    internal Dictionary<string, object?> ToLua()
    {
        static List<object?>? L(List<string>? l) => l?.Select(x => (object?)x).ToList();
        var t = new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["id"] = Id, ["created_at"] = (double)CreatedAt, ["updated_at"] = (double)UpdatedAt, ["name"] = Name,
            ["protocols"] = L(Protocols), ["methods"] = L(Methods), ["hosts"] = L(Hosts), ["paths"] = L(Paths),
            ["https_redirect_status_code"] = (double)HttpsRedirectStatusCode, ["regex_priority"] = (double)RegexPriority,
            ["strip_path"] = StripPath, ["preserve_host"] = PreserveHost, ["tags"] = L(Tags),
        };
        if (ServiceId is not null) t["service"] = new Dictionary<string, object?> { ["id"] = ServiceId };
        foreach (var k in t.Where(kv => kv.Value is null).Select(kv => kv.Key).ToList()) t.Remove(k);
        return t;
    }
}

/// <summary>The matched service (<c>kong.router.get_service</c>).</summary>
public sealed class SimService
{
    /// <summary>UUID.</summary>
    public string Id { get; set; } = Guid.NewGuid().ToString();
    /// <summary>Name.</summary>
    public string? Name { get; set; }
    /// <summary>created_at.</summary>
    public long CreatedAt { get; set; } = 1700000000;
    /// <summary>updated_at.</summary>
    public long UpdatedAt { get; set; } = 1700000000;
    /// <summary>retries.</summary>
    public int Retries { get; set; } = 5;
    /// <summary>protocol.</summary>
    public string Protocol { get; set; } = "http";
    /// <summary>host.</summary>
    public string Host { get; set; } = "upstream.example";
    /// <summary>port.</summary>
    public int Port { get; set; } = 80;
    /// <summary>path.</summary>
    public string? Path { get; set; }
    /// <summary>connect_timeout (ms).</summary>
    public int ConnectTimeout { get; set; } = 60000;
    /// <summary>write_timeout (ms).</summary>
    public int WriteTimeout { get; set; } = 60000;
    /// <summary>read_timeout (ms).</summary>
    public int ReadTimeout { get; set; } = 60000;
    /// <summary>tags.</summary>
    public List<string>? Tags { get; set; }
    /// <summary>client_certificate.id.</summary>
    public string? ClientCertificateId { get; set; }

    internal Dictionary<string, object?> ToLua()
    {
        var t = new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["id"] = Id, ["created_at"] = (double)CreatedAt, ["updated_at"] = (double)UpdatedAt, ["name"] = Name,
            ["retries"] = (double)Retries, ["protocol"] = Protocol, ["host"] = Host, ["port"] = (double)Port, ["path"] = Path,
            ["connect_timeout"] = (double)ConnectTimeout, ["write_timeout"] = (double)WriteTimeout, ["read_timeout"] = (double)ReadTimeout,
            ["tags"] = Tags?.Select(x => (object?)x).ToList(),
        };
        if (ClientCertificateId is not null) t["client_certificate"] = new Dictionary<string, object?> { ["id"] = ClientCertificateId };
        foreach (var k in t.Where(kv => kv.Value is null).Select(kv => kv.Key).ToList()) t.Remove(k);
        return t;
    }
}

/// <summary>The response a plugin produced with <c>kong.response.exit</c> (or <c>kong.response.error</c>, MsgPack).</summary>
public sealed class SimExit
{
    /// <summary>HTTP status.</summary>
    public int Status { get; init; }
    /// <summary>The body bytes (empty when none).</summary>
    public byte[] Body { get; init; } = Array.Empty<byte>();
    /// <summary>The headers passed to exit.</summary>
    public HeaderCollection Headers { get; init; } = new();
    /// <summary>The body as UTF-8 text.</summary>
    public string BodyText => Encoding.UTF8.GetString(Body);

    /// <inheritdoc />
    public override string ToString() => $"exit {Status} [{Headers}] {BodyText}";
}

/// <summary>The request Kong would send upstream, after the plugin's <c>kong.service.*</c> calls.</summary>
public sealed class UpstreamRequest
{
    /// <summary>HTTP method (initially the client's).</summary>
    public string Method { get; internal set; } = "GET";
    /// <summary>Scheme (initially the service's protocol, or the client's scheme).</summary>
    public string Scheme { get; internal set; } = "http";
    /// <summary>Path (initially the client's path).</summary>
    public string Path { get; internal set; } = "/";
    /// <summary>Raw query string (initially the client's).</summary>
    public string RawQuery { get; internal set; } = "";
    /// <summary>Body set with <c>kong.service.request.set_raw_body</c>, else the client's body.</summary>
    public byte[]? Body { get; internal set; }
    /// <summary>The final upstream header map: the client's headers after the plugin's set/add/clear.</summary>
    public HeaderCollection Headers { get; internal set; } = new();
    /// <summary><c>kong.service.set_upstream</c> argument, when called.</summary>
    public string? UpstreamName { get; internal set; }
    /// <summary><c>kong.service.set_target</c> host, when called.</summary>
    public string? TargetHost { get; internal set; }
    /// <summary><c>kong.service.set_target</c> port, when called.</summary>
    public int? TargetPort { get; internal set; }
    /// <summary>Names of the service.request setters the plugin called, in order (e.g. <c>set_path</c>).</summary>
    public List<string> Changes { get; } = new();
}
