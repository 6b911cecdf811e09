using System.Text.Json;
using System.Text.Json.Nodes;
using GitLabCiAuth.Keys;
using GitLabCiAuth.Plugin;
using GitLabCiAuth.Testing;
using Kong.PluginServer.Testing;

namespace Deployment.Tests.Infrastructure;

/// <summary>
/// One gitlab-ci-auth entry of kong.yml served by the real plugin (in-process, <see cref="PluginTestHost"/>) and
/// driven by the Kong simulator. The config is used as written, except that the key source is replaced by a
/// <c>static_jwks</c> holding a test key (nothing is fetched from the configured GitLab); tokens are minted for the
/// configured issuer and first audience with that key.
/// </summary>
public sealed class RouteHarness : IAsyncDisposable
{
    public static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);
    private static readonly Lazy<MinterKey> s_key = new(() => MinterKey.CreateRsa(2048));

    private RouteHarness(KongPluginUse use, JsonObject config, PluginTestHost host, PluginEntity entity, TokenMinter minter)
    {
        Use = use;
        Config = config;
        Host = host;
        Entity = entity;
        Minter = minter;
    }

    public KongPluginUse Use { get; }
    public JsonObject Config { get; }
    public PluginTestHost Host { get; }
    public PluginEntity Entity { get; }
    public TokenMinter Minter { get; }

    /// <summary>The kong.yml config with the key source swapped for the test key.</summary>
    public static JsonObject TestConfig(KongPluginUse use)
    {
        var config = (JsonObject)(use.Config ?? throw new InvalidOperationException($"{use} has no config")).DeepClone();
        config.Remove("jwks_uri");
        config["static_jwks"] = MinterKey.JwksJson(s_key.Value);
        foreach (var issuer in config["issuers"]?.AsArray() ?? [])
        {
            issuer!.AsObject().Remove("jwks_uri");
            issuer["static_jwks"] = MinterKey.JwksJson(s_key.Value);
        }
        return config;
    }

    public static RouteHarness Start(KongPluginUse use)
    {
        var config = TestConfig(use);
        var host = PluginTestHost.Start(new GitLabCiAuthPlugin(new JwksKeyStore()), simulator: new KongSimulatorOptions { Timeout = Bound });
        try
        {
            var entity = host.Kong.AddPlugin(config.ToJsonString(), routeId: use.Route is null ? null : Guid.NewGuid().ToString());
            string issuer = (string)config["issuer"]!;
            string audience = (string)config["audiences"]![0]!;
            return new RouteHarness(use, config, host, entity, new TokenMinter(issuer, s_key.Value, audience));
        }
        catch
        {
            host.DisposeAsync().AsTask().Wait(Bound);
            throw;
        }
    }

    public static RouteHarness ForRoute(string route)
    {
        var use = Deployment.KongYml.Plugins.Single(p => p.Name == Deployment.PluginName && p.Route == route);
        return Start(use);
    }

    /// <summary>One access event: <paramref name="token"/> as a bearer token (none when null).</summary>
    public async Task<SimResult> RunAsync(string? token, string method = "GET", string path = "/")
    {
        var request = new SimRequest { Method = method, Path = path, Host = "api.acme.example" };
        request.Headers["host"] = "api.acme.example";
        if (token is not null) request.Headers["authorization"] = "Bearer " + token;
        using var cts = new CancellationTokenSource(Bound);
        return await Host.Kong.Worker(0).RunAsync(Entity, "access", request, cts.Token).WaitAsync(Bound);
    }

    /// <summary>Minted with the minter's full CI claim set, adjusted by <paramref name="claims"/> (a null value removes the claim).</summary>
    public string Token(IReadOnlyDictionary<string, string?>? claims = null) => Minter.Mint(b =>
    {
        foreach (var (k, v) in claims ?? new Dictionary<string, string?>())
        {
            if (v is null) b.Remove(k);
            else b.Set(k, v);
        }
    });

    public static string? Code(SimResult r)
    {
        if (r.Exit is null) return null;
        using var body = JsonDocument.Parse(r.Exit.BodyText);
        return body.RootElement.GetProperty("code").GetString();
    }

    public static List<string> Groups(SimResult r) =>
        r.NgxCtx.TryGetValue("authenticated_groups", out var g) && g is List<object?> list ? list.Cast<string>().ToList() : [];

    public ValueTask DisposeAsync() => Host.DisposeAsync();
}
