using Kong.PluginServer;
using Kong.PluginServer.Pdk;
using Kong.PluginServer.Plugins;

namespace KongPlugin1;

/// <summary>
/// Greets the caller upstream: reads a request header and sets an upstream header from it. A request without the
/// header is answered 401 when <see cref="PluginConfig.Required"/> is set.
/// </summary>
public sealed class Plugin : KongPlugin<PluginConfig>
{
    public override string Name => "my-plugin";
    public override string Version => "0.1.0";
    public override int Priority => 1000;                 // runs before plugins with a lower priority
    public override KongPhase Phases => KongPhase.Access; // the phases Kong sends events for

    protected override IPluginHandler CreateHandler(PluginConfig config) => new Handler(config);

    /// <summary>One handler per distinct config, shared by every request of the routes that use it.</summary>
    private sealed class Handler(PluginConfig config) : PluginHandler
    {
        public override async ValueTask AccessAsync(KongPdk kong)
        {
            string? user = await kong.Request.GetHeaderAsync(config.RequestHeader);
            if (string.IsNullOrEmpty(user))
            {
                if (config.Required)
                    await kong.Response.ExitAsync(401, """{"message":"who are you?"}""");
                return;
            }
            await kong.ServiceRequest.SetHeaderAsync(config.UpstreamHeader, $"{config.Greeting}, {user}");
        }
    }
}

/// <summary>The plugin's config: its Kong schema (-dump) and its reading are generated from this class.</summary>
[KongConfig]
public sealed partial class PluginConfig
{
    [KongField(Default = "x-user", LenMin = 1, Description = "request header naming the caller")]
    public string RequestHeader { get; set; } = "x-user";

    [KongField(Default = "x-greeting", LenMin = 1, Description = "header set on the upstream request")]
    public string UpstreamHeader { get; set; } = "x-greeting";

    [KongField(Default = "hello", Description = "greeting put before the caller's name")]
    public string Greeting { get; set; } = "hello";

    [KongField(Default = false, Description = "answer 401 to a request without the header")]
    public bool Required { get; set; }
}
