using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using GitLabCiAuth.Keys;
using GitLabCiAuth.Plugin;
using GitLabCiAuth.Testing;
using GitLabCiAuth.Tokens;
using Kong.PluginServer;
using Kong.PluginServer.Server;
using Kong.PluginServer.Testing;

namespace GitLabCiAuth.Tests.Plugin;

/// <summary>
/// The plugin served in-process (<see cref="PluginTestHost"/>) behind a simulated Kong, with a fake GitLab,
/// a manual clock, a private key store and a token minter. By default the fake GitLab is one shared,
/// never-mutated instance (RSA key generation is the slow part of these tests); tests that rotate keys,
/// inject faults or count fetches ask for their own.
/// </summary>
internal sealed class PluginHarness : IAsyncDisposable
{
    public const string Audience = TokenMinter.DefaultAudience;

    /// <summary>Bound on anything that should happen promptly: a safety net against hangs, never a speed assertion.</summary>
    public static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);

    private static readonly Lazy<FakeGitLab> s_sharedGitLab = new(() => FakeGitLab.Start(), LazyThreadSafetyMode.ExecutionAndPublication);

    public static TheoryData<KongProtocol> Protocols => [KongProtocol.ProtoBuf, KongProtocol.MsgPack];

    private readonly bool _ownsGitLab;
    private readonly LockedLog _serverLog = new();

    private PluginHarness(KongProtocol protocol, bool ownGitLab, int workers)
    {
        _ownsGitLab = ownGitLab;
        GitLab = ownGitLab ? FakeGitLab.Start() : s_sharedGitLab.Value;
        Time = new ManualTimeProvider(DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.ToUnixTimeSeconds()));
        Store = new JwksKeyStore(Time, (level, message) => KeyLogs.Enqueue($"{level}: {message}"));
        Minter = new TokenMinter(GitLab, Audience, Time);
        Plugin = new GitLabCiAuthPlugin(Store, Time);
        var log = new ServerLog(_serverLog, LogLevel.Info);
        Host = PluginTestHost.Start(Plugin, protocol, workers, new KongSimulatorOptions { Timeout = Bound },
            o => new ServerOptions { SocketPath = o.SocketPath, Protocol = o.Protocol, SocketMode = o.SocketMode, Log = log });
        Protocol = protocol;
    }

    /// <param name="ownGitLab">A private fake GitLab (rotation, faults, request counts) instead of the shared one.</param>
    public static PluginHarness Start(KongProtocol protocol = KongProtocol.ProtoBuf, bool ownGitLab = false, int workers = 1) =>
        new(protocol, ownGitLab, workers);

    public KongProtocol Protocol { get; }
    public FakeGitLab GitLab { get; }
    public ManualTimeProvider Time { get; }
    public JwksKeyStore Store { get; }
    public TokenMinter Minter { get; }
    public GitLabCiAuthPlugin Plugin { get; }
    public PluginTestHost Host { get; }
    public KongSimulator Kong => Host.Kong;
    public ConcurrentQueue<string> KeyLogs { get; } = new();
    public DateTimeOffset Now => Time.GetUtcNow();
    /// <summary>What the plugin server logged (instance refusals name the config field).</summary>
    public string ServerLogText => _serverLog.Text;

    /// <summary>The smallest sensible config: this fake GitLab over http, our audience, trust every project.</summary>
    public JsonObject BaseConfig() => new()
    {
        ["issuer"] = GitLab.Issuer,
        ["audiences"] = new JsonArray(Audience),
        ["allow_insecure_http"] = true,
        ["rules"] = Rules("""[{"name":"any-project","claims":{"project_id":["*"]}}]"""),
    };

    public static JsonNode Rules(string json) => JsonNode.Parse(json)!;

    public PluginEntity Add(Action<JsonObject>? edit = null)
    {
        var config = BaseConfig();
        edit?.Invoke(config);
        return Kong.AddPlugin(config.ToJsonString());
    }

    /// <summary>A request the way a CI job sends it: GET /api/v1/deploy with the token as <c>Authorization: Bearer</c> (when given).</summary>
    public static SimRequest Request(string? token = null, Action<SimRequest>? edit = null)
    {
        var r = new SimRequest { Method = "GET", Path = "/api/v1/deploy", Headers = { ["host"] = "api.internal.example", ["user-agent"] = "curl/8.5.0" } };
        if (token is not null) r.Headers["authorization"] = "Bearer " + token;
        edit?.Invoke(r);
        return r;
    }

    public Task<SimResult> RunAsync(PluginEntity entity, string? token = null, Action<SimRequest>? edit = null, int worker = 0) =>
        RunAsync(entity, Request(token, edit), worker);

    public Task<SimResult> RunAsync(PluginEntity entity, SimRequest request, int worker = 0) =>
        Kong.Worker(worker).RunAsync(entity, "access", request).WaitAsync(Bound);

    /// <summary>Runs an allowed request and returns the result (fails the test when it was not allowed).</summary>
    public async Task<SimResult> AllowedAsync(PluginEntity entity, string? token, Action<SimRequest>? edit = null)
    {
        var r = await RunAsync(entity, token, edit);
        Expect.Allowed(r);
        return r;
    }

    /// <summary>
    /// A lease on the key source <paramref name="entity"/>'s config uses (the same shared source as the plugin's
    /// instances), to wait for its fetches. Call it after the first request, so the plugin created the source.
    /// </summary>
    public KeySourceLease Lease(PluginEntity entity)
    {
        var config = Plugin.ParseConfig(Encoding.UTF8.GetBytes(entity.ConfigJson));
        var lease = Store.Acquire(KeySourceSettings.FromOptions(GitLabCiAuthPlugin.Compile(config).TokenOptions));
        _leases.Add(lease);
        return lease;
    }

    /// <summary>Moves the manual clock (firing the key refresh timers due on the way) and waits until no fetch is in flight.</summary>
    public async Task AdvanceAsync(TimeSpan by)
    {
        Time.Advance(by);
        foreach (var lease in _leases) await lease.WhenIdleAsync().WaitAsync(Bound);
    }

    private readonly List<KeySourceLease> _leases = [];

    public async ValueTask DisposeAsync()
    {
        await Host.DisposeAsync();
        foreach (var lease in _leases) lease.Dispose();
        Store.Dispose();
        if (_ownsGitLab) GitLab.Dispose();
    }
}

/// <summary>A log sink safe to read while server threads write to it.</summary>
internal sealed class LockedLog : TextWriter
{
    private readonly Lock _lock = new();
    private readonly StringBuilder _text = new();

    public override Encoding Encoding => Encoding.UTF8;
    public override void Write(char value) { lock (_lock) _text.Append(value); }
    public override void Write(string? value) { lock (_lock) _text.Append(value); }
    public override void WriteLine(string? value) { lock (_lock) _text.Append(value).Append('\n'); }
    public string Text { get { lock (_lock) return _text.ToString(); } }
}

/// <summary>Assertions on what the simulated Kong saw.</summary>
internal static class Expect
{
    public const string Realm = "gitlab-ci-auth";

    public static void Allowed(SimResult r)
    {
        Assert.True(r.Status == 200 && r.Outcome == SimOutcome.Completed, r.ToString());
        Assert.Null(r.Exit);
    }

    /// <summary>401 for a bad token: JSON body {message, code}, RFC 6750 challenge with error="invalid_token" and a description.</summary>
    public static void InvalidToken(SimResult r, string code)
    {
        var exit = Exited(r, 401, code);
        var challenge = exit.Headers["WWW-Authenticate"];
        Assert.NotNull(challenge);
        Assert.Matches("^Bearer realm=\"gitlab-ci-auth\", error=\"invalid_token\", error_description=\"[ !#-\\[\\]-~]+\"$", challenge);
    }

    /// <summary>401 without a token: a bare challenge, no error attribute (RFC 6750 3.1).</summary>
    public static void MissingToken(SimResult r)
    {
        var exit = Exited(r, 401, "token_missing");
        Assert.Equal($"Bearer realm=\"{Realm}\"", exit.Headers["WWW-Authenticate"]);
        Assert.Single(exit.Headers.GetValues("WWW-Authenticate"));
    }

    public static void Unavailable(SimResult r, out int retryAfter)
    {
        var exit = Exited(r, 503, "keys_unavailable");
        var value = exit.Headers["Retry-After"];
        Assert.NotNull(value);
        Assert.True(int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out retryAfter), value);
        Assert.True(retryAfter >= 1, value);
        Assert.Null(exit.Headers["WWW-Authenticate"]);
    }

    /// <summary>403 with {message, code} (and, when <paramref name="rule"/> is given, the rule).</summary>
    public static void Forbidden(SimResult r, string code, string? rule = null)
    {
        var exit = Exited(r, 403, code, rule is null ? ["code", "message"] : ["code", "message", "rule"]);
        if (rule is not null) Assert.Equal(rule, Body(exit).GetProperty("rule").GetString());
        Assert.Null(exit.Headers["WWW-Authenticate"]);
    }

    public static SimExit Exited(SimResult r, int status, string code, string[]? members = null)
    {
        Assert.True(r.Status == status && r.Outcome == SimOutcome.Exited, r.ToString());
        var exit = r.Exit!;
        Assert.Equal(status, exit.Status);
        var contentType = exit.Headers["Content-Type"];
        Assert.NotNull(contentType);
        Assert.StartsWith("application/json", contentType, StringComparison.OrdinalIgnoreCase);
        var body = Body(exit);
        Assert.Equal(members ?? ["code", "message"], body.EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal).ToArray());
        Assert.Equal(code, body.GetProperty("code").GetString());
        Assert.False(string.IsNullOrWhiteSpace(body.GetProperty("message").GetString()));
        return exit;
    }

    public static JsonElement Body(SimExit exit)
    {
        using var doc = JsonDocument.Parse(exit.Body);
        return doc.RootElement.Clone();
    }

    /// <summary>First 12 hex characters of the token's SHA-256: the short hash the logs carry.</summary>
    public static string ShortHash(string token) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(token)))[..12];

    /// <summary>The plugin's log record (kong.log.set_serialize_value under <paramref name="field"/>).</summary>
    public static Dictionary<string, object?> Record(SimResult r, string field = "gitlab_ci")
    {
        Assert.True(r.SerializeValues.TryGetValue(field, out var v), $"no serialize value '{field}': {r}");
        return Assert.IsType<Dictionary<string, object?>>(v);
    }

    public static string? Str(Dictionary<string, object?> record, string key) => record.TryGetValue(key, out var v) ? v as string : null;

    /// <summary>Neither the token nor its signature appears in the logs, the log record, the upstream request's identity or the response.</summary>
    public static void NoTokenLeak(SimResult r, string token)
    {
        var needles = new List<string> { token };
        var parts = token.Split('.');
        if (parts.Length == 3 && parts[2].Length >= 16) needles.Add(parts[2]);
        if (parts.Length >= 2 && parts[1].Length >= 16) needles.Add(parts[1]);
        var haystacks = new List<string>();
        haystacks.AddRange(r.Logs.Select(l => l.Message));
        haystacks.AddRange(r.KongLog);
        haystacks.Add(Flatten(r.SerializeValues));
        if (r.Exit is { } e)
        {
            haystacks.Add(e.BodyText);
            haystacks.AddRange(e.Headers.Select(h => h.Value));
        }
        foreach (var n in needles)
            foreach (var h in haystacks)
                Assert.DoesNotContain(n, h, StringComparison.Ordinal);
    }

    public static string Flatten(object? v) => v switch
    {
        null => "nil",
        string s => s,
        Dictionary<string, object?> d => "{" + string.Join(",", d.Select(kv => kv.Key + "=" + Flatten(kv.Value))) + "}",
        List<object?> l => "[" + string.Join(",", l.Select(Flatten)) + "]",
        IEnumerable<KeyValuePair<string, object?>> d => "{" + string.Join(",", d.Select(kv => kv.Key + "=" + Flatten(kv.Value))) + "}",
        _ => Convert.ToString(v, CultureInfo.InvariantCulture) ?? "",
    };

    /// <summary>The plugin's one notice line about the request.</summary>
    public static string Notice(SimResult r, string contains)
    {
        var lines = r.Logs.Where(l => l.Message.Contains(contains, StringComparison.Ordinal)).ToList();
        Assert.True(lines.Count == 1, $"expected one log line containing '{contains}', got: {string.Join(" | ", r.Logs.Select(l => l.Level + ": " + l.Message))}");
        return lines[0].Message;
    }
}
