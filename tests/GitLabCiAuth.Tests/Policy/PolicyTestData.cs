using System.Text;
using System.Text.Json.Nodes;
using GitLabCiAuth.Claims;
using GitLabCiAuth.Policy;

namespace GitLabCiAuth.Tests.Policy;

/// <summary>Realistic GitLab CI ID token claims and small builders for rules.</summary>
internal static class PolicyTestData
{
    // As GitLab issues them: ids as strings, "true"/"false" strings, runner_id as an integer.
    public const string GitLabPayload = """
    {
      "namespace_id": "72",
      "namespace_path": "acme",
      "project_id": "4242",
      "project_path": "acme/api",
      "user_id": "17",
      "user_login": "jdoe",
      "user_email": "jdoe@example.com",
      "user_access_level": "developer",
      "pipeline_id": "1234567",
      "pipeline_source": "push",
      "job_id": "98765432",
      "ref": "main",
      "ref_type": "branch",
      "ref_path": "refs/heads/main",
      "ref_protected": "true",
      "environment": "production",
      "environment_protected": "true",
      "deployment_tier": "production",
      "runner_id": 5120,
      "runner_environment": "gitlab-hosted",
      "sha": "7c9e6f4b1a2d3e5f60718293a4b5c6d7e8f90123",
      "project_visibility": "internal",
      "ci_config_ref_uri": "gitlab.example.com/acme/api//.gitlab-ci.yml@refs/heads/main",
      "ci_config_sha": "7c9e6f4b1a2d3e5f60718293a4b5c6d7e8f90123",
      "jti": "2b3f1c1e-8d4c-4d7e-9a55-0f6c3b2a1d90",
      "iss": "https://gitlab.example.com",
      "iat": 1735689600,
      "nbf": 1735689595,
      "exp": 1735693200,
      "sub": "project_path:acme/api:ref_type:branch:ref:main",
      "aud": "https://kong.example.com"
    }
    """;

    /// <summary>The GitLab payload, optionally edited (set a property to null to make it JSON null, or Remove it).</summary>
    public static ClaimSet Token(Action<JsonObject>? edit = null)
    {
        var obj = JsonNode.Parse(GitLabPayload)!.AsObject();
        edit?.Invoke(obj);
        return ClaimSet.FromJson(Encoding.UTF8.GetBytes(obj.ToJsonString()));
    }

    public static ClaimSet Token(string json) => ClaimSet.FromJson(Encoding.UTF8.GetBytes(json));

    public static RuleConfig Allow(string name, params (string Claim, string[] Patterns)[] claims) =>
        Rule(name, RuleConfig.EffectAllow, claims);

    public static RuleConfig Deny(string name, params (string Claim, string[] Patterns)[] claims) =>
        Rule(name, RuleConfig.EffectDeny, claims);

    public static RuleConfig Rule(string name, string effect, params (string Claim, string[] Patterns)[] claims)
    {
        var rule = new RuleConfig { Name = name, Effect = effect };
        foreach (var (claim, patterns) in claims) rule.Claims[claim] = new List<string>(patterns);
        return rule;
    }

    public static (string, string[]) C(string claim, params string[] patterns) => (claim, patterns);

    public static CompiledPolicy Compile(params RuleConfig[] rules) => PolicyCompiler.Compile(rules);

    /// <summary>A one-rule allow policy over one claim: whether the claims satisfy the patterns.</summary>
    public static bool Allows(ClaimSet claims, string claim, params string[] patterns) =>
        Compile(Allow("r", C(claim, patterns))).Evaluate(claims).Allowed;
}
