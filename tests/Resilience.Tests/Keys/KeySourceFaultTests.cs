using System.Collections.Concurrent;
using GitLabCiAuth.Testing;
using Kong.PluginServer.Testing;
using Resilience.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Resilience.Tests.Keys;

/// <summary>
/// Faults at the key source under concurrent load (in-process server, manual clock): the issuer down, slow, hanging,
/// answering 500, garbage or a huge body, a key set without the needed kid, a rotation in the middle of traffic.
/// Oracle over every request: an allow only ever carries a genuine token signed by a key GitLab published (after a
/// rotation's refetch: the new key); fetches stay within one per cooldown; a fetch timeout bounds every wait.
/// </summary>
public sealed class KeySourceFaultTests(ITestOutputHelper output)
{
    private const int FetchTimeoutMs = 500;
    /// <summary>"Did not hang" slack over the configured fetch bound (scheduling on a shared 2-core box, the simulator).</summary>
    private static readonly TimeSpan Slack = TimeSpan.FromSeconds(5);
    private static TimeSpan HoldBound => TimeSpan.FromMilliseconds(FetchTimeoutMs) + Slack;

    public static TheoryData<KongProtocol> Protocols => [KongProtocol.ProtoBuf, KongProtocol.MsgPack];

    private static async Task<(string Kind, string Token, SimResult Result, TimeSpan Took)[]> BurstAsync(KeyRig rig, Kong.PluginServer.Testing.PluginEntity entity,
        IEnumerable<(string Kind, string Token)> requests)
    {
        var list = requests.ToArray();
        return await Task.WhenAll(list.Select((x, i) => Task.Run(async () =>
        {
            var (r, took) = await rig.RunAsync(entity, x.Token, worker: i % rig.Kong.WorkerCount);
            return (x.Kind, x.Token, r, took);
        })));
    }

    private static string KidOf(string token) =>
        System.Text.Json.JsonDocument.Parse(System.Buffers.Text.Base64Url.DecodeFromChars(token.Split('.')[0])).RootElement.GetProperty("kid").GetString()!;

    public static TheoryData<FakeGitLabFault> StartFaults =>
    [
        FakeGitLabFault.Down, FakeGitLabFault.Status500, FakeGitLabFault.Garbage, FakeGitLabFault.HugeBody,
        FakeGitLabFault.Hang, FakeGitLabFault.DiscoveryPointsElsewhere,
    ];

    [Theory]
    [MemberData(nameof(StartFaults))]
    public async Task Issuer_faulty_at_start_under_load_is_503_for_everyone_with_at_most_one_fetch_per_cooldown(FakeGitLabFault fault)
    {
        await using var rig = KeyRig.Start();
        rig.GitLab.SetFault(fault);
        var entity = rig.Add(c => { c["jwks_fetch_timeout_ms"] = FetchTimeoutMs; c["jwks_refetch_cooldown_seconds"] = 30; });

        var first = await BurstAsync(rig, entity, Enumerable.Range(0, 48).Select(i => ("genuine", rig.Minter.Mint())));
        foreach (var x in first)
        {
            Assert.Equal("keys_unavailable", KeyRig.Outcome(x.Result));
            Assert.Equal(503, x.Result.Status);
            Assert.True(x.Took <= HoldBound, $"a request was held {x.Took} (fetch bound {FetchTimeoutMs} ms)");
        }
        int contacts = rig.GitLab.Connections;
        Assert.InRange(contacts, 1, 2); // the first fetch: discovery (+ keys)

        rig.Time.AdvanceSeconds(20); // inside the cooldown: no new attempt however many requests come
        var second = await BurstAsync(rig, entity, Enumerable.Range(0, 48).Select(i => ("genuine", rig.Minter.Mint())));
        Assert.All(second, x => Assert.Equal("keys_unavailable", KeyRig.Outcome(x.Result)));
        Assert.Equal(contacts, rig.GitLab.Connections);

        rig.GitLab.SetFault(FakeGitLabFault.None);
        rig.Time.AdvanceSeconds(11);
        var healed = await BurstAsync(rig, entity, Enumerable.Range(0, 48).Select(i => ("genuine", rig.Minter.Mint())));
        Assert.All(healed, x => Assert.Equal("allowed", KeyRig.Outcome(x.Result)));
        Assert.Equal(1, rig.GitLab.KeysRequests); // the faulty attempt never got to the key set; healed: exactly one fetch
        output.WriteLine($"{fault}: {first.Length + second.Length} requests refused 503 with {contacts} issuer contact(s); max hold {first.Max(x => x.Took).TotalMilliseconds:F0} ms; healed: {healed.Length} allowed after one fetch");
    }

    [Fact]
    public async Task Slow_issuer_at_start_one_fetch_serves_every_waiting_request_and_a_slower_one_is_cut_at_the_bound()
    {
        await using var rig = KeyRig.Start();
        rig.GitLab.Slow(TimeSpan.FromMilliseconds(300));
        var entity = rig.Add(c => c["jwks_fetch_timeout_ms"] = 5000);
        var waited = await BurstAsync(rig, entity, Enumerable.Range(0, 64).Select(i => ("genuine", rig.Minter.Mint())));
        Assert.All(waited, x => Assert.Equal("allowed", KeyRig.Outcome(x.Result)));
        Assert.Equal(1, rig.GitLab.DiscoveryRequests); // single flight: every request joined the one fetch
        Assert.Equal(1, rig.GitLab.KeysRequests);

        await using var rig2 = KeyRig.Start();
        rig2.GitLab.Slow(TimeSpan.FromSeconds(3));
        var entity2 = rig2.Add(c => c["jwks_fetch_timeout_ms"] = FetchTimeoutMs);
        var cut = await BurstAsync(rig2, entity2, Enumerable.Range(0, 64).Select(i => ("genuine", rig2.Minter.Mint())));
        foreach (var x in cut)
        {
            Assert.Equal("keys_unavailable", KeyRig.Outcome(x.Result));
            Assert.True(x.Took <= HoldBound, $"held {x.Took}");
        }
        output.WriteLine($"slow 300 ms: 64 allowed after one fetch (max {waited.Max(x => x.Took).TotalMilliseconds:F0} ms); slow 3 s with a {FetchTimeoutMs} ms bound: 64 x 503, max hold {cut.Max(x => x.Took).TotalMilliseconds:F0} ms");
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task Rotation_in_the_middle_of_traffic_one_refetch_then_new_tokens_pass_and_old_ones_are_refused_even_cached(KongProtocol protocol)
    {
        await using var rig = KeyRig.Start(protocol);
        var entity = rig.Add(c => c["jwks_refetch_cooldown_seconds"] = 30);
        var oldKey = rig.GitLab.CiKey;
        var oldTokens = Enumerable.Range(0, 6).Select(_ => rig.Minter.Mint()).ToArray();
        var all = new ConcurrentQueue<(string Phase, string Kind, string Token, SimResult Result)>();

        IEnumerable<(string, string)> Mix(int genuine, bool randomKids) =>
            Enumerable.Range(0, genuine).Select(_ => ("genuine", rig.Minter.Mint()))
                .Concat(oldTokens.Select(t => ("old", t)))
                .Concat(Enumerable.Range(0, 4).Select(_ => ("forged", rig.Minter.SignedByUnknownKeyReusingKid())))
                .Concat(Enumerable.Range(0, 2).Select(_ => ("alg-none", rig.Minter.AlgNone())))
                .Concat(randomKids ? Enumerable.Range(0, 4).Select(_ => ("random-kid", rig.Minter.WithRandomKid())) : []);

        foreach (var x in await BurstAsync(rig, entity, Mix(24, randomKids: false))) all.Enqueue(("before", x.Kind, x.Token, x.Result));
        Assert.Equal(1, rig.GitLab.KeysRequests);

        var newKey = rig.Rotate(); // GitLab replaces the CI key, no overlap
        foreach (var x in await BurstAsync(rig, entity, Mix(48, randomKids: true))) all.Enqueue(("burst", x.Kind, x.Token, x.Result));
        Assert.Equal(2, rig.GitLab.KeysRequests); // exactly one refetch for the whole concurrent burst

        foreach (var x in await BurstAsync(rig, entity, Mix(24, randomKids: true))) all.Enqueue(("after", x.Kind, x.Token, x.Result));
        Assert.Equal(2, rig.GitLab.KeysRequests); // nothing more within the cooldown

        foreach (var (phase, kind, token, r) in all)
        {
            string outcome = KeyRig.Outcome(r);
            if (outcome == "allowed")
            {
                // never allowed wrongly: a genuine token of a published key; once the refetch happened, only the new key
                Assert.True(kind is "genuine" or "old", $"{phase}: a {kind} token was allowed");
                Assert.True(rig.Published.ContainsKey(KidOf(token)), $"{phase}: allowed with an unpublished kid");
                if (phase == "after") Assert.Equal(newKey.Kid, KidOf(token));
            }
            else if (kind == "genuine") Assert.Fail($"{phase}: a genuine token was refused: {outcome}");
            else Assert.True(r.Status == 401, $"{phase}: {kind}: {outcome} {r}");
            if (phase == "after" && kind == "old") Assert.Equal("unknown_key", outcome); // old key gone: refused though cached
            if (phase == "before" && kind == "old") Assert.Equal("allowed", outcome);
        }
        var counts = all.GroupBy(x => (x.Phase, x.Kind, Outcome: KeyRig.Outcome(x.Result))).Select(g => $"{g.Key.Phase}/{g.Key.Kind}/{g.Key.Outcome}={g.Count()}");
        output.WriteLine($"{protocol}: old kid {oldKey.Kid[..8]}.., new kid {newKey.Kid[..8]}..; keys fetched {rig.GitLab.KeysRequests} times; {string.Join(", ", counts.Order())}");
    }

    [Fact]
    public async Task Random_kids_under_load_cause_at_most_one_fetch_per_cooldown_window()
    {
        await using var rig = KeyRig.Start();
        var entity = rig.Add(c => c["jwks_refetch_cooldown_seconds"] = 30);
        Assert.Equal("allowed", KeyRig.Outcome((await rig.RunAsync(entity, rig.Minter.Mint())).Result));
        int start = rig.GitLab.KeysRequests;
        var perWindow = new List<int>();
        for (int window = 0; window < 5; window++)
        {
            int before = rig.GitLab.KeysRequests;
            for (int burst = 0; burst < 3; burst++) // at +0, +10 and +20 s of the window
            {
                var results = await BurstAsync(rig, entity, Enumerable.Range(0, 40).Select(_ => ("random-kid", rig.Minter.WithRandomKid()))
                    .Concat(Enumerable.Range(0, 8).Select(_ => ("genuine", rig.Minter.Mint()))));
                foreach (var x in results)
                    Assert.Equal(x.Kind == "genuine" ? "allowed" : "unknown_key", KeyRig.Outcome(x.Result));
                rig.Time.AdvanceSeconds(10);
            }
            perWindow.Add(rig.GitLab.KeysRequests - before);
        }
        output.WriteLine($"fetches per 30 s window under 120 random kids each: {string.Join(", ", perWindow)}");
        Assert.All(perWindow, n => Assert.InRange(n, 0, 1));
        Assert.True(rig.GitLab.KeysRequests - start >= 1, "unknown kids never triggered a refetch");
    }

    [Fact]
    public async Task Key_set_without_the_needed_kid_is_one_refetch_then_unknown_key_and_the_kid_never_triggers_again_until_the_set_changes()
    {
        await using var rig = KeyRig.Start();
        var entity = rig.Add(c => { c["jwks_refetch_cooldown_seconds"] = 30; c["jwks_refresh_seconds"] = 60; });
        Assert.Equal("allowed", KeyRig.Outcome((await rig.RunAsync(entity, rig.Minter.Mint())).Result));
        var future = MinterKey.CreateRsa(2048, kid: "gitlab-ci-next");
        string Future() => rig.Minter.Ci().SignWith(future).Build();

        var first = await BurstAsync(rig, entity, Enumerable.Range(0, 32).Select(_ => ("future", Future())));
        Assert.All(first, x => Assert.Equal("unknown_key", KeyRig.Outcome(x.Result)));
        Assert.Equal(2, rig.GitLab.KeysRequests);           // one refetch for the unknown kid

        rig.Time.AdvanceSeconds(31);                         // past the cooldown: the kid is remembered as unknown
        var again = await BurstAsync(rig, entity, Enumerable.Range(0, 32).Select(_ => ("future", Future())));
        Assert.All(again, x => Assert.Equal("unknown_key", KeyRig.Outcome(x.Result)));
        Assert.Equal(2, rig.GitLab.KeysRequests);

        rig.GitLab.AddJwksEntry(future.PublicJwkJson());     // GitLab publishes it; the refresh picks it up
        rig.Time.AdvanceSeconds(60);
        await Bounds.Until(() => rig.GitLab.KeysRequests == 3, "the background refresh");
        await Bounds.Until(() => KeyRig.Outcome(rig.RunAsync(entity, Future()).GetAwaiter().GetResult().Result) == "allowed", "the refreshed set to be used");
    }

    [Fact]
    public async Task Fetch_timeout_bounds_requests_waiting_for_a_rotation_refetch_and_known_kids_are_not_held()
    {
        await using var rig = KeyRig.Start();
        var entity = rig.Add(c => { c["jwks_fetch_timeout_ms"] = FetchTimeoutMs; c["jwks_refetch_cooldown_seconds"] = 30; });
        var oldToken = rig.Minter.Mint();
        Assert.Equal("allowed", KeyRig.Outcome((await rig.RunAsync(entity, oldToken)).Result));

        rig.GitLab.SetFault(FakeGitLabFault.Hang, FakeGitLab.KeysPath);
        rig.Rotate();
        var results = await BurstAsync(rig, entity, Enumerable.Range(0, 32).Select(_ => ("new", rig.Minter.Mint()))
            .Concat(Enumerable.Range(0, 16).Select(_ => ("old", oldToken))));
        foreach (var x in results)
        {
            Assert.True(x.Took <= HoldBound, $"{x.Kind}: held {x.Took}");
            // the new key cannot be fetched: refused (never allowed); the old key is still in the last good set
            Assert.Equal(x.Kind == "new" ? "unknown_key" : "allowed", KeyRig.Outcome(x.Result));
        }

        rig.GitLab.SetFault(FakeGitLabFault.None);
        rig.Time.AdvanceSeconds(31);
        Assert.Equal("allowed", KeyRig.Outcome((await rig.RunAsync(entity, rig.Minter.Mint())).Result));
        Assert.Equal("unknown_key", KeyRig.Outcome((await rig.RunAsync(entity, oldToken)).Result));
        output.WriteLine($"max hold during a hanging refetch: new kid {results.Where(x => x.Kind == "new").Max(x => x.Took).TotalMilliseconds:F0} ms, " +
                         $"known kid {results.Where(x => x.Kind == "old").Max(x => x.Took).TotalMilliseconds:F0} ms (bound {FetchTimeoutMs} ms)");
    }

    public static TheoryData<FakeGitLabFault> BrokenRefetch => [FakeGitLabFault.Status500, FakeGitLabFault.Garbage, FakeGitLabFault.HugeBody, FakeGitLabFault.Down];

    [Theory]
    [MemberData(nameof(BrokenRefetch))]
    public async Task Broken_issuer_during_a_rotation_keeps_the_last_good_set_and_never_allows_the_unknown_key(FakeGitLabFault fault)
    {
        await using var rig = KeyRig.Start();
        var entity = rig.Add(c => { c["jwks_fetch_timeout_ms"] = FetchTimeoutMs; c["jwks_refetch_cooldown_seconds"] = 30; });
        var oldToken = rig.Minter.Mint();
        Assert.Equal("allowed", KeyRig.Outcome((await rig.RunAsync(entity, oldToken)).Result));

        rig.GitLab.SetFault(fault);
        rig.Rotate();
        int contacts = rig.GitLab.Connections;
        var results = await BurstAsync(rig, entity, Enumerable.Range(0, 32).Select(_ => ("new", rig.Minter.Mint()))
            .Concat(Enumerable.Range(0, 16).Select(_ => ("old", oldToken))));
        foreach (var x in results) Assert.Equal(x.Kind == "new" ? "unknown_key" : "allowed", KeyRig.Outcome(x.Result));
        Assert.InRange(rig.GitLab.Connections - contacts, 1, 2); // one refetch attempt (discovery + keys at most)

        rig.GitLab.SetFault(FakeGitLabFault.None);
        rig.Time.AdvanceSeconds(31);
        Assert.Equal("allowed", KeyRig.Outcome((await rig.RunAsync(entity, rig.Minter.Mint())).Result));
        Assert.Equal("unknown_key", KeyRig.Outcome((await rig.RunAsync(entity, oldToken)).Result));
    }
}
