using GitLabCiAuth.TestSupport;
using System.Text.Json.Nodes;

namespace Deployment.Tests.Infrastructure;

/// <summary>The Kong pluginserver settings of one server label, read from the Dockerfile's ENV.</summary>
public sealed record PluginServerEnv(string Label, string Socket, string StartCmd, string QueryCmd)
{
    /// <summary>Kong's key prefix for a label: lower-cased, "-" becomes "_".</summary>
    public static string KeyPrefix(string label) => "KONG_PLUGINSERVER_" + label.ToLowerInvariant().Replace('-', '_').ToUpperInvariant() + "_";
}

/// <summary>The repository's deployment artifacts, parsed once, and the binary's dump.</summary>
public static class Deployment
{
    public const string PluginName = "gitlab-ci-auth";
    public const string InstalledBinary = "/usr/local/bin/gitlab-ci-auth";

    private static readonly Lazy<DockerfileModel> s_dockerfile = new(() => DockerfileModel.Parse(Repo.Read(Repo.Dockerfile)));
    private static readonly Lazy<KongDeclarative> s_kongYml = new(() => KongDeclarative.Load(Repo.KongYml));
    private static readonly Lazy<Task<JsonNode>> s_dump = new(async () =>
    {
        var r = await ShellProcess.RunAsync($"exec {ShellWords.Quote(await HostBinary.GetPathAsync())} -dump");
        Assert.True(r.ExitCode == 0, r.ToString());
        return JsonNode.Parse(r.Stdout)!;
    });

    public static DockerfileModel Dockerfile => s_dockerfile.Value;
    public static KongDeclarative KongYml => s_kongYml.Value;

    /// <summary>The final stage's ENV (what Kong sees in the image).</summary>
    public static Dictionary<string, string> ImageEnv => Dockerfile.Env(Dockerfile.FinalStage);

    /// <summary>The one plugin server the image configures.</summary>
    public static PluginServerEnv Server
    {
        get
        {
            var env = ImageEnv;
            Assert.True(env.TryGetValue("KONG_PLUGINSERVER_NAMES", out var names), "the image sets no KONG_PLUGINSERVER_NAMES");
            var labels = names!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            string label = Assert.Single(labels);
            string prefix = PluginServerEnv.KeyPrefix(label);
            string Key(string suffix)
            {
                Assert.True(env.TryGetValue(prefix + suffix, out var v) && !string.IsNullOrWhiteSpace(v), $"the image does not set {prefix}{suffix}");
                return v!;
            }
            return new PluginServerEnv(label, Key("SOCKET"), Key("START_CMD"), Key("QUERY_CMD"));
        }
    }

    /// <summary><c>gitlab-ci-auth -dump</c> of the binary under test.</summary>
    public static Task<JsonNode> DumpAsync() => s_dump.Value;

    public static async Task<JsonObject> ConfigSchemaAsync() => KongSchema.ConfigRecord(await DumpAsync(), PluginName);

    /// <summary>A command of the image with its executable (the path inside the image) replaced by the binary under test.</summary>
    public static async Task<List<string>> LocalCommandAsync(string imageCommand)
    {
        var words = ShellWords.Split(imageCommand);
        Assert.True(words.Count > 0 && words[0] == InstalledBinary,
            $"`{imageCommand}` does not run {InstalledBinary}, where the Dockerfile installs the binary");
        words[0] = await HostBinary.GetPathAsync();
        return words;
    }

    public static string ShellLine(IEnumerable<string> words) => "exec " + string.Join(' ', words.Select(ShellWords.Quote));
}
