using GitLabCiAuth.Claims;
using GitLabCiAuth.Identity;
using GitLabCiAuth.Keys;
using GitLabCiAuth.Policy;
using GitLabCiAuth.Tokens;
using Kong.PluginServer;
using Kong.PluginServer.Plugins;

namespace GitLabCiAuth.Plugin;

/// <summary>
/// gitlab-ci-auth as a Kong plugin: validates GitLab CI ID tokens in `access`, applies the route's claim
/// policy and hands the job's identity to the upstream, the logs and the rest of Kong. Priority 1200 runs
/// it among Kong's bundled auth plugins (jwt 1450, key-auth 1250) and before acl (950) and rate-limiting (910).
/// </summary>
public sealed class GitLabCiAuthPlugin(JwksKeyStore? keyStore = null, TimeProvider? time = null) : KongPlugin<GitLabCiAuthConfig>
{
    public const string PluginName = "gitlab-ci-auth";
    public const string PluginVersion = "0.1.0";

    private readonly JwksKeyStore _keys = keyStore ?? JwksKeyStore.Shared;
    private readonly TimeProvider _time = time ?? TimeProvider.System;

    public override string Name => PluginName;
    public override string Version => PluginVersion;
    public override int Priority => 1200;
    public override KongPhase Phases => KongPhase.Access;
    public override IReadOnlyList<SchemaField> EntityFields => GitLabCiAuthSchema.EntityFields;
    public override IReadOnlyList<EntityCheck> EntityChecks => GitLabCiAuthSchema.EntityChecks;

    protected override void Validate(GitLabCiAuthConfig config) => _ = Compile(config);

    protected override IPluginHandler CreateHandler(GitLabCiAuthConfig config)
    {
        var compiled = Compile(config);
        var validator = new GitLabTokenValidator(compiled.TokenOptions, _keys, _time);
        return new AccessHandler(config, compiled, validator).Tracked();
    }

    /// <summary>Everything derived from a config once per instance; raises <see cref="ConfigException"/> naming the field.</summary>
    public static CompiledConfig Compile(GitLabCiAuthConfig config)
    {
        var token = new TokenValidationOptions
        {
            Issuer = config.Issuer ?? "",
            Issuers = (config.Issuers ?? []).Select(i => new IssuerOptions
            {
                Issuer = i.Issuer,
                JwksUri = string.IsNullOrWhiteSpace(i.JwksUri) ? null : i.JwksUri,
                StaticJwks = string.IsNullOrWhiteSpace(i.StaticJwks) ? null : i.StaticJwks,
                Audiences = i.Audiences,
            }).ToList(),
            Audiences = config.Audiences,
            JwksUri = string.IsNullOrWhiteSpace(config.JwksUri) ? null : config.JwksUri,
            StaticJwks = string.IsNullOrWhiteSpace(config.StaticJwks) ? null : config.StaticJwks,
            Algorithms = config.Algorithms,
            ClockSkewSeconds = config.ClockSkewSeconds,
            MaxTokenAgeSeconds = config.MaxTokenAgeSeconds,
            RequiredClaims = config.RequiredClaims,
            TokenHeader = config.TokenHeader.ToLowerInvariant(),
            MaxTokenBytes = config.MaxTokenBytes,
            JwksRefreshSeconds = config.JwksRefreshSeconds,
            JwksRefetchCooldownSeconds = config.JwksRefetchCooldownSeconds,
            JwksStaleSeconds = config.JwksStaleSeconds,
            JwksFetchTimeoutMs = config.JwksFetchTimeoutMs,
            JwksCaFile = string.IsNullOrWhiteSpace(config.JwksCaFile) ? null : config.JwksCaFile,
            AllowInsecureHttp = config.AllowInsecureHttp,
            VerifiedTokenCacheSize = config.VerifiedTokenCacheSize,
        };
        try { token.Validate(); }
        catch (TokenOptionsException e) { throw new ConfigException(e.Field, e.Message.Split(':', 2) is [_, var m] ? m.Trim() : e.Message); }

        CompiledPolicy policy;
        try { policy = PolicyCompiler.Compile(config.Rules); }
        catch (PolicyConfigException e) { throw new ConfigException(e.Field, e.Message); }

        // header names compare as upstreams read them (ProtectedHeaders): X_Foo and x-foo are one name there
        if (!IsToken(config.TokenHeader)) throw new ConfigException("token_header", $"'{config.TokenHeader}' is not a valid header name");
        if (KongConsumerHeaders.All.FirstOrDefault(h => ProtectedHeaders.SameForUpstream(h, config.TokenHeader)) is { } takenByKong)
            throw new ConfigException("token_header", $"'{config.TokenHeader}' reads as Kong's {takenByKong} header");
        var seen = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (claim, header) in config.UpstreamHeaders.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            string field = $"upstream_headers.{claim}";
            if (!IsToken(header)) throw new ConfigException(field, $"'{header}' is not a valid header name");
            if (ProtectedHeaders.SameForUpstream(header, config.TokenHeader))
                throw new ConfigException(field, "cannot overwrite the token header");
            if (KongConsumerHeaders.All.FirstOrDefault(h => ProtectedHeaders.SameForUpstream(h, header)) is { } kong)
                throw new ConfigException(field, $"'{header}' reads as {kong}, which the plugin sets from the Kong consumer");
            if (seen.TryGetValue(ProtectedHeaders.Key(header), out var other))
                throw new ConfigException(field, $"'{header}' reads as the same header as upstream_headers.{other} to upstreams");
            seen[ProtectedHeaders.Key(header)] = claim;
        }

        ClaimTemplate? credential = null;
        if (!string.IsNullOrEmpty(config.CredentialTemplate))
        {
            try { credential = ClaimTemplate.Parse(config.CredentialTemplate); }
            catch (FormatException e) { throw new ConfigException("credential_template", e.Message); }
        }
        // project 16234 of one GitLab is not project 16234 of another: with several issuers, the credential (and so
        // rate-limiting by credential) must tell them apart
        bool severalIssuers = token.EffectiveIssuers.Count > 1;
        if (severalIssuers && credential is not null && !credential.NamesIssuer)
            throw new ConfigException("credential_template",
                $"'{config.CredentialTemplate}' would give projects of different issuers the same credential: with several issuers " +
                "it must use {iss_host} or {iss}, e.g. gitlab-{iss_host}-project-{project_id}");
        if (severalIssuers && credential is not null && !credential.Claims.Contains("iss")
            && token.EffectiveIssuers.GroupBy(i => ClaimTemplate.HostOf(i.Issuer)).FirstOrDefault(g => g.Count() > 1) is { } sameHost)
            throw new ConfigException("credential_template",
                $"{{iss_host}} is '{sameHost.Key}' for {string.Join(" and ", sameHost.Select(i => i.Issuer))}: use {{iss}} to tell them apart");
        var groups = new List<ClaimTemplate>();
        for (int i = 0; i < config.AuthenticatedGroups.Count; i++)
        {
            try { groups.Add(ClaimTemplate.Parse(config.AuthenticatedGroups[i])); }
            catch (FormatException e) { throw new ConfigException($"authenticated_groups[{i}]", e.Message); }
        }
        if (config.ConsumerBy == "id" && config.ConsumerClaim is null)
            throw new ConfigException("consumer_by", "needs consumer_claim");

        // a cached token keeps only what this config reads: rules, headers, the log record, templates, consumer_claim
        token.RetainedClaims = new RetainedClaims(
            config.Rules.SelectMany(r => r.Claims.Keys).Where(c => c.Length > 0 && c[0] != VirtualClaims.Prefix)
                .Concat(config.UpstreamHeaders.Keys)
                .Concat(AuditRecord.IdentityClaims).Append("iss").Concat(config.LogUserEmail ? ["user_email"] : [])
                .Concat(groups.Append(credential).OfType<ClaimTemplate>().SelectMany(t => t.Claims)
                    .Select(c => c == ClaimTemplate.IssuerHost ? "iss" : c))
                .Concat(config.ConsumerClaim is { } cc ? [cc] : []));
        var identity = new IdentityHeaders(config.UpstreamHeaders);
        var protectedNames = new ProtectedHeaders(identity.Names.Concat(KongConsumerHeaders.All));
        var warnings = PolicyWarnings.Find(config.Rules, token.RequiredClaims).ToList();
        if (severalIssuers)
            for (int i = 0; i < groups.Count; i++)
                if (!groups[i].NamesIssuer && groups[i].Claims.Count > 0)
                    warnings.Add($"authenticated_groups[{i}]: '{groups[i].Source}' gives jobs of different issuers the same group; " +
                                 "with several issuers consider {iss_host} in it");
        return new CompiledConfig(token, policy, identity, protectedNames, credential, groups, warnings);
    }

    private static bool IsToken(string name) =>
        name.Length > 0 && name.All(c => c < 0x7F && (char.IsAsciiLetterOrDigit(c) || "!#$%&'*+-.^_`|~".Contains(c)));
}

/// <summary>The per-instance compiled form of a config.</summary>
public sealed record CompiledConfig(
    TokenValidationOptions TokenOptions,
    CompiledPolicy Policy,
    IdentityHeaders Headers,
    ProtectedHeaders Protected,
    ClaimTemplate? Credential,
    IReadOnlyList<ClaimTemplate> Groups,
    IReadOnlyList<string> Warnings);
