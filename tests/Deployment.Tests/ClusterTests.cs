using System.Text.Json.Nodes;
using Deployment.Tests.Infrastructure;
using YamlDotNet.RepresentationModel;
using static Deployment.Tests.Infrastructure.Deployment;

namespace Deployment.Tests;

/// <summary>
/// Every file under kong/ as a whole (the single node, the hybrid cluster, Kubernetes): it parses, every KONG_*
/// setting is a kong.conf key, the plugin server settings agree with kong/kong.conf, and every gitlab-ci-auth
/// config in it passes `check --lint` on the published binary.
/// </summary>
public sealed class ClusterTests
{
    /// <summary>
    /// kong.conf keys the files under kong/ may set, each present in kong.conf.default of Kong 3.4.0 and 3.9.0;
    /// plus the per-server keys pluginserver_&lt;label&gt;_socket/_start_cmd/_query_cmd of a label in pluginserver_names.
    /// </summary>
    private static readonly HashSet<string> KongConfKeys =
    [
        "role", "database", "pg_host", "pg_port", "pg_user", "pg_password", "pg_database",
        "cluster_cert", "cluster_cert_key", "cluster_listen", "cluster_control_plane", "cluster_mtls", "cluster_server_name",
        "lua_ssl_trusted_certificate", "declarative_config", "prefix", "plugins", "pluginserver_names",
        "proxy_listen", "admin_listen", "status_listen", "proxy_access_log", "proxy_error_log", "admin_access_log", "admin_error_log",
        "log_level", "nginx_worker_processes", "router_flavor",
    ];

    private static readonly string[] ServerKeySuffixes = ["socket", "start_cmd", "query_cmd"];

    public static TheoryData<string> KongNodes()
    {
        var data = new TheoryData<string>();
        foreach (var s in KongSettings.All()) data.Add(s.Source);
        return data;
    }

    private static KongSettings Node(string source) => KongSettings.All().Single(s => s.Source == source);

    private static Dictionary<string, string> KongConf => KongSettings.ConfFile(Repo.KongConf);

    [Fact]
    public void Every_yaml_file_under_kong_parses()
    {
        var files = KongFiles.YamlFiles();
        foreach (var expected in new[] { "kong/kong.yml", "kong/docker-compose.yml", "kong/hybrid/docker-compose.yml", "kong/kubernetes/values.yaml", "kong/kubernetes/gitlab-ci-auth.yaml" })
            Assert.Contains(expected, files);
        foreach (var file in files)
        {
            var docs = Yaml.LoadAll(Repo.File(file));
            Assert.NotEmpty(docs);
            foreach (var doc in docs) Assert.NotNull(Yaml.ToJson(doc));   // duplicate keys and odd nodes fail here
        }
    }

    [Fact]
    public void The_nodes_are_the_single_node_the_hybrid_cluster_and_kubernetes()
    {
        var sources = KongSettings.All().Select(s => s.Source).ToList();
        Assert.Contains("kong/kong.conf", sources);
        Assert.Contains("kong/docker-compose.yml service kong", sources);
        Assert.Contains("kong/hybrid/control-plane.conf", sources);
        Assert.Contains("kong/hybrid/data-plane.conf", sources);
        Assert.Contains("kong/hybrid/docker-compose.yml service control-plane", sources);
        Assert.Contains("kong/hybrid/docker-compose.yml service data-plane-a", sources);
        Assert.Contains("kong/hybrid/docker-compose.yml service data-plane-b", sources);
        Assert.Contains("kong/kubernetes/values.yaml (Helm values)", sources);
    }

    [Theory]
    [MemberData(nameof(KongNodes))]
    public void Every_setting_is_a_kong_conf_key(string source)
    {
        var node = Node(source);
        var labels = (node["pluginserver_names"] ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Select(l => "pluginserver_" + l.ToLowerInvariant().Replace('-', '_') + "_").ToList();
        foreach (var key in node.Written.Keys)
        {
            Assert.Equal(key, key.ToLowerInvariant());
            // KONG_ + the key upper-cased is the environment variable Kong reads for it, and back
            Assert.Equal(key, KongSettings.ConfKey(KongSettings.EnvName(key)));
            bool serverKey = labels.Any(l => key.StartsWith(l, StringComparison.Ordinal) && ServerKeySuffixes.Contains(key[l.Length..]));
            Assert.True(KongConfKeys.Contains(key) || serverKey, $"{source}: {key} ({KongSettings.EnvName(key)}) is not a kong.conf key");
        }
    }

    [Theory]
    [MemberData(nameof(KongNodes))]
    public async Task Plugin_server_settings_agree_with_kong_conf_and_run_on_the_binary(string source)
    {
        var node = Node(source);
        Assert.True(node.RunsGitLabCiAuth, $"{source}: plugins does not list {PluginName}");
        Assert.Contains("bundled", node["plugins"]!.Split(',', StringSplitOptions.TrimEntries));
        Assert.Equal(KongConf["pluginserver_names"], node["pluginserver_names"]);
        string prefix = "pluginserver_" + PluginName.Replace('-', '_') + "_";
        // every node learns the schema with the same query command
        Assert.Equal(KongConf[prefix + "query_cmd"], node[prefix + "query_cmd"]);

        if (node.Role == "control_plane")
        {
            // a control plane never starts the server: the snippet does not ask for it
            if (source.EndsWith(".conf", StringComparison.Ordinal))
                Assert.True(node[prefix + "start_cmd"] is null && node[prefix + "socket"] is null, $"{source} sets a start command or socket a control plane never uses");
            Assert.NotEqual("off", node["database"]);
            return;
        }

        // a node that proxies runs the server: socket and start command agree on one directory, and the binary serves there
        string socket = node[prefix + "socket"] ?? throw new Xunit.Sdk.XunitException($"{source}: no {prefix}socket");
        string start = node[prefix + "start_cmd"] ?? throw new Xunit.Sdk.XunitException($"{source}: no {prefix}start_cmd");
        var words = await LocalCommandAsync(start);
        int flag = words.FindIndex(w => w is "-kong-prefix" or "--kong-prefix");
        Assert.True(flag > 0, $"{source}: the start command has no -kong-prefix");
        Assert.Equal(words[flag + 1].TrimEnd('/'), Path.GetDirectoryName(socket));
        Assert.Equal($"{PluginName}.socket", Path.GetFileName(socket));
        if (node["prefix"] is { } kongPrefix) Assert.Equal(kongPrefix.TrimEnd('/'), Path.GetDirectoryName(socket));

        using var dir = new TempDir();
        words[flag + 1] = dir.Path;
        await using (var server = ShellProcess.Start(ShellLine(words)))
        {
            await server.WaitUntilListeningAsync(Path.Combine(dir.Path, $"{PluginName}.socket"));
        }
        var query = await ShellProcess.RunAsync(ShellLine(await LocalCommandAsync(node[prefix + "query_cmd"]!)));
        Assert.True(query.ExitCode == 0 && JsonNode.Parse(query.Stdout) is JsonObject, query.ToString());
    }

    public static TheoryData<string> FilesWithGitLabCiAuthConfigs()
    {
        var data = new TheoryData<string>();
        foreach (var file in KongFiles.PluginConfigs().Where(c => c.Plugin == PluginName).Select(c => c.File).Distinct()) data.Add(file);
        return data;
    }

    [Fact]
    public void The_single_node_and_kubernetes_files_hold_gitlab_ci_auth_configs()
    {
        var files = KongFiles.PluginConfigs().Where(c => c.Plugin == PluginName).Select(c => c.File).Distinct().ToList();
        Assert.Contains("kong/kong.yml", files);
        Assert.Contains("kong/kubernetes/gitlab-ci-auth.yaml", files);
    }

    [Theory]
    [MemberData(nameof(FilesWithGitLabCiAuthConfigs))]
    public async Task Every_embedded_gitlab_ci_auth_config_passes_lint_on_the_binary(string file)
    {
        int expected = KongFiles.PluginConfigs().Count(c => c.File == file && c.Plugin == PluginName);
        var r = await GitLabCiAuth.TestSupport.HostProcess.RunAsync("check", "--lint", Repo.File(file));

        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains($"{expected} {PluginName} config{(expected == 1 ? "" : "s")}, all valid", r.Stdout);
        Assert.Equal(expected, r.Stdout.Split('\n').Count(l => l.EndsWith(": ok", StringComparison.Ordinal)));
    }

    // ---- hybrid mode ----

    [Fact]
    public void Hybrid_compose_has_one_control_plane_with_a_database_and_data_planes_that_reach_it()
    {
        var cp = Node("kong/hybrid/docker-compose.yml service control-plane");
        Assert.Equal("control_plane", cp.Role);
        Assert.Equal("postgres", cp["database"]);
        string cpPort = cp["cluster_listen"]!.Split(':')[^1];

        var dps = KongSettings.All().Where(s => s.Source.StartsWith("kong/hybrid/docker-compose.yml", StringComparison.Ordinal) && s.Role == "data_plane").ToList();
        Assert.True(dps.Count >= 2, "the example shows more than one data plane");
        foreach (var dp in dps)
        {
            Assert.Equal("off", dp["database"]);
            Assert.Equal($"control-plane:{cpPort}", dp["cluster_control_plane"]);
            Assert.Equal(cp["cluster_cert"], dp["cluster_cert"]);
            Assert.Equal(cp["cluster_cert_key"], dp["cluster_cert_key"]);
            Assert.Contains(cp["cluster_cert"]!, dp["lua_ssl_trusted_certificate"]!.Split(','));
        }
        // the certificate reaches every node from one volume, made once before the control plane starts
        var services = Yaml.Map(Yaml.Get(Yaml.Map(Yaml.Load(Repo.File("kong", "hybrid", "docker-compose.yml")), "compose"), "services")!, "services");
        foreach (var name in new[] { "control-plane" }.Concat(dps.Select(d => d.Source.Split(' ')[^1])))
        {
            var svc = Yaml.Map(Yaml.Get(services, name)!, name);
            Assert.Contains(Yaml.Seq(svc, "volumes").Cast<YamlScalarNode>(), v => v.Value!.StartsWith("certs:/certs", StringComparison.Ordinal));
        }
        Assert.Contains("gen_cert", Yaml.ToJson(Yaml.Get(Yaml.Map(Yaml.Get(services, "cluster-cert")!, "cluster-cert"), "command")!)!.ToJsonString());
    }

    [Fact]
    public void Hybrid_compose_and_conf_snippets_say_the_same()
    {
        foreach (var (conf, service) in new[] { ("control-plane.conf", "control-plane"), ("data-plane.conf", "data-plane-a"), ("data-plane.conf", "data-plane-b") })
        {
            var snippet = Node($"kong/hybrid/{conf}");
            var compose = Node($"kong/hybrid/docker-compose.yml service {service}");
            foreach (var (key, value) in snippet.Conf)
                Assert.True(compose[key] == value, $"{conf} sets {key} = {value}, the compose service {service} {compose[key] ?? "nothing"}");
        }
        // a data plane runs the server exactly as a single node does
        var dp = Node("kong/hybrid/data-plane.conf");
        foreach (var (key, value) in KongConf) Assert.Equal(value, dp[key]);
    }

    [Fact]
    public void Hybrid_control_plane_loads_the_declarative_config_with_the_query_command_available()
    {
        var services = Yaml.Map(Yaml.Get(Yaml.Map(Yaml.Load(Repo.File("kong", "hybrid", "docker-compose.yml")), "compose"), "services")!, "services");
        var bootstrap = Yaml.Map(Yaml.Get(services, "bootstrap")!, "bootstrap");
        Assert.Contains("kong config db_import /kong/kong.yml", Yaml.ToJson(Yaml.Get(bootstrap, "command")!)!.ToJsonString());
        var mount = Yaml.Seq(bootstrap, "volumes").Cast<YamlScalarNode>().Single().Value!.Split(':');
        Assert.Equal(Path.GetFullPath(Repo.KongYml), Path.GetFullPath(Path.Combine(Repo.File("kong", "hybrid"), mount[0])));
        var env = KongSettings.ComposeEnvironment(bootstrap);
        Assert.Equal("control_plane", env["KONG_ROLE"]);
        Assert.Equal(KongConf["pluginserver_gitlab_ci_auth_query_cmd"], env["KONG_PLUGINSERVER_GITLAB_CI_AUTH_QUERY_CMD"]);
    }

    // ---- Kubernetes ----

    private static List<YamlMappingNode> Manifests() =>
        Yaml.LoadAll(Repo.File("kong", "kubernetes", "gitlab-ci-auth.yaml")).Cast<YamlMappingNode>().ToList();

    private static string? Meta(YamlMappingNode o, string key) => Yaml.Get(o, "metadata") is YamlMappingNode m ? Yaml.Str(m, key) : null;

    private static string? Annotation(YamlMappingNode o, string key) =>
        Yaml.Get(o, "metadata") is YamlMappingNode m && Yaml.Get(m, "annotations") is YamlMappingNode a ? Yaml.Str(a, key) : null;

    [Fact]
    public void Helm_values_run_the_repositorys_image_with_the_controller()
    {
        var values = Yaml.Map(Yaml.Load(Repo.File("kong", "kubernetes", "values.yaml")), "values");
        var image = Yaml.Map(Yaml.Get(values, "image")!, "image");
        Assert.False(string.IsNullOrEmpty(Yaml.Str(image, "repository")));
        Assert.NotEqual("kong", Yaml.Str(image, "repository"));   // the image of the Dockerfile, not stock Kong
        Assert.Matches(@"^\d+\.\d+\.\d+$", Yaml.Str(image, "tag")!);
        Assert.Equal("true", Yaml.Str(Yaml.Map(Yaml.Get(values, "ingressController")!, "ingressController"), "enabled"));
        // the chart's KONG_PLUGINS comes from `plugins` only when that is set: env.plugins must be the one
        Assert.True(Yaml.Get(values, "plugins") is null, "values.yaml sets `plugins`, which makes the chart write its own KONG_PLUGINS");
        var node = Node("kong/kubernetes/values.yaml (Helm values)");
        foreach (var env in new[] { "KONG_PLUGINS", "KONG_PLUGINSERVER_NAMES", "KONG_PLUGINSERVER_GITLAB_CI_AUTH_START_CMD", "KONG_PLUGINSERVER_GITLAB_CI_AUTH_QUERY_CMD", "KONG_PLUGINSERVER_GITLAB_CI_AUTH_SOCKET" })
            Assert.NotNull(node[KongSettings.ConfKey(env)]);
    }

    [Fact]
    public void Kubernetes_plugins_are_configuration_konghq_com_v1_and_cluster_plugins_carry_the_ingress_class()
    {
        var plugins = Manifests().Where(o => Yaml.Str(o, "kind") is "KongPlugin" or "KongClusterPlugin").ToList();
        Assert.Contains(plugins, p => Yaml.Str(p, "kind") == "KongPlugin" && Yaml.Str(p, "plugin") == PluginName);
        Assert.Contains(plugins, p => Yaml.Str(p, "kind") == "KongClusterPlugin" && Yaml.Str(p, "plugin") == PluginName);
        foreach (var p in plugins)
        {
            Assert.Equal("configuration.konghq.com/v1", Yaml.Str(p, "apiVersion"));
            Assert.NotNull(Yaml.Str(p, "plugin"));
            Assert.True(Yaml.Get(p, "consumerRef") is null, $"{Meta(p, "name")}: scoped to a Consumer");
            if (Yaml.Str(p, "kind") == "KongPlugin") Assert.NotNull(Meta(p, "namespace"));
            else Assert.Equal("kong", Annotation(p, "kubernetes.io/ingress.class"));   // the controller ignores it otherwise
        }
    }

    [Fact]
    public void Ingress_and_HTTPRoute_use_gitlab_ci_auth_through_the_plugins_annotation()
    {
        var objects = Manifests();
        var routes = objects.Where(o => Yaml.Str(o, "kind") is "Ingress" or "HTTPRoute").ToList();
        Assert.Contains(routes, r => Yaml.Str(r, "kind") == "Ingress");
        Assert.Contains(routes, r => Yaml.Str(r, "kind") == "HTTPRoute");
        var services = objects.Where(o => Yaml.Str(o, "kind") == "Service").Select(o => (Meta(o, "namespace"), Meta(o, "name"))).ToList();

        foreach (var route in routes)
        {
            string ns = Meta(route, "namespace")!, name = Meta(route, "name")!;
            var names = (Annotation(route, "konghq.com/plugins") ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            // the controller's lookup: a KongPlugin of the route's namespace, else a KongClusterPlugin of that name
            var used = names.Select(n =>
                objects.FirstOrDefault(o => Yaml.Str(o, "kind") == "KongPlugin" && Meta(o, "name") == n && Meta(o, "namespace") == ns)
                ?? objects.FirstOrDefault(o => Yaml.Str(o, "kind") == "KongClusterPlugin" && Meta(o, "name") == n)
                ?? throw new Xunit.Sdk.XunitException($"{name}: konghq.com/plugins names '{n}', which no KongPlugin in {ns} nor KongClusterPlugin is")).ToList();
            Assert.Contains(used, p => Yaml.Str(p, "plugin") == PluginName);

            var spec = Yaml.Map(Yaml.Get(route, "spec")!, "spec");
            var json = Yaml.ToJson(spec)!.ToJsonString();
            if (Yaml.Str(route, "kind") == "Ingress")
            {
                Assert.Equal("networking.k8s.io/v1", Yaml.Str(route, "apiVersion"));
                Assert.Equal("kong", Yaml.Str(spec, "ingressClassName"));
            }
            else
            {
                Assert.Equal("gateway.networking.k8s.io/v1", Yaml.Str(route, "apiVersion"));
                var parent = Yaml.Str((YamlMappingNode)Yaml.Seq(spec, "parentRefs").Single(), "name");
                var gateway = objects.Single(o => Yaml.Str(o, "kind") == "Gateway" && Meta(o, "name") == parent && Meta(o, "namespace") == ns);
                var className = Yaml.Str(Yaml.Map(Yaml.Get(gateway, "spec")!, "gateway spec"), "gatewayClassName");
                var gatewayClass = objects.Single(o => Yaml.Str(o, "kind") == "GatewayClass" && Meta(o, "name") == className);
                Assert.Equal("konghq.com/kic-gateway-controller", Yaml.Str(Yaml.Map(Yaml.Get(gatewayClass, "spec")!, "class spec"), "controllerName"));
            }
            // the backend exists in the same file
            Assert.Contains(services, s => s.Item1 == ns && json.Contains($"\"name\":\"{s.Item2}\"", StringComparison.Ordinal));
        }
    }
}
