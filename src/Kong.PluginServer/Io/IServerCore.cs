using Kong.PluginServer.Plugins;

namespace Kong.PluginServer.Io;

/// <summary>
/// What the event loops and both protocols' connections need from the server that owns them: its plugin and
/// instances, its limits, its stop flag and its counters. The server implements it; the layers below never
/// name the server type, so Io and Protocol do not depend on Server.
/// </summary>
internal interface IServerCore
{
    /// <summary>The plugin served (the first one, when the server serves several).</summary>
    IKongPlugin Plugin { get; }

    /// <summary>The plugin a StartInstance names (empty: the plugin of a single-plugin server).</summary>
    bool TryGetPlugin(ReadOnlySpan<byte> name, out IKongPlugin plugin);

    /// <summary>The names served, for messages: <c>'a', 'b'</c>.</summary>
    string PluginNameList { get; }
    InstanceRegistry Registry { get; }
    ServerLog Log { get; }
    int MaxFrameBytes { get; }
    int MaxConnections { get; }
    TimeSpan FrameIdleTimeout { get; }

    /// <summary>True once a stop began: no new event or instance starts.</summary>
    bool Stopping { get; }

    /// <summary>True once the server refuses new instances and events (a stop is coming).</summary>
    bool Refusing { get; }

    ConnectionHub Hub { get; }

    void LogConnectionLimit();
    void ConnectionClosed();
    void ReturnMemorySoon();
    void CountEventWrite();
    void EventStarted();
    void EventRefused();
    void EventFinished(long startTimestamp);
}
