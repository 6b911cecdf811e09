using System.Text;
using GitLabCiAuth.Claims;
using GitLabCiAuth.Identity;
using GitLabCiAuth.Keys;
using GitLabCiAuth.Plugin;
using GitLabCiAuth.Policy;
using GitLabCiAuth.Tokens;
using Kong.PluginServer.Hosting;
using Kong.PluginServer.Plugins;

namespace GitLabCiAuth.Host.Check;

/// <summary>
/// `gitlab-ci-auth check --config FILE [--route NAME] --token TOKEN|- [--jwks FILE] [--method M] [--path P]`:
/// "why was my pipeline rejected?" Validates the token and evaluates the route's policy offline, as the
/// plugin would, and prints the decision with its trace. Exit 0 allow, 1 deny, 2 error.
/// </summary>
public static class CheckCommand
{
    public const string Usage = """
        usage: gitlab-ci-auth check --config FILE [--route NAME] --token TOKEN|- [--jwks FILE] [--method M] [--path P]
               gitlab-ci-auth check --lint FILE

          --config FILE   a gitlab-ci-auth plugin config (JSON or YAML), or a declarative kong.yml with --route
          --route NAME    the route whose gitlab-ci-auth plugin to use (kong.yml only)
          --token T       the ID token (the job's $ID_TOKEN), or - to read it from stdin
          --jwks FILE     verify with this key set instead of fetching the issuer's
          --method M, --path P   the request, for rules on @method / @path

          --lint FILE     no token: validate every gitlab-ci-auth config in FILE as the server does when Kong
                          starts an instance: a plugin config (JSON or YAML), a declarative kong.yml (plugins on
                          services, routes and at the top level) or Kubernetes KongPlugin/KongClusterPlugin manifests

        exit code: 0 allowed, 1 denied, 2 error (bad config, unreadable token file, ...)
                   with --lint: 0 every config is valid, 1 a problem (each listed with its field), 2 usage error
        """;

    public static async Task<int> RunAsync(IReadOnlyList<string> args, TextWriter o, TextWriter err, TextReader stdin)
    {
        string? configPath = null, route = null, token = null, jwksPath = null, method = null, path = null, lintPath = null;
        int options = 0;
        for (int i = 0; i < args.Count; i++, options++)
        {
            string a = args[i].TrimStart('-');
            string Next() => i + 1 < args.Count ? args[++i] : throw new UsageException($"{args[i]} needs a value");
            switch (a)
            {
                case "lint": lintPath = Next(); break;
                case "config": configPath = Next(); break;
                case "route": route = Next(); break;
                case "token": token = Next(); break;
                case "jwks": jwksPath = Next(); break;
                case "method": method = Next(); break;
                case "path": path = Next(); break;
                case "h" or "help": o.WriteLine(Usage); return 0;
                default: throw new UsageException($"check: unknown option '{args[i]}'");
            }
        }
        if (lintPath is not null)
        {
            if (options > 1) throw new UsageException("check --lint FILE takes no other option");
            return LintCommand.Run(lintPath, o, err);
        }
        if (configPath is null) throw new UsageException("check needs --config FILE (or --lint FILE)");
        if (token is null) throw new UsageException("check needs --token TOKEN (or - for stdin)");
        if (token == "-") token = (await stdin.ReadToEndAsync()).Trim();
        token = token.Trim();
        if (token.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)) token = token[7..].Trim();

        var plugin = new GitLabCiAuthPlugin(new JwksKeyStore());
        GitLabCiAuthConfig config;
        try
        {
            byte[] raw = ConfigFile.Load(configPath, route);
            config = plugin.ParseConfig(raw);
            if (jwksPath is not null)
            {
                config.StaticJwks = await File.ReadAllTextAsync(jwksPath);
                config.JwksUri = null;
            }
        }
        catch (Exception e) when (e is ConfigException or FormatException or IOException or UnauthorizedAccessException)
        {
            err.WriteLine($"check: {e.Message}");
            return 2;
        }

        CompiledConfig compiled;
        try { compiled = GitLabCiAuthPlugin.Compile(config); }
        catch (ConfigException e) { err.WriteLine($"check: {e.Message}"); return 2; }

        using var validator = new GitLabTokenValidator(compiled.TokenOptions, new JwksKeyStore());
        var result = await validator.ValidateAsync("Bearer " + token);
        o.WriteLine($"route policy: {config.Rules.Count} rule(s), mode {config.Mode}, " + string.Join("; ", compiled.TokenOptions.EffectiveIssuers.Select(i =>
            $"issuer {i.Issuer} (audiences {string.Join(", ", i.Audiences ?? [])})")));
        foreach (var w in compiled.Warnings) o.WriteLine("warning:  " + w);
        if (path is not null)
        {
            // rules see Kong's normalised path, not what the client typed
            string normalised = KongPath.Normalize(path);
            if (normalised != path) o.WriteLine($"path:     {path} is {normalised} to Kong (kong.request.get_path), which is what @path rules see");
            path = normalised;
        }
        if (!result.IsValid)
        {
            o.WriteLine($"token:    INVALID  {result.ErrorCode}: {result.Description}");
            o.WriteLine($"          kid={result.Kid ?? "-"} iss={result.Issuer ?? "-"} aud={result.Audience ?? "-"} jti={result.Jti ?? "-"} hash={result.TokenHash ?? "-"}");
            if (result.KeysFailure is { } keys) o.WriteLine($"keys:     {keys.Describe()} [{keys.Cause.Label()}]");
            o.WriteLine($"decision: deny ({result.HttpStatus} {result.ErrorCode})" + (config.DryRun ? " - dry_run: the request would be forwarded" : ""));
            return result.Error == TokenError.KeysUnavailable ? 2 : 1;
        }

        var claims = result.Claims!;
        o.WriteLine($"token:    valid  kid={result.Kid} jti={result.Jti} expires {result.ExpiresAt:u} hash={result.TokenHash}");
        o.WriteLine("claims:   " + Describe(claims));
        var trace = compiled.Policy.Explain(claims, method, path);
        var d = trace.Decision;
        if (d.Allowed)
        {
            o.WriteLine($"decision: allow  (rule {d.Rule})");
            var credential = compiled.Credential?.Render(claims);
            var identity = UpstreamIdentity.Build(compiled.Headers, claims, null, credential, anonymous: false, consumerHeaders: true);
            o.WriteLine($"identity: credential {credential ?? "-"}; headers " +
                string.Join(", ", compiled.Headers.Names.Append(KongConsumerHeaders.CredentialIdentifier)
                    .Where(h => identity.Get(h) is not null).Select(h => $"{h}={ClaimText.Escape(identity.Get(h)!)}")));
            if (identity.Dropped is { } dropped)
                o.WriteLine($"          not sent (claim value unfit for a header): {string.Join(", ", dropped)}");
            return 0;
        }
        o.WriteLine($"decision: deny  (403 {d.Code}{(d.Rule is null ? "" : ", rule " + d.Rule)})" + (config.DryRun ? " - dry_run: the request would be forwarded" : ""));
        o.WriteLine("trace:    " + trace);
        return 1;
    }

    private static string Describe(ClaimSet c)
    {
        var sb = new StringBuilder();
        foreach (var name in new[] { "project_id", "project_path", "namespace_path", "ref", "ref_type", "ref_protected", "environment", "pipeline_source", "job_id", "user_login" })
            if (c.GetString(name) is { } v) sb.Append(name).Append('=').Append(ClaimText.Escape(v)).Append(' ');
        return sb.ToString().TrimEnd();
    }
}
