using System.Buffers;
using System.Globalization;
using System.Text.Json;

namespace Kong.PluginServer.Plugins;

/// <summary>
/// Reads Kong's config JSON leniently and strictly at once: Kong's injected keys and unknown keys are
/// dropped, <c>null</c> means "use the default", <c>{}</c> is accepted where an array is expected (cjson
/// encodes an empty table that way), schema defaults are filled in, and the schema rules Kong's schema
/// language expresses (required, one_of, between, len_min, types) are checked, naming the field.
/// The output is canonical JSON for the plugin's typed config.
/// </summary>
public static class ConfigNormalizer
{
    /// <summary>The keys Kong adds to every plugin config (docs/protocol.md#instance-config).</summary>
    public static readonly IReadOnlySet<string> InjectedKeys = new HashSet<string>(StringComparer.Ordinal)
    {
        "__seq__", "__key__", "__plugin_id", "__ws_id", "route_id", "service_id", "consumer_id", "plugin_instance_name",
    };

    public static byte[] Normalize(ReadOnlySpan<byte> configJson, IReadOnlyList<SchemaField> fields)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(configJson.ToArray(), new JsonDocumentOptions { MaxDepth = 32, AllowTrailingCommas = false });
        }
        catch (JsonException e)
        {
            throw new ConfigException("", "the config is not valid JSON: " + e.Message);
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind is not (JsonValueKind.Object or JsonValueKind.Null))
                throw new ConfigException("", "the config must be a JSON object");
            var buffer = new ArrayBufferWriter<byte>(Math.Max(256, configJson.Length));
            using (var w = new Utf8JsonWriter(buffer))
                WriteRecord(w, root, fields, "");
            return buffer.WrittenSpan.ToArray();
        }
    }

    private static void WriteRecord(Utf8JsonWriter w, JsonElement obj, IReadOnlyList<SchemaField> fields, string path)
    {
        w.WriteStartObject();
        foreach (var f in fields)
        {
            string fieldPath = path.Length == 0 ? f.Name : path + "." + f.Name;
            JsonElement value = default;
            bool present = obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(f.Name, out value) && value.ValueKind != JsonValueKind.Null;
            if (!present)
            {
                if (f.Type.DefaultJson is not null)
                {
                    w.WritePropertyName(f.Name);
                    w.WriteRawValue(f.Type.DefaultJson);
                }
                else if (f.Type.Required)
                    throw new ConfigException(fieldPath, "required field missing");
                else if (f.Type.Type == "record" && f.Type.Fields is not null)
                {
                    // absent record: its defaults still apply
                    w.WritePropertyName(f.Name);
                    WriteRecord(w, default, f.Type.Fields, fieldPath);
                }
                continue;
            }
            w.WritePropertyName(f.Name);
            WriteValue(w, value, f.Type, fieldPath);
        }
        w.WriteEndObject();
    }

    private static void WriteValue(Utf8JsonWriter w, JsonElement v, SchemaType t, string path)
    {
        switch (t.Type)
        {
            case "string":
                if (v.ValueKind != JsonValueKind.String) throw new ConfigException(path, "expected a string");
                var s = v.GetString()!;
                if (t.LenMin is { } lm && s.Length < lm) throw new ConfigException(path, $"length must be at least {lm}");
                if (t.OneOf is not null && !t.OneOf.Contains(s))
                    throw new ConfigException(path, $"expected one of: {string.Join(", ", t.OneOf)}");
                w.WriteStringValue(s);
                break;
            case "boolean":
                if (v.ValueKind is not (JsonValueKind.True or JsonValueKind.False)) throw new ConfigException(path, "expected a boolean");
                w.WriteBooleanValue(v.GetBoolean());
                break;
            case "integer":
            case "number":
                if (v.ValueKind != JsonValueKind.Number) throw new ConfigException(path, $"expected an {t.Type}");
                double d = v.GetDouble();
                if (t.Type == "integer" && (d != Math.Floor(d) || !v.TryGetInt64(out _)))
                    throw new ConfigException(path, "expected an integer");
                if (t.Between is { } b && (d < b.Min || d > b.Max))
                    throw new ConfigException(path, $"value should be between {b.Min.ToString(CultureInfo.InvariantCulture)} and {b.Max.ToString(CultureInfo.InvariantCulture)}");
                if (t.Type == "integer") w.WriteNumberValue(v.GetInt64()); else w.WriteNumberValue(d);
                break;
            case "array":
            case "set":
            {
                int count = 0;
                w.WriteStartArray();
                if (v.ValueKind == JsonValueKind.Array)
                {
                    int i = 0;
                    foreach (var e in v.EnumerateArray())
                    {
                        string ep = $"{path}[{i++}]";
                        if (e.ValueKind == JsonValueKind.Null) throw new ConfigException(ep, "null element");
                        WriteValue(w, e, t.Elements ?? Schema.StringType(), ep);
                        count++;
                    }
                }
                else if (!(v.ValueKind == JsonValueKind.Object && !v.EnumerateObject().Any()))
                    throw new ConfigException(path, "expected an array");
                w.WriteEndArray();
                if (t.LenMin is { } min && count < min) throw new ConfigException(path, $"length must be at least {min}");
                break;
            }
            case "map":
                if (v.ValueKind == JsonValueKind.Array && v.GetArrayLength() == 0) { w.WriteStartObject(); w.WriteEndObject(); break; }
                if (v.ValueKind != JsonValueKind.Object) throw new ConfigException(path, "expected a map");
                w.WriteStartObject();
                foreach (var p in v.EnumerateObject())
                {
                    if (t.Keys is { } kt && kt.OneOf is not null && !kt.OneOf.Contains(p.Name))
                        throw new ConfigException(path, $"key '{p.Name}' is not one of: {string.Join(", ", kt.OneOf)}");
                    if (p.Value.ValueKind == JsonValueKind.Null) continue;
                    w.WritePropertyName(p.Name);
                    WriteValue(w, p.Value, t.Values ?? Schema.StringType(), path + "." + p.Name);
                }
                w.WriteEndObject();
                break;
            case "record":
                if (v.ValueKind != JsonValueKind.Object) throw new ConfigException(path, "expected a record (JSON object)");
                WriteRecord(w, v, t.Fields ?? [], path);
                break;
            default:
                v.WriteTo(w);
                break;
        }
    }
}
