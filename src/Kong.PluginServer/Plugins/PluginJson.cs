using System.Text.Json.Serialization;

namespace Kong.PluginServer.Plugins;

[JsonSerializable(typeof(string))]
[JsonSerializable(typeof(string[]))]
[JsonSerializable(typeof(Dictionary<string, string>))]
internal sealed partial class PluginJson : JsonSerializerContext;
