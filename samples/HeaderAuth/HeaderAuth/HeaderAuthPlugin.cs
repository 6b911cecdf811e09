using System.Security.Cryptography;
using System.Text;
using Kong.PluginServer;
using Kong.PluginServer.Pdk;
using Kong.PluginServer.Plugins;

namespace HeaderAuth;

/// <summary>
/// API-key authentication in two phases. Access: the key in a request header is looked up by its SHA-256 (the config
/// never holds a key itself), the Kong consumer it names is loaded and authenticated with a credential derived from
/// the key's hash, so stock plugins (acl, rate-limiting) see the consumer; the key is hidden from the upstream; the
/// consumer's name is left in <c>kong.ctx.shared</c>. Log: one notice line per request with that name and the status.
/// </summary>
public sealed class HeaderAuthPlugin : KongPlugin<HeaderAuthConfig>
{
    internal const string SharedConsumerKey = "header_auth.consumer";

    public override string Name => "header-auth";
    public override string Version => "0.1.0";
    public override int Priority => 1250;   // with Kong's key-auth: before acl (950) and rate-limiting (910)
    public override KongPhase Phases => KongPhase.Access | KongPhase.Log;

    protected override IPluginHandler CreateHandler(HeaderAuthConfig config) => new Handler(config);

    /// <summary>The lower-case hex SHA-256 of a key: what <see cref="HeaderAuthConfig.Keys"/> maps.</summary>
    public static string Hash(string key) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)));

    private sealed class Handler(HeaderAuthConfig config) : PluginHandler
    {
        private static readonly Dictionary<string, string> Json = new() { ["Content-Type"] = "application/json" };

        public override async ValueTask AccessAsync(KongPdk kong)
        {
            string? key = await kong.Request.GetHeaderAsync(config.Header);
            string? hash = string.IsNullOrEmpty(key) ? null : Hash(key);
            string? username = hash is null ? null : config.Keys.GetValueOrDefault(hash);
            if (username is null && config.Anonymous is null)
            {
                await kong.Response.ExitAsync(401, """{"message":"missing or unknown API key"}""", Json);
                return;
            }
            var consumer = await kong.Client.LoadConsumerAsync(username ?? config.Anonymous!, byUsername: true);
            if (consumer is null)
            {
                // a key mapped to a consumer Kong does not have is a config error: fail closed, say why in Kong's log
                await kong.Log.ErrAsync($"header-auth: consumer '{username ?? config.Anonymous}' not found");
                await kong.Response.ExitAsync(401, """{"message":"missing or unknown API key"}""", Json);
                return;
            }
            var credential = username is null ? null : new KongCredential("key-" + hash![..32], consumer.Id);
            await kong.Client.AuthenticateAsync(consumer, credential);
            if (config.HideCredentials && key is not null) await kong.ServiceRequest.ClearHeaderAsync(config.Header);
            await kong.ServiceRequest.SetHeaderAsync("x-consumer-username", consumer.Username ?? consumer.Id);
            if (username is null) await kong.ServiceRequest.SetHeaderAsync("x-anonymous-consumer", "true");
            else await kong.ServiceRequest.ClearHeaderAsync("x-anonymous-consumer");
            await kong.Ctx.SetSharedAsync(SharedConsumerKey, consumer.Username ?? consumer.Id);
        }

        public override async ValueTask LogAsync(KongPdk kong)
        {
            var who = kong.Ctx.GetSharedStringAsync(SharedConsumerKey);   // both reads leave in one write
            var status = kong.Response.GetStatusAsync();
            await kong.Log.NoticeAsync($"header-auth: consumer={await who ?? "-"} status={await status}");
        }
    }
}

/// <summary>The plugin's config (its Kong schema and reader are generated).</summary>
[KongConfig]
public sealed partial class HeaderAuthConfig
{
    [KongField(Default = "x-api-key", LenMin = 1, Description = "request header carrying the API key")]
    public string Header { get; set; }

    [KongField(DefaultJson = "{}", KeyLenMin = 64, ValueLenMin = 1,
        Description = "lower-case hex SHA-256 of each accepted key -> the username of the Kong consumer it authenticates")]
    public Dictionary<string, string> Keys { get; set; }

    [KongField(Default = true, Description = "remove the key header before proxying")]
    public bool HideCredentials { get; set; }

    [KongField(LenMin = 1, Description = "username of the consumer for requests without a known key (unset: 401)")]
    public string? Anonymous { get; set; }
}
