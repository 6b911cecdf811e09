using GitLabCiAuth.TestSupport;
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")] // the binary under test is linux-x64 only

namespace Deployment.Tests.Infrastructure;

/// <summary>The repository checkout the tests read the deployment artifacts from.</summary>
public static class Repo
{
    private static readonly Lazy<string> s_root = new(FindRoot);

    public static string Root => s_root.Value;

    public static string File(params string[] parts) => Path.Combine([Root, .. parts]);

    public static string Dockerfile => File("Dockerfile");
    public static string DockerIgnore => File(".dockerignore");
    public static string KongConf => File("kong", "kong.conf");
    public static string KongYml => File("kong", "kong.yml");
    public static string Compose => File("kong", "docker-compose.yml");
    public static string GitLabCiExample => File("kong", "gitlab-ci.example.yml");

    public static string Read(string path) =>
        System.IO.File.Exists(path) ? System.IO.File.ReadAllText(path) : throw new FileNotFoundException($"{path} is missing", path);

    /// <summary>Walks up from the test assembly to the directory holding Plugin.sln.</summary>
    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (System.IO.File.Exists(Path.Combine(dir.FullName, "Plugin.sln"))) return dir.FullName;
        }
        throw new DirectoryNotFoundException($"Plugin.sln not found above {AppContext.BaseDirectory}");
    }
}


