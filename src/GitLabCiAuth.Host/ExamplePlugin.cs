using Kong.PluginServer;
using Kong.PluginServer.Pdk;
using Kong.PluginServer.Plugins;

namespace GitLabCiAuth.Host;

/// <summary>
/// The smallest useful plugin, served with `--plugin example`: the protocol floor for benchmarks and a
/// template for plugin authors. Access reads two request headers and sets one upstream header (3 PDK
/// calls); a request whose first header says "deny" is answered 403 instead.
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
        private static readonly Dictionary<string, string> JsonHeaders = new() { ["Content-Type"] = "application/json" };

        // awaits Kong's replies: the suspended state machine is pooled, not allocated per event
        [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder))]
        public override async ValueTask AccessAsync(KongPdk kong)
        {
            var id = kong.Request.GetHeaderAsync(config.RequestHeader);   // both reads leave in one write
            var host = kong.Request.GetHeaderAsync("host");
            string value = await id;
            if (value == "deny")
            {
                await kong.Response.ExitAsync(403, """{"message":"denied by example"}""", JsonHeaders);
                return;
            }
            await kong.ServiceRequest.SetHeaderAsync(config.UpstreamHeader, $"{config.Greeting} {value}@{await host}");
            if (config.ReadBody)
            {
                var body = await kong.Request.GetRawBodyAsync();
                await kong.ServiceRequest.SetHeaderAsync("x-body-bytes", body.Content is { } c ? c.Length.ToString(System.Globalization.CultureInfo.InvariantCulture)
                    : body.FilePath is not null ? "file" : "error");
            }
        }
    }
}

/// <summary>The example's config: each field declared once, here (the schema, the defaults and the reader are generated).</summary>
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
