using GitLabCiAuth.TestSupport;
using GitLabCiAuth.Testing;

namespace GitLabCiAuth.Host.Tests;

/// <summary>`gitlab-ci-auth check --lint FILE` on the binary: every gitlab-ci-auth config of a file, checked as the server checks it at instance start.</summary>
public sealed class LintTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private string Write(string name, string text)
    {
        string path = _dir.Combine(name);
        File.WriteAllText(path, text);
        return path;
    }

    private static Task<RunResult> Lint(string path) => HostProcess.RunAsync("check", "--lint", path);

    private const string Rules = """rules: [{name: any, claims: {project_id: ["*"]}}]""";

    [Fact]
    public async Task Valid_plugin_config_in_yaml_and_json_exits_0()
    {
        var yaml = await Lint(Write("ok.yaml", $"""
            issuer: https://gitlab.example.com
            audiences: [https://api.example.com]
            {Rules}
            """));
        Assert.True(yaml.ExitCode == 0, yaml.ToString());
        Assert.Contains("1 gitlab-ci-auth config, all valid", yaml.Stdout);

        var json = await Lint(Write("ok.json", """
            {"name": "gitlab-ci-auth", "protocols": ["https"], "config": {"issuer": "https://gitlab.example.com", "audiences": ["a"],
             "rules": [{"name": "any", "claims": {"project_id": ["*"]}}]}}
            """));
        Assert.True(json.ExitCode == 0, json.ToString());
        Assert.Equal("", json.Stderr);
    }

    [Fact]
    public async Task Every_schema_problem_is_listed_with_its_field_and_line()
    {
        string path = Write("bad.yaml", """
            issuer: https://gitlab.example.com
            audiences: []
            clock_skew_seconds: 5000
            mode: loud
            rules:
              - name: deploy
                effect: permit
                claims: {ref: [main]}
            """);
        var r = await Lint(path);

        Assert.True(r.ExitCode == 1, r.ToString());
        Assert.Contains($"{path}:2: gitlab-ci-auth config: config.audiences: length must be at least 1", r.Stdout);
        Assert.Contains($"{path}:3: gitlab-ci-auth config: config.clock_skew_seconds: value should be between 0 and 600", r.Stdout);
        Assert.Contains($"{path}:4: gitlab-ci-auth config: config.mode: expected one of: enforce, dry_run", r.Stdout);
        Assert.Contains($"{path}:7: gitlab-ci-auth config: config.rules[0].effect: expected one of: allow, deny", r.Stdout);
        Assert.Contains("1 gitlab-ci-auth config, 1 with problems", r.Stdout);
    }

    [Theory]
    [InlineData("jwks_uri: https://gitlab.example.com/keys\nstatic_jwks: '{\"keys\":[]}'", "config.static_jwks: only one or none of these fields must be set")]
    [InlineData("consumer_by: id", "config.consumer_claim: required field missing (consumer_claim names the claim to look up when config.consumer_by is id)")]
    [InlineData("jwks_refresh_seconds: 7200\njwks_stale_seconds: 3600", "config.jwks_stale_seconds: must be at least jwks_refresh_seconds")]
    [InlineData("upstream_headers: {project_id: Authorization}", "config.upstream_headers.project_id: cannot overwrite the token header")]
    [InlineData("credential_template: 'gitlab-{project_id'", "config.credential_template:")]
    public async Task Cross_field_and_compiled_rules_are_checked_like_at_instance_start(string extra, string expected)
    {
        var r = await Lint(Write("c.yaml", $"issuer: https://gitlab.example.com\naudiences: [a]\n{Rules}\n{extra}\n"));
        Assert.True(r.ExitCode == 1, r.ToString());
        Assert.Contains(expected, r.Stdout);
    }

    [Fact]
    public async Task Policy_is_compiled()
    {
        var r = await Lint(Write("p.yaml", """
            issuer: https://gitlab.example.com
            audiences: [a]
            rules:
              - {name: no-forks, effect: deny, claims: {project_path: ["!acme/**"]}}
            """));
        Assert.True(r.ExitCode == 1, r.ToString());
        Assert.Contains("config.rules:", r.Stdout);
        Assert.Contains("allow rule", r.Stdout);
    }

    [Fact]
    public async Task Kong_yml_names_each_entry_and_checks_every_one()
    {
        string path = Write("kong.yml", $$"""
            _format_version: "3.0"
            services:
              - name: api
                url: http://echo:80
                plugins:
                  - name: gitlab-ci-auth
                    config: {issuer: https://gitlab.example.com, audiences: [a], {{Rules}}}
                  - name: rate-limiting
                    config: {minute: 5}
                routes:
                  - name: deploy
                    paths: [/deploy]
                    plugins:
                      - name: gitlab-ci-auth
                        protocols: [tcp]
                        config:
                          issuer: http://gitlab.example.com
                          audiences: [a]
                          {{Rules}}
            routes:
              - name: loose
                service: api
                paths: [/loose]
                plugins:
                  - name: gitlab-ci-auth
                    config: {issuer: https://gitlab.example.com, audiences: [a], rules: []}
            consumers:
              - username: ci
                plugins:
                  - name: gitlab-ci-auth
                    config: {issuer: https://gitlab.example.com, audiences: [a], {{Rules}}}
            plugins:
              - name: gitlab-ci-auth
                config: {issuer: https://gitlab.example.com, audiences: [a], {{Rules}}}
              - name: gitlab-ci-auth
                route: deploy
                consumer: ci
                config: {issuer: https://gitlab.example.com, audiences: [a], {{Rules}}}
            """);
        var r = await Lint(path);

        Assert.True(r.ExitCode == 1, r.ToString());
        Assert.Contains($"{path}:6: service api: ok", r.Stdout);
        Assert.Contains($"{path}:15: route deploy (service api): protocols[0]: expected one of: grpc, grpcs, http, https", r.Stdout);
        Assert.Contains($"{path}:17: route deploy (service api): config.issuer: should start with: https:// (an https:// URL is required unless config.allow_insecure_http is true)", r.Stdout);
        Assert.Contains($"{path}:26: route loose: config.rules: length must be at least 1", r.Stdout);
        Assert.Contains("consumer ci: consumer: gitlab-ci-auth cannot be scoped to a Consumer", r.Stdout);
        Assert.Contains("global plugin: ok", r.Stdout);
        Assert.Contains("plugin on route deploy: consumer: value must be null (gitlab-ci-auth cannot be scoped to a consumer)", r.Stdout);
        Assert.Contains("6 gitlab-ci-auth configs, 4 with problems", r.Stdout);
        Assert.DoesNotContain("rate-limiting", r.Stdout);
    }

    [Fact]
    public async Task Kubernetes_manifests_lint_every_gitlab_ci_auth_KongPlugin_and_KongClusterPlugin()
    {
        string path = Write("k8s.yaml", $$"""
            apiVersion: configuration.konghq.com/v1
            kind: KongPlugin
            metadata: {name: deploy, namespace: ci}
            plugin: gitlab-ci-auth
            config:
              issuer: https://gitlab.example.com
              audiences: [a]
              {{Rules}}
            ---
            apiVersion: configuration.konghq.com/v1
            kind: KongClusterPlugin
            metadata:
              name: reports
              annotations: {kubernetes.io/ingress.class: kong}
            plugin: gitlab-ci-auth
            consumerRef: someone
            config:
              issuer: https://gitlab.example.com
              audiences: [a]
              mode: block
              {{Rules}}
            ---
            apiVersion: configuration.konghq.com/v1
            kind: KongPlugin
            metadata: {name: limits}
            plugin: rate-limiting
            config: {minute: 5}
            ---
            apiVersion: configuration.konghq.com/v1
            kind: KongPlugin
            metadata: {name: secret-config}
            plugin: gitlab-ci-auth
            configFrom: { secretKeyRef: { name: gitlab-ci-auth, key: config } }
            ---
            apiVersion: networking.k8s.io/v1
            kind: Ingress
            metadata:
              name: deploy
              annotations: {konghq.com/plugins: deploy}
            spec: {ingressClassName: kong}
            """);
        var r = await Lint(path);

        Assert.True(r.ExitCode == 1, r.ToString());
        Assert.Contains($"{path}:1: KongPlugin deploy (namespace ci): ok", r.Stdout);
        Assert.Contains($"{path}:20: KongClusterPlugin reports: config.mode: expected one of: enforce, dry_run", r.Stdout);
        Assert.Contains("KongClusterPlugin reports: consumerRef: gitlab-ci-auth cannot be scoped to a Consumer", r.Stdout);
        Assert.Contains("KongPlugin secret-config: note: config comes from a Secret (configFrom)", r.Stdout);
        Assert.Contains("3 gitlab-ci-auth configs, 1 with problems", r.Stdout);
    }

    [Fact]
    public async Task A_bad_regular_expression_is_reported_with_the_parsers_own_message()
    {
        // the AOT binary keeps .NET's resource strings: the parser's sentence, not "MakeException, v[0-9, 5, UnterminatedBracket"
        var r = await Lint(Write("re.yaml", """
            issuer: https://gitlab.example.com
            audiences: [a]
            rules:
              - name: release-tags
                claims:
                  ref: ["re:v[0-9"]
            """));

        Assert.True(r.ExitCode == 1, r.ToString());
        Assert.Contains("config.rules[0].claims.ref: rules[0] (name \"release-tags\") claim \"ref\": invalid regular expression: " +
            "Invalid pattern 'v[0-9' at offset 5. Unterminated [] set. (pattern 1: \"re:v[0-9\")", r.Stdout);
        Assert.DoesNotContain("MakeException", r.Stdout);
        Assert.DoesNotContain("UnterminatedBracket", r.Stdout);
    }

    [Fact]
    public async Task System_messages_are_sentences_too()
    {
        var r = await Lint(_dir.Combine("missing.yaml"));
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("Could not find file", r.Stderr);
        Assert.DoesNotContain("IO_FileNotFound", r.Stderr);
    }

    [Fact]
    public async Task A_file_without_a_gitlab_ci_auth_config_is_a_problem()
    {
        var r = await Lint(Write("kong.yml", "_format_version: \"3.0\"\nservices: [{name: a, url: http://x, plugins: [{name: acl, config: {allow: [x]}}]}]\n"));
        Assert.True(r.ExitCode == 1, r.ToString());
        Assert.Contains("no gitlab-ci-auth config found", r.Stdout);
    }

    [Fact]
    public async Task Invalid_yaml_is_a_problem_with_its_line()
    {
        var r = await Lint(Write("broken.yaml", "issuer: https://gitlab.example.com\naudiences: a: b\n"));
        Assert.True(r.ExitCode == 1, r.ToString());
        Assert.Contains("invalid YAML at line 2", r.Stdout);

        // YamlDotNet's scanner fails differently on an unclosed flow sequence: still a problem, not a crash
        var unclosed = await Lint(Write("unclosed.yaml", "issuer: https://gitlab.example.com\naudiences: [a\nrules: x\n"));
        Assert.True(unclosed.ExitCode == 1, unclosed.ToString());
        Assert.Contains("invalid YAML", unclosed.Stdout);
    }

    [Fact]
    public async Task Usage_errors_exit_2()
    {
        var noFile = await HostProcess.RunAsync("check", "--lint");
        Assert.Equal(2, noFile.ExitCode);
        Assert.Contains("--lint needs a value", noFile.Stderr);

        var missing = await Lint(_dir.Combine("nope.yaml"));
        Assert.Equal(2, missing.ExitCode);
        Assert.Contains("cannot read", missing.Stderr);

        var mixed = await HostProcess.RunAsync("check", "--lint", Write("x.yaml", "issuer: x"), "--token", "t");
        Assert.Equal(2, mixed.ExitCode);
        Assert.Contains("takes no other option", mixed.Stderr);
    }
}
