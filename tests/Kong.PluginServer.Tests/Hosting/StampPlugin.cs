using System.Text.Json;
using Kong.PluginServer.Pdk;
using Kong.PluginServer.Plugins;

namespace Kong.PluginServer.Tests.Hosting;

/// <summary>
/// A plugin of any name and phases that stamps each event it handles into an upstream header
/// <c>x-NAME: NAME:VALUE:PHASE</c> (VALUE from its config), so a test sees which plugin answered which event.
/// </summary>
public sealed class StampPlugin(string name, KongPhase phases = KongPhase.Access, string version = "1.0.0") : IKongPlugin
{
    private static readonly IReadOnlyList<SchemaField> Fields = [Schema.String("value", @default: "v")];

    public PluginInfo Info { get; } = new(name, version, 100, phases, Fields);

    public int HandlersCreated;

    public byte[] Canonicalize(ReadOnlySpan<byte> configJson) => ConfigNormalizer.Normalize(configJson, Fields);

    public IPluginHandler CreateHandler(ReadOnlySpan<byte> configJson)
    {
        using var doc = JsonDocument.Parse(Canonicalize(configJson));
        Interlocked.Increment(ref HandlersCreated);
        return new Handler(Info.Name, doc.RootElement.GetProperty("value").GetString()!);
    }

    private sealed class Handler(string name, string value) : IPluginHandler
    {
        public async ValueTask HandleAsync(KongPhase phase, KongPdk kong) =>
            await kong.ServiceRequest.SetHeaderAsync("x-" + name, $"{name}:{value}:{KongPhases.Name(phase)}");

        public void Dispose() { }
    }
}
