using System.Globalization;
using System.Text.Json;
using GitLabCiAuth.Testing;

// Writes what the nginx rig needs into --out DIR (nothing is fetched over the network):
//   jwks.json           the static JWKS (one RSA-2048 key)
//   gitlab-config.json  the route's gitlab-ci-auth config (issuer, audiences, static_jwks, a production-like policy);
//                       the rig fills the schema's defaults and Kong's injected keys around it
//   warm.token          one valid token (reused by every request of the warm route)
//   cold.tokens         N distinct valid tokens, one per line (distinct jti)
//   expired.token, forged.token (another key reusing the real kid), fork.token (denied by the policy's deny rule),
//   feature.token (a feature branch: no allow rule matches)
// Tokens are valid for one hour from now.
string? outDir = null;
int cold = 2000;
for (int i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--out": outDir = args[++i]; break;
        case "--cold": cold = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        default:
            Console.Error.WriteLine("usage: TokenKit --out DIR [--cold N]");
            return 2;
    }
}
if (outDir is null || cold < 1)
{
    Console.Error.WriteLine("usage: TokenKit --out DIR [--cold N]");
    return 2;
}
Directory.CreateDirectory(outDir);

const string issuer = "https://gitlab.acme.example";
using var key = MinterKey.CreateRsa(2048);
var minter = new TokenMinter(issuer, key, TokenMinter.DefaultAudience);
string jwks = MinterKey.JwksJson(key);

var config = new Dictionary<string, object?>
{
    ["issuer"] = issuer,
    ["audiences"] = new[] { TokenMinter.DefaultAudience },
    ["static_jwks"] = jwks,
    ["rules"] = new object[]
    {
        new Dictionary<string, object?> { ["name"] = "no-forks", ["effect"] = "deny", ["claims"] = new Dictionary<string, object?> { ["project_path"] = new[] { "!acme/**" } } },
        new Dictionary<string, object?>
        {
            ["name"] = "deploy-from-protected-main",
            ["claims"] = new Dictionary<string, object?> { ["namespace_path"] = new[] { "acme/platform", "acme/infra/*" }, ["ref"] = new[] { "main" }, ["ref_protected"] = new[] { "true" } },
        },
        new Dictionary<string, object?>
        {
            ["name"] = "release-tags",
            ["claims"] = new Dictionary<string, object?> { ["namespace_path"] = new[] { "acme/**" }, ["ref_type"] = new[] { "tag" }, ["ref"] = new[] { "re:v[0-9]+\\.[0-9]+\\.[0-9]+" } },
        },
    },
};

File.WriteAllText(Path.Combine(outDir, "jwks.json"), jwks + "\n");
File.WriteAllText(Path.Combine(outDir, "gitlab-config.json"), JsonSerializer.Serialize(config) + "\n");
File.WriteAllText(Path.Combine(outDir, "warm.token"), minter.Mint() + "\n");
File.WriteAllText(Path.Combine(outDir, "expired.token"), minter.Ci(DateTimeOffset.UtcNow.AddHours(-3)).Build() + "\n");
File.WriteAllText(Path.Combine(outDir, "forged.token"), minter.SignedByUnknownKeyReusingKid() + "\n");
File.WriteAllText(Path.Combine(outDir, "fork.token"),
    minter.Mint(b => b.Set("project_path", "mallory/billing-api").Set("namespace_path", "mallory")) + "\n");
File.WriteAllText(Path.Combine(outDir, "feature.token"),
    minter.Mint(b => b.Set("ref", "feature/x").Set("ref_path", "refs/heads/feature/x").Set("ref_protected", "false")) + "\n");

var tokens = new string[cold];
Parallel.For(0, cold, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, i => tokens[i] = minter.Mint());
File.WriteAllLines(Path.Combine(outDir, "cold.tokens"), tokens);
Console.Error.WriteLine($"TokenKit: wrote the key set, the config and {cold + 5} tokens to {outDir}");
return 0;
