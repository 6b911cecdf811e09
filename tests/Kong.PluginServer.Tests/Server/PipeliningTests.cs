using Kong.PluginServer.Pdk;
using Kong.PluginServer.Plugins;
using Kong.PluginServer.Testing;

namespace Kong.PluginServer.Tests.Server;

/// <summary>ProtoBuf:1 pipelining: queued calls leave together; MsgPack:1 moves the same handler one call per RPC.</summary>
public class PipeliningTests
{
    /// <summary>An auth-style access handler: three reads started together, a decision, then only writes (or an exit).</summary>
    private static async ValueTask ReadDecideWrite(KongPhase phase, KongPdk kong)
    {
        if (phase != KongPhase.Access) return;
        var headersCall = kong.Request.GetHeadersAsync();
        var pathCall = kong.Request.GetPathAsync();
        var methodCall = kong.Request.GetMethodAsync();
        var headers = await headersCall;
        var path = await pathCall;
        var method = await methodCall;
        if (headers.First("x-deny") is not null)
        {
            await kong.Response.ExitAsync(403, """{"message":"denied"}""", new Dictionary<string, string> { ["Content-Type"] = "application/json" });
            return;
        }
        await kong.ServiceRequest.ClearHeaderAsync("authorization");
        await kong.ServiceRequest.SetHeaderAsync("x-user", headers.First("x-user") ?? "anonymous");
        await kong.ServiceRequest.SetHeaderAsync("x-route", method + " " + path);
        await kong.Ctx.SetSharedAsync("authenticated", true);
        await kong.Log.SetSerializeValueAsync("auth.user", headers.First("x-user"));
        await kong.Log.InfoAsync("allowed ", path);
    }

    /// <summary>The same reads, each awaited before the next is made: every await is a round trip.</summary>
    private static async ValueTask ReadOneByOne(KongPhase phase, KongPdk kong)
    {
        if (phase != KongPhase.Access) return;
        var user = await kong.Request.GetHeaderAsync("x-user");
        var path = await kong.Request.GetPathAsync();
        var method = await kong.Request.GetMethodAsync();
        await kong.ServiceRequest.SetHeaderAsync("x-route", $"{user} {method} {path}");
    }

    private static SimRequest Allowed(int i) => new()
    {
        Method = "POST", Path = $"/deploy/{i}",
        Headers = { ["authorization"] = "Bearer t", ["x-user"] = $"u{i}" },
    };

    private static void AssertAllowed(SimResult r, int i)
    {
        Assert.True(r.Outcome == SimOutcome.Completed, r.ToString());
        Assert.Null(r.UpstreamHeaders["authorization"]);
        Assert.Equal($"u{i}", r.UpstreamHeaders["x-user"]);
        Assert.Equal($"POST /deploy/{i}", r.UpstreamHeaders["x-route"]);
        Assert.Equal(true, r.CtxShared["authenticated"]);
        Assert.Equal($"u{i}", r.SerializeValues["auth.user"]);
        Assert.Equal(new SimLogLine("info", $"allowed /deploy/{i}"), Assert.Single(r.Logs));
        Assert.Equal(9, r.PdkCalls.Count);
        Assert.Equal(9, r.RoundTrips); // Kong still answers every call
    }

    [Fact]
    public async Task ProtoBuf_read_decide_write_costs_two_server_writes_per_event()
    {
        var plugin = new ScriptPlugin { Script = ReadDecideWrite };
        await using var host = T.Host(plugin);
        var entity = host.Kong.AddPlugin("{}");
        var worker = host.Kong.Worker(0);
        AssertAllowed(await worker.RunAsync(entity, "access", Allowed(0)).Within(), 0); // (starts the instance)

        for (int i = 1; i <= 5; i++)
        {
            long before = host.Server.EventWrites;
            var r = await worker.RunAsync(entity, "access", Allowed(i)).Within();
            AssertAllowed(r, i);
            // one write for the three reads, one for the six writes + end of event + RpcReturn
            Assert.Equal(2, host.Server.EventWrites - before);
        }

        long beforeDeny = host.Server.EventWrites;
        var denied = await worker.RunAsync(entity, "access", new SimRequest { Headers = { ["x-deny"] = "1" } }).Within();
        Assert.Equal(SimOutcome.Exited, denied.Outcome);
        Assert.Equal(403, denied.Status);
        Assert.Equal(4, denied.PdkCalls.Count);
        Assert.Equal(2, host.Server.EventWrites - beforeDeny); // the reads, then the exit
        Assert.Equal(1, worker.ConnectionsOpened); // every event on the same pooled connection
    }

    [Fact]
    public async Task ProtoBuf_each_await_of_an_unqueued_read_is_a_round_trip()
    {
        var plugin = new ScriptPlugin { Script = ReadOneByOne };
        await using var host = T.Host(plugin);
        var entity = host.Kong.AddPlugin("{}");
        var worker = host.Kong.Worker(0);
        await worker.RunAsync(entity, "access", Allowed(0)).Within();
        long before = host.Server.EventWrites;
        var r = await worker.RunAsync(entity, "access", Allowed(1)).Within();
        Assert.Equal("u1 POST /deploy/1", r.UpstreamHeaders["x-route"]);
        Assert.Equal(4, host.Server.EventWrites - before); // three awaited reads + the final write
    }

    [Fact]
    public async Task MsgPack_runs_the_same_handler_one_call_per_rpc()
    {
        var plugin = new ScriptPlugin { Script = ReadDecideWrite };
        await using var host = T.Host(plugin, KongProtocol.MsgPack);
        var entity = host.Kong.AddPlugin("{}");
        var worker = host.Kong.Worker(0);
        AssertAllowed(await worker.RunAsync(entity, "access", Allowed(0)).Within(), 0);

        for (int i = 1; i <= 3; i++)
        {
            long before = host.Server.EventWrites;
            var r = await worker.RunAsync(entity, "access", Allowed(i)).Within();
            AssertAllowed(r, i);
            // HandleEvent, then one Step per call: each answered with the next callback, the last with "ret"
            Assert.Equal(10, r.Rpcs.Count);
            Assert.Equal("plugin.HandleEvent", r.Rpcs[0].Command);
            Assert.All(r.Rpcs.Skip(1), rpc => Assert.StartsWith("plugin.Step", rpc.Command));
            Assert.Equal(10, host.Server.EventWrites - before);
        }

        long beforeDeny = host.Server.EventWrites;
        var denied = await worker.RunAsync(entity, "access", new SimRequest { Headers = { ["x-deny"] = "1" } }).Within();
        Assert.Equal(SimOutcome.Exited, denied.Outcome);
        Assert.Equal(403, denied.Status);
        Assert.Equal(4, denied.Rpcs.Count);                     // HandleEvent + three Steps; the exit is never answered
        Assert.Equal(4, host.Server.EventWrites - beforeDeny);
        await T.Until(() => host.Server.InFlightEvents == 0, "the exited event is over");
    }
}
