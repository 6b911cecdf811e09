using Kong.PluginServer.Pdk;
using Kong.PluginServer.Plugins;
using Kong.PluginServer.Testing;
using Kong.PluginServer.Tests.Server;

namespace Kong.PluginServer.Tests.Pdk;

/// <summary>
/// A PDK call Kong refuses in the phase (docs/protocol.md#phase-checks) raises on the Kong side: no reply, the request fails
/// and Kong drops the connection. Over ProtoBuf:1 the plugin sees the event aborted and the server cleans up.
/// </summary>
public class PhaseCheckTests
{
    [Fact]
    public async Task A_response_getter_in_access_fails_the_request_and_aborts_the_handler()
    {
        Exception? saw = null;
        string? header = null;
        var plugin = new ScriptPlugin
        {
            Script = async (phase, kong) =>
            {
                if (phase != KongPhase.Access) return;
                var headerCall = kong.Request.GetHeaderAsync("x-a"); // queued before the refused call
                try { await kong.Response.GetStatusAsync(); }
                catch (Exception e) { saw = e; }
                header = await headerCall; // Kong answered this one before it raised
            },
        };
        await using var host = T.Host(plugin);
        var entity = host.Kong.AddPlugin("{}");
        var r = await host.Kong.Worker(0).RunAsync(entity, "access", new SimRequest { Headers = { ["x-a"] = "1" } }).Within();
        Assert.Equal(SimOutcome.Failed, r.Outcome);
        Assert.Equal(500, r.Status);
        Assert.Contains("cannot be called in access phase", r.Error);
        Assert.Equal(["kong.request.get_header", "kong.response.get_status"], r.PdkCalls);
        Assert.Empty(r.Logs); // Kong is gone: no kong.log.err, no exit
        await T.Until(() => host.Server.InFlightEvents == 0 && host.Server.ActiveConnections == 0, "the aborted event is cleaned up");
        Assert.IsType<KongAbortedException>(saw);
        Assert.Equal("1", header);

        // the next request is served normally
        plugin.Script = async (phase, kong) => { if (phase == KongPhase.Access) await kong.ServiceRequest.SetHeaderAsync("x-ok", "1"); };
        r = await host.Kong.Worker(0).RunAsync(entity, "access").Within();
        Assert.Equal("1", r.UpstreamHeaders["x-ok"]);
    }

    [Fact]
    public async Task A_setter_in_the_log_phase_fails_open_and_the_server_cleans_up()
    {
        var plugin = new ScriptPlugin
        {
            Script = async (phase, kong) =>
            {
                if (phase == KongPhase.Log) await kong.ServiceRequest.SetHeaderAsync("x-late", "1"); // pipelined: completes at once
            },
        };
        await using var host = T.Host(plugin);
        var entity = host.Kong.AddPlugin("{}");
        var r = await host.Kong.Worker(0).RunAsync(entity, "log").Within();
        Assert.Equal(SimOutcome.FailedOpen, r.Outcome); // the response is already sent
        Assert.Contains("cannot be called in log phase", r.Error);
        Assert.Equal(["kong.service.request.set_header"], r.PdkCalls);
        await T.Until(() => host.Server.InFlightEvents == 0 && host.Server.ActiveConnections == 0, "the aborted event is cleaned up");
    }
}
