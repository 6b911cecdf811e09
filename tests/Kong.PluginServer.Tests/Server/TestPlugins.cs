using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using Kong.PluginServer.Pdk;
using Kong.PluginServer.Plugins;

namespace Kong.PluginServer.Tests.Server;

public sealed class EchoConfig
{
    [JsonPropertyName("header")] public string Header { get; set; } = "x-in";
    [JsonPropertyName("mode")] public string Mode { get; set; } = "echo";
}

[JsonSerializable(typeof(EchoConfig))]
internal sealed partial class EchoJson : JsonSerializerContext;

/// <summary>
/// A plugin whose behaviour the tests steer through its config `mode`: echo (read two headers, set one),
/// exit, throw, after-exit (PDK call after exit), slow (awaits real async work between calls).
/// </summary>
public sealed class EchoPlugin : KongPlugin<EchoConfig>
{
    public override string Name => "echo";
    public override string Version => "1.0.0";
    public override int Priority => 10;
    public override KongPhase Phases => KongPhase.Access | KongPhase.Log;
    public override IReadOnlyList<SchemaField> ConfigFields { get; } =
    [
        Schema.String("header", @default: "x-in"),
        Schema.String("mode", @default: "echo", oneOf: ["echo", "exit", "throw", "after-exit", "slow", "log-phase"]),
    ];
    protected override JsonTypeInfo<EchoConfig> ConfigTypeInfo => EchoJson.Default.EchoConfig;
    public int HandlersCreated;
    public int HandlersDisposed;

    protected override IPluginHandler CreateHandler(EchoConfig config)
    {
        Interlocked.Increment(ref HandlersCreated);
        return new Handler(config, this);
    }

    private sealed class Handler(EchoConfig config, EchoPlugin owner) : PluginHandler
    {
        public override async ValueTask AccessAsync(KongPdk kong)
        {
            switch (config.Mode)
            {
                case "exit":
                    await kong.Response.ExitAsync(418, "teapot", new Dictionary<string, string> { ["Content-Type"] = "text/plain" });
                    return;
                case "throw":
                    await kong.Request.GetHeaderAsync(config.Header);
                    throw new InvalidOperationException("boom");
                case "after-exit":
                    await kong.Response.ExitAsync(401, "no");
                    await kong.ServiceRequest.SetHeaderAsync("x-late", "1");
                    return;
                case "slow":
                {
                    var a = await kong.Request.GetHeaderAsync(config.Header);
                    await Task.Delay(20);
                    var b = await kong.Request.GetPathAsync();
                    await kong.ServiceRequest.SetHeaderAsync("x-out", a + b);
                    return;
                }
                default:
                {
                    var a = kong.Request.GetHeaderAsync(config.Header);
                    var b = kong.Request.GetHeaderAsync("host");
                    await kong.ServiceRequest.SetHeaderAsync("x-out", $"{await a}@{await b}");
                    return;
                }
            }
        }

        public override async ValueTask LogAsync(KongPdk kong)
        {
            var serialized = await kong.Log.SerializeAsync();
            await kong.Log.InfoAsync("serialized", serialized.Length);
        }

        public override void Dispose() => Interlocked.Increment(ref owner.HandlersDisposed);
    }
}
