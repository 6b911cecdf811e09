using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
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

    public override IReadOnlyList<SchemaField> ConfigFields { get; } =
    [
        Schema.String("request_header", @default: "x-request-id", description: "header read from the request"),
        Schema.String("upstream_header", @default: "x-example", lenMin: 1, description: "header set upstream"),
        Schema.String("greeting", @default: "hello", description: "value prefix"),
        Schema.Boolean("read_body", @default: false, description: "also read the request body (kong.request.get_raw_body) and send its size upstream as x-body-bytes"),
    ];

    protected override JsonTypeInfo<ExampleConfig> ConfigTypeInfo => ExampleJson.Default.ExampleConfig;

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

public sealed class ExampleConfig
{
    [JsonPropertyName("request_header")] public string RequestHeader { get; set; } = "x-request-id";
    [JsonPropertyName("upstream_header")] public string UpstreamHeader { get; set; } = "x-example";
    [JsonPropertyName("greeting")] public string Greeting { get; set; } = "hello";
    [JsonPropertyName("read_body")] public bool ReadBody { get; set; }
}

[JsonSerializable(typeof(ExampleConfig))]
internal sealed partial class ExampleJson : JsonSerializerContext;
