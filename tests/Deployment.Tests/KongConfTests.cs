using Deployment.Tests.Infrastructure;

namespace Deployment.Tests;

/// <summary>kong/kong.conf: the same settings as the image, for a Kong installed without Docker.</summary>
public sealed class KongConfTests
{
    /// <summary>kong.conf's <c>key = value</c> lines (Kong's format: # starts a comment, keys are case-insensitive).</summary>
    private static Dictionary<string, string> Settings()
    {
        var settings = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (raw, n) in Repo.Read(Repo.KongConf).Split('\n').Select((l, i) => (l, i + 1)))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            int eq = line.IndexOf('=');
            Assert.True(eq > 0, $"kong.conf line {n} is not `key = value`: {raw}");
            string key = line[..eq].Trim().ToLowerInvariant(), value = line[(eq + 1)..].Trim();
            Assert.DoesNotContain("#", value);   // an unescaped # would cut the value in Kong's parser
            Assert.True(settings.TryAdd(key, value), $"kong.conf sets {key} twice");
        }
        return settings;
    }

    [Fact]
    public void Kong_conf_sets_exactly_the_images_KONG_variables_with_the_same_values()
    {
        var conf = Settings();
        var image = Infrastructure.Deployment.ImageEnv
            .Where(kv => kv.Key.StartsWith("KONG_", StringComparison.Ordinal))
            .ToDictionary(kv => kv.Key["KONG_".Length..].ToLowerInvariant(), kv => kv.Value);

        Assert.Equal(image.Keys.Order(), conf.Keys.Order());
        foreach (var (key, value) in image) Assert.True(conf[key] == value, $"{key}: kong.conf has '{conf[key]}', the Dockerfile '{value}'");
    }

    [Fact]
    public void Kong_conf_uses_the_key_names_kong_derives_from_the_server_label()
    {
        var conf = Settings();
        var label = conf["pluginserver_names"];
        Assert.Equal(Infrastructure.Deployment.PluginName, label);
        string prefix = "pluginserver_" + label.ToLowerInvariant().Replace('-', '_') + "_";
        foreach (var suffix in new[] { "socket", "start_cmd", "query_cmd" }) Assert.Contains(prefix + suffix, conf.Keys);
        Assert.Contains(Infrastructure.Deployment.PluginName, conf["plugins"].Split(',', StringSplitOptions.TrimEntries));
    }
}
