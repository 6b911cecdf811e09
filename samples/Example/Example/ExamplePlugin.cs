using System.Runtime.CompilerServices;
using Kong.PluginServer;
using Kong.PluginServer.Pdk;
using Kong.PluginServer.Plugins;

namespace Example;

/// <summary>
/// The smallest useful plugin: access reads two request headers and sets one upstream header (3 PDK calls, 2 socket
/// round trips); a request whose header says "deny" is answered 403. gitlab-ci-auth's binary serves it with
/// `--plugin example` as the protocol floor for benchmarks.
/// </summary>
public sealed class ExamplePlugin : KongPlugin<ExampleConfig>
{
    public override string Name => "example";
    public override string Version => "0.1.0";
    public override int Priority => 1000;
    public override KongPhase Phases => KongPhase.Access;
    protected override IPluginHandler CreateHandler(ExampleConfig config) => new Handler(config);

    private sealed class Handler(ExampleConfig config) : PluginHandler
    {
        private static readonly Dictionary<string, string> Json = new() { ["Content-Type"] = "application/json" };

        [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))] // the suspended state machine is pooled
        public override async ValueTask AccessAsync(KongPdk kong)
        {
            var id = kong.Request.GetHeaderAsync(config.RequestHeader);   // both reads leave in one write
            var host = kong.Request.GetHeaderAsync("host");
            string value = await id;
            if (value == "deny") { await kong.Response.ExitAsync(403, """{"message":"denied by example"}""", Json); return; }
            await kong.ServiceRequest.SetHeaderAsync(config.UpstreamHeader, $"{config.Greeting} {value}@{await host}");
            if (config.ReadBody) await kong.ServiceRequest.SetHeaderAsync("x-body-bytes", BodySize(await kong.Request.GetRawBodyAsync()));
        }

        private static string BodySize(KongRawBody body) => body.Content?.Length.ToString() ?? (body.FilePath is null ? "error" : "file");
    }
}

/// <summary>The example's config: the schema, the defaults and the reader are generated from these declarations.</summary>
[KongConfig]
public sealed partial class ExampleConfig
{
    [KongField(Default = "x-request-id", Description = "header read from the request")]
    public string RequestHeader { get; set; }

    [KongField(Default = "x-example", LenMin = 1, Description = "header set upstream")]
    public string UpstreamHeader { get; set; }

    [KongField(Default = "hello", Description = "value prefix")]
    public string Greeting { get; set; }

    [KongField(Default = false, Description = "also read the request body (kong.request.get_raw_body) and send its size upstream as x-body-bytes")]
    public bool ReadBody { get; set; }
}
