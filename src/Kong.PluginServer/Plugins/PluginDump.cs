using System.Buffers;
using System.Text.Json;

namespace Kong.PluginServer.Plugins;

/// <summary>The `-dump` JSON Kong's query command reads (docs/protocol.md#dump-json), one line.</summary>
public static class PluginDump
{
    public const string ProtoBuf = "ProtoBuf:1";
    public const string MsgPack = "MsgPack:1";

    public static string Render(PluginInfo info, string protocol)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("Protocol", protocol);
            w.WriteStartArray("Plugins");
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
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>The plugin sub-schema: {"name", "fields": [{"config": {"type": "record", "fields": [...]}}]}.</summary>
    public static void WriteSchema(Utf8JsonWriter w, PluginInfo info)
    {
        w.WriteStartObject();
        w.WriteString("name", info.Name);
        w.WritePropertyName("fields");
        SchemaField.WriteList(w, [Schema.Record("config", info.ConfigFields, required: true)]);
        w.WriteEndObject();
    }

    public static string SchemaJson(PluginInfo info)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer)) WriteSchema(w, info);
        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }
}
