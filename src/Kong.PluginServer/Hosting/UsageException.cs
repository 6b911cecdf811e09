namespace Kong.PluginServer.Hosting;

/// <summary>A bad command line: <see cref="KongPluginHost"/> prints the message on stderr and exits with code 2.</summary>
public sealed class UsageException(string message) : Exception(message);
