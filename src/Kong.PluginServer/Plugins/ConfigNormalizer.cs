using System.Buffers;
using System.Globalization;
using System.Text.Json;

namespace Kong.PluginServer.Plugins;

/// <summary>
/// Reads Kong's config JSON leniently and strictly at once: Kong's injected keys and unknown keys are
/// dropped, <c>null</c> means "use the default", <c>{}</c> is accepted where an array is expected (cjson
/// encodes an empty table that way), schema defaults are filled in, and the schema rules Kong's schema
/// language expresses (required, one_of, between, len_min, types, and the entity checks over config fields)
/// are checked, naming the field. The output is canonical JSON for the plugin's typed config.
/// </summary>
public static class ConfigNormalizer
{
    /// <summary>The keys Kong adds to every plugin config (docs/protocol.md#instance-config).</summary>
    public static readonly IReadOnlySet<string> InjectedKeys = new HashSet<string>(StringComparer.Ordinal)
    {
        "__seq__", "__key__", "__plugin_id", "__ws_id", "route_id", "service_id", "consumer_id", "plugin_instance_name",
    };

    /// <summary>The canonical config; raises <see cref="ConfigException"/> for the first problem.</summary>
    public static byte[] Normalize(ReadOnlySpan<byte> configJson, IReadOnlyList<SchemaField> fields) =>
        Normalize(configJson, fields, []);

    /// <summary>The canonical config, after the config-only entity checks; raises <see cref="ConfigException"/> for the first problem.</summary>
    public static byte[] Normalize(ReadOnlySpan<byte> configJson, IReadOnlyList<SchemaField> fields, IReadOnlyList<EntityCheck> checks) =>
        new Run(null).Normalize(configJson, fields, checks)!;

    /// <summary>
    /// Every problem the schema finds in a config instead of the first one (for linting): field rules first,
    /// then the config-only entity checks whose fields have no error of their own (as Kong skips them).
    /// <paramref name="canonical"/> is the canonical config when there is no problem.
    /// </summary>
    public static IReadOnlyList<ConfigException> Check(ReadOnlySpan<byte> configJson, IReadOnlyList<SchemaField> fields,
        IReadOnlyList<EntityCheck> checks, out byte[]? canonical)
    {
        var errors = new List<ConfigException>();
        canonical = new Run(errors).Normalize(configJson, fields, checks);
        if (errors.Count > 0) canonical = null;
        return errors;
    }

    /// <summary>One normalization: throws at the first problem, or collects them all when given a list.</summary>
    private sealed class Run(List<ConfigException>? errors)
    {
        public byte[]? Normalize(ReadOnlySpan<byte> configJson, IReadOnlyList<SchemaField> fields, IReadOnlyList<EntityCheck> checks)
        {
            JsonDocument doc;
            try
            {
                doc = JsonDocument.Parse(configJson.ToArray(), new JsonDocumentOptions { MaxDepth = 32, AllowTrailingCommas = false });
            }
            catch (JsonException e)
            {
                Fail("", "the config is not valid JSON: " + e.Message);
                return null;
            }
            byte[] output;
            using (doc)
            {
                var root = doc.RootElement;
                if (root.ValueKind is not (JsonValueKind.Object or JsonValueKind.Null))
                {
                    Fail("", "the config must be a JSON object");
                    return null;
                }
                var buffer = new ArrayBufferWriter<byte>(Math.Max(256, configJson.Length));
                using (var w = new Utf8JsonWriter(buffer))
                    WriteRecord(w, root, fields, "");
                output = buffer.WrittenSpan.ToArray();
            }
            if (checks.Count > 0) RunChecks(output, checks);
            return output;
        }

        private void RunChecks(byte[] canonical, IReadOnlyList<EntityCheck> checks)
        {
            using var doc = JsonDocument.Parse(canonical);
            var config = doc.RootElement;
            JsonElement? Get(string path)
            {
                var e = config;
                foreach (var part in path[EntityCheck.ConfigPrefix.Length..].Split('.'))
                {
                    if (e.ValueKind != JsonValueKind.Object || !e.TryGetProperty(part, out e)) return null;
                }
                return e;
            }
            foreach (var check in checks)
            {
                if (!check.IsConfigOnly) continue;
                if (errors is not null && check.Fields.Any(HasError)) continue;
                if (check.Evaluate(Get) is { } failure)
                    Fail(failure.Field[EntityCheck.ConfigPrefix.Length..], failure.Message);
            }
        }

        /// <summary>Whether a field rule already failed on this entity path (or inside it).</summary>
        private bool HasError(string entityPath)
        {
            string p = entityPath[EntityCheck.ConfigPrefix.Length..];
            return errors!.Any(e => e.Field == p || e.Field.StartsWith(p + ".", StringComparison.Ordinal) || e.Field.StartsWith(p + "[", StringComparison.Ordinal));
        }

        private void Fail(string path, string message)
        {
            var e = new ConfigException(path, message);
            if (errors is null) throw e;
            errors.Add(e);
        }

        /// <summary>A value that breaks a rule: thrown, or recorded with a null written in its place (the output stays well-formed).</summary>
        private void FailValue(Utf8JsonWriter w, string path, string message)
        {
            Fail(path, message);
            w.WriteNullValue();
        }

        private void WriteRecord(Utf8JsonWriter w, JsonElement obj, IReadOnlyList<SchemaField> fields, string path)
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
                        Fail(fieldPath, "required field missing");
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

        private void WriteValue(Utf8JsonWriter w, JsonElement v, SchemaType t, string path)
        {
            switch (t.Type)
            {
                case "string":
                    if (v.ValueKind != JsonValueKind.String) { FailValue(w, path, "expected a string"); break; }
                    var s = v.GetString()!;
                    if (t.LenMin is { } lm && s.Length < lm) { FailValue(w, path, $"length must be at least {lm}"); break; }
                    if (t.OneOf is not null && !t.OneOf.Contains(s))
                    {
                        FailValue(w, path, $"expected one of: {string.Join(", ", t.OneOf)}");
                        break;
                    }
                    w.WriteStringValue(s);
                    break;
                case "boolean":
                    if (v.ValueKind is not (JsonValueKind.True or JsonValueKind.False)) { FailValue(w, path, "expected a boolean"); break; }
                    w.WriteBooleanValue(v.GetBoolean());
                    break;
                case "integer":
                case "number":
                    if (v.ValueKind != JsonValueKind.Number) { FailValue(w, path, $"expected an {t.Type}"); break; }
                    double d = v.GetDouble();
                    if (t.Type == "integer" && (d != Math.Floor(d) || !v.TryGetInt64(out _)))
                    {
                        FailValue(w, path, "expected an integer");
                        break;
                    }
                    if (t.Between is { } b && (d < b.Min || d > b.Max))
                    {
                        FailValue(w, path, $"value should be between {b.Min.ToString(CultureInfo.InvariantCulture)} and {b.Max.ToString(CultureInfo.InvariantCulture)}");
                        break;
                    }
                    if (t.Type == "integer") w.WriteNumberValue(v.GetInt64()); else w.WriteNumberValue(d);
                    break;
                case "array":
                case "set":
                {
                    if (!(v.ValueKind == JsonValueKind.Array || (v.ValueKind == JsonValueKind.Object && !v.EnumerateObject().Any())))
                    {
                        FailValue(w, path, "expected an array");
                        break;
                    }
                    int count = 0;
                    w.WriteStartArray();
                    if (v.ValueKind == JsonValueKind.Array)
                    {
                        int i = 0;
                        foreach (var e in v.EnumerateArray())
                        {
                            string ep = $"{path}[{i++}]";
                            if (e.ValueKind == JsonValueKind.Null) { Fail(ep, "null element"); continue; }
                            WriteValue(w, e, t.Elements ?? Schema.StringType(), ep);
                            count++;
                        }
                    }
                    w.WriteEndArray();
                    if (t.LenMin is { } min && count < min) Fail(path, $"length must be at least {min}");
                    break;
                }
                case "map":
                    if (v.ValueKind == JsonValueKind.Array && v.GetArrayLength() == 0) { w.WriteStartObject(); w.WriteEndObject(); break; }
                    if (v.ValueKind != JsonValueKind.Object) { FailValue(w, path, "expected a map"); break; }
                    w.WriteStartObject();
                    foreach (var p in v.EnumerateObject())
                    {
                        if (t.Keys is { } kt && kt.OneOf is not null && !kt.OneOf.Contains(p.Name))
                        {
                            Fail(path, $"key '{p.Name}' is not one of: {string.Join(", ", kt.OneOf)}");
                            continue;
                        }
                        if (t.Keys is { LenMin: { } klm } && p.Name.Length < klm)
                        {
                            Fail(path, $"key '{p.Name}' is shorter than {klm} characters");
                            continue;
                        }
                        if (p.Value.ValueKind == JsonValueKind.Null) continue;
                        w.WritePropertyName(p.Name);
                        WriteValue(w, p.Value, t.Values ?? Schema.StringType(), path + "." + p.Name);
                    }
                    w.WriteEndObject();
                    break;
                case "record":
                    if (v.ValueKind != JsonValueKind.Object) { FailValue(w, path, "expected a record (JSON object)"); break; }
                    WriteRecord(w, v, t.Fields ?? [], path);
                    break;
                default:
                    v.WriteTo(w);
                    break;
            }
        }
    }
}
