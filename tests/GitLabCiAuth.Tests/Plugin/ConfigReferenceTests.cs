using GitLabCiAuth.Plugin;

namespace GitLabCiAuth.Tests.Plugin;

/// <summary>The README's config reference is generated from the schema; this fails when they drift.</summary>
public class ConfigReferenceTests
{
    [Fact]
    public void Readme_config_reference_matches_the_schema()
    {
        string readmePath = Path.Combine(RepoRoot(), "README.md");
        string readme = File.ReadAllText(readmePath);
        int b = readme.IndexOf("<!-- config-reference:begin", StringComparison.Ordinal);
        int e = readme.IndexOf(ConfigReference.End, StringComparison.Ordinal);
        Assert.True(b >= 0 && e > b, "README.md lacks the config-reference markers");
        string expected = ConfigReference.Begin + "\n" + ConfigReference.Markdown();
        string actual = readme[b..e];
        if (actual != expected && Environment.GetEnvironmentVariable("UPDATE_README") == "1")
        {
            File.WriteAllText(readmePath, readme[..b] + expected + readme[e..]);
            return;
        }
        Assert.Equal(expected, actual);
    }

    [Fact]
    public void Every_schema_field_is_documented()
    {
        string md = ConfigReference.Markdown();
        foreach (var f in GitLabCiAuthConfig.KongFields)
        {
            Assert.Contains($"| `{f.Name}` |", md);
            Assert.False(string.IsNullOrWhiteSpace(f.Type.Description), $"{f.Name} has no description");
        }
    }

    private static string RepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Plugin.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("Plugin.sln not found above " + AppContext.BaseDirectory);
    }
}
