namespace GitLabCiAuth.TestSupport;

/// <summary>A per-test directory under /tmp with a short name (Unix socket paths are limited to 107 bytes).</summary>
public sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = System.IO.Path.Combine("/tmp", "gca-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    /// <summary>The socket the host uses with <c>-kong-prefix</c> this directory.</summary>
    public string DefaultSocket => Combine("gitlab-ci-auth.socket");

    /// <summary>The socket the host uses with <c>--plugin example -kong-prefix</c> this directory (named after the plugin served).</summary>
    public string ExampleSocket => Combine("example.socket");

    public string Combine(string name) => System.IO.Path.Combine(Path, name);

    public string[] Entries() => Directory.GetFileSystemEntries(Path).Select(System.IO.Path.GetFileName).ToArray()!;

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
