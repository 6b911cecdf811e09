using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json.Nodes;
using GitLabCiAuth.Keys;
using GitLabCiAuth.Plugin;
using GitLabCiAuth.Testing;
using Kong.PluginServer.Testing;
using Resilience.Tests.Infrastructure;

namespace Resilience.Tests.Keys;

/// <summary>
/// The plugin in-process (<see cref="PluginTestHost"/>) with its own fake GitLab, a manual clock for cooldowns,
/// refresh and staleness (fetch timeouts stay on the wall clock: they bound real I/O) and a private key store.
/// </summary>
internal sealed class KeyRig : IAsyncDisposable
{
    public const string Audience = TokenMinter.DefaultAudience;

    private KeyRig(KongProtocol protocol, int workers)
    {
        GitLab = FakeGitLab.Start();
        Time = new ManualTimeProvider(DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.ToUnixTimeSeconds()));
        Store = new JwksKeyStore(Time);
        Minter = new TokenMinter(GitLab, Audience, Time);
        Host = PluginTestHost.Start(new GitLabCiAuthPlugin(Store, Time), protocol, workers, new KongSimulatorOptions { Timeout = Bounds.KongTimeout });
    }

    public static KeyRig Start(KongProtocol protocol = KongProtocol.ProtoBuf, int workers = 2) => new(protocol, workers);

    public FakeGitLab GitLab { get; }
    public ManualTimeProvider Time { get; }
    public JwksKeyStore Store { get; }
    public TokenMinter Minter { get; }
    public PluginTestHost Host { get; }
    public KongSimulator Kong => Host.Kong;

    /// <summary>Every key GitLab's JWKS ever held, by kid (to check that an allowed token was signed by a published key).</summary>
    public ConcurrentDictionary<string, MinterKey> Published { get; } = new();

    public PluginEntity Add(Action<JsonObject>? edit = null)
    {
        var c = new JsonObject
        {
            ["issuer"] = GitLab.Issuer,
            ["audiences"] = new JsonArray(Audience),
            ["allow_insecure_http"] = true,
            ["rules"] = JsonNode.Parse("""[{"name":"any-project","claims":{"project_id":["*"]}}]"""),
        };
        edit?.Invoke(c);
        Published[GitLab.CiKey.Kid] = GitLab.CiKey;
        return Kong.AddPlugin(c.ToJsonString());
    }

    public MinterKey Rotate()
    {
        var k = GitLab.Rotate();
        Published[k.Kid] = k;
        return k;
    }

    /// <summary>One access event with <paramref name="token"/>; returns the result and its wall-clock duration.</summary>
    public async Task<(SimResult Result, TimeSpan Took)> RunAsync(PluginEntity entity, string? token, int worker = 0)
    {
        var r = new SimRequest { Method = "GET", Path = "/deploy" };
        r.Headers["host"] = "api.test";
        if (token is not null) r.Headers["authorization"] = "Bearer " + token;
        var sw = Stopwatch.StartNew();
        var res = await Kong.Worker(worker).RunAsync(entity, "access", r).WaitAsync(Bounds.Hang);
        return (res, sw.Elapsed);
    }

    /// <summary>The code of a refusal, or "allowed".</summary>
    public static string Outcome(SimResult r)
    {
        if (r.Outcome == SimOutcome.Completed && r.Status == 200 && r.Exit is null) return "allowed";
        if (r.Exit is null) return $"failed {r.Status}: {r.Error}";
        using var body = System.Text.Json.JsonDocument.Parse(r.Exit.Body);
        return body.RootElement.GetProperty("code").GetString() ?? "?";
    }

    public async ValueTask DisposeAsync()
    {
        await Host.DisposeAsync();
        Store.Dispose();
        GitLab.Dispose();
    }
}
