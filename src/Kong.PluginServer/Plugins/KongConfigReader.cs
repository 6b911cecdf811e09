using System.ComponentModel;
using System.Text.Json;

namespace Kong.PluginServer.Plugins;

/// <summary>Reads one value at the reader's current token (leaving the reader on the value's last token); <paramref name="path"/> names it in errors.</summary>
public delegate T KongValueReader<T>(ref Utf8JsonReader reader, string path);

/// <summary>
/// The pieces the code generated for <see cref="KongConfigAttribute"/> classes reads config JSON with: no
/// reflection, no serializer metadata. Each value reader starts on the value's first token and leaves the reader
/// on its last one. A value of the wrong JSON type raises <see cref="ConfigException"/> naming its path.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public static class KongConfigReader
{
    private static readonly JsonReaderOptions Options = new() { MaxDepth = 64 };

    /// <summary>A whole document: a record read by <paramref name="read"/>; malformed JSON raises <see cref="ConfigException"/>.</summary>
    public static T Read<T>(ReadOnlySpan<byte> json, KongValueReader<T> read)
    {
        var reader = new Utf8JsonReader(json, Options);
        try
        {
            if (!reader.Read() || reader.TokenType == JsonTokenType.Null) throw new ConfigException("", "the config is empty");
            return read(ref reader, "");
        }
        catch (JsonException e)
        {
            throw new ConfigException("", "the config is not valid JSON: " + e.Message);
        }
    }

    /// <summary>The path of a record's field: <c>name</c> at the top, <c>parent.name</c> below.</summary>
    public static string Child(string path, string name) => path.Length == 0 ? name : path + "." + name;

    /// <summary>Checks the reader is on the start of an object.</summary>
    public static void StartRecord(ref Utf8JsonReader reader, string path)
    {
        if (reader.TokenType != JsonTokenType.StartObject) throw new ConfigException(path, "expected a record (JSON object)");
    }

    /// <summary>Moves to the next property name of the object (true) or to its end (false).</summary>
    public static bool NextProperty(ref Utf8JsonReader reader)
    {
        reader.Read();
        return reader.TokenType == JsonTokenType.PropertyName;
    }

    /// <summary>From a property name to its value: true unless the value is JSON null.</summary>
    public static bool ToValue(ref Utf8JsonReader reader)
    {
        reader.Read();
        return reader.TokenType != JsonTokenType.Null;
    }

    /// <summary>From a property name past its value (an unknown key).</summary>
    public static void SkipValue(ref Utf8JsonReader reader)
    {
        reader.Read();
        reader.Skip();
    }

    public static string ReadString(ref Utf8JsonReader reader, string path) =>
        reader.TokenType == JsonTokenType.String ? reader.GetString()! : throw new ConfigException(path, "expected a string");

    public static bool ReadBoolean(ref Utf8JsonReader reader, string path) => reader.TokenType switch
    {
        JsonTokenType.True => true,
        JsonTokenType.False => false,
        _ => throw new ConfigException(path, "expected a boolean"),
    };

    public static int ReadInt32(ref Utf8JsonReader reader, string path) =>
        reader.TokenType == JsonTokenType.Number && reader.TryGetInt32(out int v) ? v : throw new ConfigException(path, "expected an integer (32-bit)");

    public static long ReadInt64(ref Utf8JsonReader reader, string path) =>
        reader.TokenType == JsonTokenType.Number && reader.TryGetInt64(out long v) ? v : throw new ConfigException(path, "expected an integer");

    public static double ReadDouble(ref Utf8JsonReader reader, string path) =>
        reader.TokenType == JsonTokenType.Number ? reader.GetDouble() : throw new ConfigException(path, "expected a number");

    /// <summary>An array (an empty object counts as an empty array, as cjson writes one); null elements are skipped.</summary>
    public static List<T> ReadList<T>(ref Utf8JsonReader reader, string path, KongValueReader<T> element)
    {
        var list = new List<T>();
        if (reader.TokenType == JsonTokenType.StartObject)
        {
            reader.Read();
            if (reader.TokenType != JsonTokenType.EndObject) throw new ConfigException(path, "expected an array");
            return list;
        }
        if (reader.TokenType != JsonTokenType.StartArray) throw new ConfigException(path, "expected an array");
        int i = 0;
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (reader.TokenType != JsonTokenType.Null) list.Add(element(ref reader, $"{path}[{i}]"));
            i++;
        }
        return list;
    }

    public static T[] ReadArray<T>(ref Utf8JsonReader reader, string path, KongValueReader<T> element) =>
        [.. ReadList(ref reader, path, element)];

    /// <summary>A map with string keys, in the JSON's order (an empty array counts as an empty map); null values are skipped.</summary>
    public static Dictionary<string, T> ReadMap<T>(ref Utf8JsonReader reader, string path, KongValueReader<T> value)
    {
        var map = new Dictionary<string, T>(StringComparer.Ordinal);
        if (reader.TokenType == JsonTokenType.StartArray)
        {
            reader.Read();
            if (reader.TokenType != JsonTokenType.EndArray) throw new ConfigException(path, "expected a map");
            return map;
        }
        if (reader.TokenType != JsonTokenType.StartObject) throw new ConfigException(path, "expected a map");
        while (NextProperty(ref reader))
        {
            string key = reader.GetString()!;
            if (ToValue(ref reader)) map[key] = value(ref reader, path + "." + key);
        }
        return map;
    }

    /// <summary>A value given as JSON text (a declared default), read by <paramref name="read"/>.</summary>
    public static T ReadDefault<T>(ReadOnlySpan<byte> json, KongValueReader<T> read)
    {
        var reader = new Utf8JsonReader(json, Options);
        reader.Read();
        return read(ref reader, "");
    }
}
