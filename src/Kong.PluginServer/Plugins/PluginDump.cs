using System.Buffers;
using System.Text.Json;

namespace Kong.PluginServer.Plugins;

/// <summary>The `-dump` JSON Kong's query command reads (docs/protocol.md#dump-json), one line.</summary>
public static class PluginDump
{
    public const string ProtoBuf = "ProtoBuf:1";
    public const string MsgPack = "MsgPack:1";

    public static string Render(PluginInfo info, string protocol) => Render([info], protocol);

    /// <summary>
    /// The dump of a server serving several plugins: every one in <c>Plugins</c>, in order. (≤ 3.8) Kong registers each;
    /// (3.9+) it uses the first only, so a process serving several needs one pluginserver entry per plugin, each with a
    /// query command that prints its plugin (docs/hosting.md#several-plugins).
    /// </summary>
    public static string Render(IEnumerable<PluginInfo> infos, string protocol)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("Protocol", protocol);
            w.WriteStartArray("Plugins");
            foreach (var info in infos) WritePlugin(w, info);
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static void WritePlugin(Utf8JsonWriter w, PluginInfo info)
    {
        w.WriteStartObject();
        w.WriteString("Name", info.Name);
        w.WriteNumber("Priority", info.Priority);
        w.WriteString("Version", info.Version);
        w.WritePropertyName("Schema");
        WriteSchema(w, info);
        w.WriteStartArray("Phases");
        foreach (var p in info.PhaseNames) w.WriteStringValue(p);
        w.WriteEndArray();
        w.WriteEndObject();
    }

    /// <summary>
    /// The plugin sub-schema, the Lua table of a bundled plugin's schema.lua as JSON (Kong decodes it with cjson
    /// and loads it as is): {"name", "fields": [{"consumer": {...}}, {"protocols": {...}}, {"config": {"type": "record",
    /// "fields": [...]}}], "entity_checks": [{"conditional": {...}}, ...]}. A JSON null (<c>"eq": null</c>) decodes to
    /// cjson.null, which is Kong's ngx.null.
    /// </summary>
    public static void WriteSchema(Utf8JsonWriter w, PluginInfo info)
    {
        w.WriteStartObject();
        w.WriteString("name", info.Name);
        w.WritePropertyName("fields");
        SchemaField.WriteList(w, info.SchemaFields);
        if (info.EntityChecks.Count > 0)
        {
            w.WriteStartArray("entity_checks");
            foreach (var check in info.EntityChecks) check.WriteTo(w);
            w.WriteEndArray();
        }
        w.WriteEndObject();
    }

    public static string SchemaJson(PluginInfo info)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer)) WriteSchema(w, info);
        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }
}
