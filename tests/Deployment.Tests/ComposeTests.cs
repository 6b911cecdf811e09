using Deployment.Tests.Infrastructure;
using YamlDotNet.RepresentationModel;

namespace Deployment.Tests;

/// <summary>kong/docker-compose.yml: builds the repository's Dockerfile, runs Kong DB-less on kong.yml, next to the upstream kong.yml names.</summary>
public sealed class ComposeTests
{
    private static readonly string ComposeDir = Path.GetDirectoryName(Repo.Compose)!;

    private static YamlMappingNode Services() => Yaml.Map(Yaml.Get(Yaml.Map(Yaml.Load(Repo.Compose), "compose file"), "services")!, "services");

    private static YamlMappingNode Service(string name) =>
        Yaml.Map(Yaml.Get(Services(), name) ?? throw new KeyNotFoundException($"docker-compose.yml has no service '{name}'"), name);

    private static Dictionary<string, string> Environment(YamlMappingNode service) => KongSettings.ComposeEnvironment(service);

    [Fact]
    public void Kong_is_built_from_the_repository_Dockerfile()
    {
        var kong = Service("kong");
        var build = Yaml.Map(Yaml.Get(kong, "build")!, "kong.build");
        var context = Path.GetFullPath(Path.Combine(ComposeDir, Yaml.Str(build, "context") ?? "."));
        var dockerfile = Path.GetFullPath(Path.Combine(context, Yaml.Str(build, "dockerfile") ?? "Dockerfile"));

        Assert.Equal(Path.GetFullPath(Repo.Dockerfile), dockerfile);
        Assert.Equal(Path.GetFullPath(Repo.Root), context.TrimEnd('/'));           // the build copies the sources: the context is the repo root
        Assert.True(File.Exists(Path.Combine(context, ".dockerignore")), "no .dockerignore next to the build context");
    }

    [Fact]
    public void Kong_runs_db_less_on_the_mounted_kong_yml()
    {
        var kong = Service("kong");
        var env = Environment(kong);
        Assert.Equal("off", env["KONG_DATABASE"]);
        string declarative = env["KONG_DECLARATIVE_CONFIG"];

        var mounts = Yaml.Seq(kong, "volumes").Cast<YamlScalarNode>().Select(v => v.Value!.Split(':')).ToList();
        var mount = mounts.SingleOrDefault(m => m.Length >= 2 && m[1] == declarative);
        Assert.True(mount is not null, $"nothing is mounted at KONG_DECLARATIVE_CONFIG={declarative}");
        Assert.Equal(Path.GetFullPath(Repo.KongYml), Path.GetFullPath(Path.Combine(ComposeDir, mount![0])));

        // the pluginserver settings come from the image (the Dockerfile), not overridden here
        Assert.DoesNotContain(env.Keys, k => k.StartsWith("KONG_PLUGINSERVER_", StringComparison.Ordinal) || k == "KONG_PLUGINS");
        Assert.Contains(Yaml.Seq(kong, "ports").Cast<YamlScalarNode>(), p => p.Value!.EndsWith(":8000", StringComparison.Ordinal));
    }

    [Fact]
    public void Every_upstream_of_kong_yml_is_a_compose_service_on_the_port_it_listens_on()
    {
        var services = Services();
        var kong = Service("kong");
        var dependsOn = Yaml.Seq(kong, "depends_on").Cast<YamlScalarNode>().Select(n => n.Value!).ToList();
        foreach (var upstream in Infrastructure.Deployment.KongYml.Services)
        {
            var url = new Uri(upstream.Url ?? throw new InvalidOperationException($"service {upstream.Name} has no url"));
            var echo = Service(url.Host);
            Assert.NotNull(Yaml.Str(echo, "image"));
            Assert.Contains(url.Host, dependsOn);
            if (Environment(echo).TryGetValue("PORT", out var port)) Assert.Equal(url.Port.ToString(), port);
            Assert.Contains(services.Children.Keys.Cast<YamlScalarNode>(), k => k.Value == url.Host);
        }
    }
}
