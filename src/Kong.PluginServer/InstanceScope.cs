using System.Text.Json;

namespace Kong.PluginServer;

/// <summary>
/// What Kong says about the plugin entity an instance serves, from the keys it adds to the instance config
/// (docs/protocol.md#instance-config): the route, service and consumer it is scoped to, the plugin entity id and
/// its instance name. Read once when the instance starts: a handler learns its route without a PDK call per
/// request (kong.router.get_route would cost one). Instances of one config share a handler, so a handler serving
/// several routes sees each event's own scope through <see cref="Pdk.KongPdk.Scope"/>.
/// </summary>
public sealed record InstanceScope(string? RouteId, string? ServiceId, string? ConsumerId, string? PluginId, string? InstanceName)
{
    /// <summary>No scope known (a config without Kong's keys: tests, a handler called outside an event).</summary>
    public static InstanceScope None { get; } = new(null, null, null, null, null);

    /// <summary>
    /// Reads the scope from Kong's config JSON: <c>route_id</c>, <c>service_id</c>, <c>consumer_id</c>, <c>__plugin_id</c>,
    /// <c>plugin_instance_name</c>, and where an id is absent, its segment of <c>__key__</c>
    /// (<c>plugins:&lt;name&gt;:&lt;route_id&gt;:&lt;service_id&gt;:&lt;consumer_id&gt;::&lt;ws_id&gt;</c>). Never throws: what cannot be read is null.
    /// </summary>
    public static InstanceScope Read(ReadOnlySpan<byte> configJson)
    {
        string? route = null, service = null, consumer = null, plugin = null, name = null, key = null;
        try
        {
            var reader = new Utf8JsonReader(configJson, new JsonReaderOptions { MaxDepth = 64 });
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) return None;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                string? field = reader.ValueTextEquals("route_id"u8) ? "r" : reader.ValueTextEquals("service_id"u8) ? "s"
                    : reader.ValueTextEquals("consumer_id"u8) ? "c" : reader.ValueTextEquals("__plugin_id"u8) ? "p"
                    : reader.ValueTextEquals("plugin_instance_name"u8) ? "n" : reader.ValueTextEquals("__key__"u8) ? "k" : null;
                if (!reader.Read()) break;
                if (field is null || reader.TokenType != JsonTokenType.String)
                {
                    reader.Skip();
                    continue;
                }
                string? value = reader.GetString();
                if (string.IsNullOrEmpty(value)) continue;
                switch (field)
                {
                    case "r": route = value; break;
                    case "s": service = value; break;
                    case "c": consumer = value; break;
                    case "p": plugin = value; break;
                    case "n": name = value; break;
                    default: key = value; break;
                }
            }
        }
        catch (JsonException)
        {
            // the config is refused elsewhere with the reason; the scope stays what was read
        }
        if (key is not null && key.Split(':') is [_, _, var r, var s, var c, ..])
        {
            route ??= NullIfEmpty(r);
            service ??= NullIfEmpty(s);
            consumer ??= NullIfEmpty(c);
        }
        return route is null && service is null && consumer is null && plugin is null && name is null
            ? None
            : new InstanceScope(route, service, consumer, plugin, name);
    }

    private static string? NullIfEmpty(string s) => s.Length == 0 ? null : s;
}
