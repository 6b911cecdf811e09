using System.Text.RegularExpressions;
using Deployment.Tests.Infrastructure;
using Kong.PluginServer.Testing;
using YamlDotNet.RepresentationModel;
using static Deployment.Tests.Infrastructure.Deployment;

namespace Deployment.Tests;

/// <summary>
/// kong/gitlab-ci.example.yml: each job asks GitLab for an ID token for the API and sends it to a kong.yml route
/// that accepts its audience, with a method the route serves, and the route's policy lets that job through.
/// </summary>
public sealed partial class GitLabCiExampleTests
{
    private static readonly string[] Keywords = ["variables", "stages", "default", "workflow", "include", "image", "services", "cache", "before_script", "after_script"];

    public sealed record Job(string Name, YamlMappingNode Node);

    private static YamlMappingNode Root() => Yaml.Map(Yaml.Load(Repo.GitLabCiExample), "gitlab-ci.example.yml");

    private static List<Job> Jobs() =>
        Root().Children
            .Where(kv => !Keywords.Contains(((YamlScalarNode)kv.Key).Value) && !((YamlScalarNode)kv.Key).Value!.StartsWith('.'))
            .Select(kv => new Job(((YamlScalarNode)kv.Key).Value!, Yaml.Map(kv.Value, ((YamlScalarNode)kv.Key).Value!)))
            .ToList();

    public static TheoryData<string> JobNames()
    {
        var data = new TheoryData<string>();
        foreach (var j in Jobs()) data.Add(j.Name);
        return data;
    }

    /// <summary>What a job's curl sends: the variable holding the token, the method and the path under $API_URL.</summary>
    private static (string TokenVariable, string Method, string Path) Call(Job job)
    {
        var lines = Yaml.Seq(job.Node, "script").ToList();
        // an unquoted `- curl -H "Authorization: Bearer ..."` is a YAML mapping (": "), which GitLab rejects
        Assert.All(lines, l => Assert.True(l is YamlScalarNode, $"job {job.Name}: script line at {l.Start} is not a string; quote it"));
        var script = string.Join('\n', lines.Cast<YamlScalarNode>().Select(s => s.Value));
        Assert.Contains("curl", script);
        var bearer = BearerHeader().Match(script);
        Assert.True(bearer.Success, $"job {job.Name} does not send -H \"Authorization: Bearer $VAR\": {script}");
        var url = ApiUrl().Match(script);
        Assert.True(url.Success, $"job {job.Name} does not call \"$API_URL/...\": {script}");
        var x = ExplicitMethod().Match(script);
        string method = x.Success ? x.Groups[1].Value : script.Contains("--data", StringComparison.Ordinal) ? "POST" : "GET";
        return (bearer.Groups[1].Value, method, url.Groups[1].Value);
    }

    private static KongRoute RouteFor(string method, string path)
    {
        var candidates = KongYml.Routes
            .SelectMany(r => r.Paths.Where(p => path.StartsWith(p, StringComparison.Ordinal)).Select(p => (Route: r, Prefix: p)))
            .Where(c => c.Route.Methods.Count == 0 || c.Route.Methods.Contains(method))
            .OrderByDescending(c => c.Prefix.Length)
            .ToList();
        Assert.True(candidates.Count > 0, $"no kong.yml route serves {method} {path}");
        return candidates[0].Route;
    }

    [Fact]
    public void The_example_has_a_job_per_route()
    {
        var routes = Jobs().Select(j => { var c = Call(j); return RouteFor(c.Method, c.Path).Name; }).ToHashSet();
        Assert.Equal(KongYml.Routes.Select(r => r.Name).ToHashSet(), routes);
    }

    [Theory]
    [MemberData(nameof(JobNames))]
    public async Task Job_requests_an_id_token_for_the_api_and_its_route_lets_it_through(string name)
    {
        var job = Jobs().Single(j => j.Name == name);
        var (tokenVariable, method, path) = Call(job);

        // id_tokens: { VAR: { aud: ... } } is what makes GitLab mint the token into $VAR
        var idTokens = Yaml.Map(Yaml.Get(job.Node, "id_tokens") ?? throw new Xunit.Sdk.XunitException($"job {name} has no id_tokens"), "id_tokens");
        var token = Yaml.Map(Yaml.Get(idTokens, tokenVariable) ?? throw new Xunit.Sdk.XunitException($"job {name} sends ${tokenVariable}, which id_tokens does not define"), tokenVariable);
        var aud = Yaml.Get(token, "aud") switch
        {
            YamlScalarNode s => [s.Value!],
            YamlSequenceNode seq => seq.Children.Cast<YamlScalarNode>().Select(s => s.Value!).ToList(),
            _ => throw new Xunit.Sdk.XunitException($"job {name}: id_tokens.{tokenVariable} has no aud"),
        };

        var route = RouteFor(method, path);
        var auth = KongYml.EffectivePlugins(route)[PluginName];
        var audiences = auth.Config!["audiences"]!.AsArray().Select(a => (string)a!).ToList();
        Assert.True(aud.Intersect(audiences).Any(), $"job {name} asks for aud [{string.Join(", ", aud)}], route {route.Name} accepts [{string.Join(", ", audiences)}]");
        var apiUrl = Yaml.Str(Yaml.Map(Yaml.Get(job.Node, "variables") ?? Yaml.Get(Root(), "variables")!, "variables"), "API_URL");
        Assert.Contains(apiUrl, aud);

        // the job's token as GitLab would mint it, through the route's policy
        await using var h = RouteHarness.Start(auth);
        var claims = JobClaims(job);
        var minted = h.Minter.Mint(b =>
        {
            b.Set("aud", aud.Count == 1 ? aud[0] : aud.ToArray());
            foreach (var (k, v) in claims)
            {
                if (v is null) b.Remove(k);
                else b.Set(k, v);
            }
        });
        var r = await h.RunAsync(minted, method, path);
        Assert.True(r.Outcome == SimOutcome.Completed && r.Status == 200, $"job {name} on route {route.Name}: {r}");
    }

    /// <summary>
    /// The claims GitLab puts in the job's token that the example controls: the environment (name, tier as given or
    /// as GitLab infers it from the name, production protected) and the ref (protected main when the job only runs
    /// on main, a feature branch otherwise). Everything else is the minter's acme/platform job.
    /// </summary>
    private static Dictionary<string, string?> JobClaims(Job job)
    {
        var claims = new Dictionary<string, string?>();
        if (Yaml.Get(job.Node, "environment") is { } envNode)
        {
            string envName = envNode is YamlScalarNode s ? s.Value! : Yaml.Str(Yaml.Map(envNode, "environment"), "name")!;
            envName = envName.Replace("$CI_COMMIT_REF_SLUG", "feature-login");
            string? tier = envNode is YamlMappingNode m ? Yaml.Str(m, "deployment_tier") : null;
            tier ??= envName switch
            {
                "production" or "prod" => "production",
                "staging" or "stage" => "staging",
                _ when envName.StartsWith("review/", StringComparison.Ordinal) => "development",
                _ => "other",
            };
            claims["environment"] = envName;
            claims["deployment_tier"] = tier;
            claims["environment_protected"] = tier == "production" ? "true" : "false";
        }
        else
        {
            claims["environment"] = claims["environment_protected"] = claims["deployment_tier"] = null;
        }
        var rules = string.Join('\n', Yaml.Seq(job.Node, "rules").OfType<YamlMappingNode>().Select(r => Yaml.Str(r, "if")));
        bool mainOnly = rules.Contains("$CI_COMMIT_BRANCH == \"main\"", StringComparison.Ordinal);
        claims["ref"] = mainOnly ? "main" : "feature/login";
        claims["ref_path"] = mainOnly ? "refs/heads/main" : "refs/heads/feature/login";
        claims["ref_protected"] = mainOnly ? "true" : "false";
        return claims;
    }

    [GeneratedRegex(@"-H\s+[""']Authorization: Bearer \$\{?([A-Z_][A-Z0-9_]*)\}?[""']")]
    private static partial Regex BearerHeader();

    [GeneratedRegex(@"[""']\$\{?API_URL\}?(/[^""'\s]*)[""']")]
    private static partial Regex ApiUrl();

    [GeneratedRegex(@"(?:-X|--request)\s+([A-Z]+)")]
    private static partial Regex ExplicitMethod();
}
