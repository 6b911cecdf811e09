using GitLabCiAuth.Claims;
using GitLabCiAuth.Identity;
using GitLabCiAuth.Policy;
using GitLabCiAuth.Tokens;
using Kong.PluginServer.Pdk;
using Kong.PluginServer.Plugins;

namespace GitLabCiAuth.Plugin;

/// <summary>
/// The filter glue of one config, shared by every instance with that config. An allowed request costs
/// two socket round trips with the default settings: one `get_headers` (plus `get_method`/`get_path` in
/// the same write when the policy uses them), then the identity setters, the end of the event and the
/// RpcReturn in one write. The handler reads the request, has <see cref="AccessDecider"/> decide (a pure function,
/// <see cref="AccessDecision.AsDryRun"/> for dry_run) and applies the decision in one place (<c>ApplyAsync</c>).
/// </summary>
internal sealed class AccessHandler(GitLabCiAuthConfig config, CompiledConfig compiled, GitLabTokenValidator validator) : PluginHandler
{
    /// <summary>get_headers' limit: a view this full may hide headers after it (see <see cref="TooManyHeaders"/>).</summary>
    private const int MaxHeaders = 1000;
    private readonly string _tokenHeader = config.TokenHeader.ToLowerInvariant();
    private readonly byte[] _tokenHeaderBytes = System.Text.Encoding.ASCII.GetBytes(config.TokenHeader.ToLowerInvariant());
    private readonly bool _anonymous = config.Anonymous is { Length: > 0 };
    private readonly string _mode = config.DryRun ? "dry_run" : "enforce";
    private string[]? _warnings = compiled.Warnings.Count > 0 ? [.. compiled.Warnings] : null; // logged once, at the first request

    private readonly Func<TokenResult, RenderedIdentity> _render = token =>
    {
        var credentialId = compiled.Credential?.Render(token.Claims!);
        return new RenderedIdentity(credentialId, credentialId is null ? null : new KongCredential(credentialId),
            UpstreamIdentity.Build(compiled.Headers, token.Claims, null, credentialId, anonymous: false, consumerHeaders: true));
    };

    /// <summary>
    /// An allowed request's identity when no Consumer is mapped: a function of the token alone, kept with the cached
    /// token. From the token's second request on, its identity headers and its allow record are copied in their wire
    /// form instead of being encoded again (<see cref="PdkEncodedValue"/>); a token seen once keeps no bytes.
    /// </summary>
    private sealed class RenderedIdentity(string? credentialId, KongCredential? credential, UpstreamIdentity identity)
    {
        public string? CredentialId => credentialId;
        public KongCredential? Credential => credential;
        public UpstreamIdentity Identity => identity;
        public PdkEncodedValue EncodedIdentity { get; } = new(identity);
        /// <summary>The last allow record written for this token, and the rule and mode fields it was made for.</summary>
        public KeptRecord? Record;
    }

    private sealed record KeptRecord(string? Rule, string? WouldBe, PdkEncodedValue Value);

    private static readonly TokenResult TooManyHeaders = TokenResult.Failure(TokenError.TokenMalformed,
        $"the request has {MaxHeaders} or more header lines, so the token header cannot be checked");

    public GitLabTokenValidator Validator => validator;

    public AccessHandler Tracked()
    {
        GitLabCiAuthMetrics.Track(validator.Cache);
        return this;
    }

    // awaits Kong's replies: the suspended state machine is pooled, not allocated per event
    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder))]
    public override async ValueTask AccessAsync(KongPdk kong)
    {
        // the policy's fail-open warnings reach Kong's error log once per instance, in the first request's first write
        if (_warnings is not null && Interlocked.Exchange(ref _warnings, null) is { } warnings)
            foreach (var w in warnings) await kong.Log.WarnAsync("config: " + w);
        var headersCall = kong.Request.GetHeadersViewAsync(MaxHeaders);
        var methodCall = compiled.Policy.UsesMethod ? kong.Request.GetMethodAsync() : default;
        var pathCall = compiled.Policy.UsesPath ? kong.Request.GetPathAsync() : default;
        var credentialCall = _anonymous ? kong.Client.GetCredentialAsync() : default;
        var headers = await headersCall;
        var sent = compiled.Protected.Scan(headers, _tokenHeaderBytes);
        bool earlierCredential = _anonymous && await credentialCall is { Id.Length: > 0 };
        string? method = compiled.Policy.UsesMethod ? await methodCall : null;
        string? path = compiled.Policy.UsesPath ? await pathCall : null;

        AccessDecision decision;
        // a full view may hide a second token header or a spoofed identity header after it: refused in every mode,
        // since nothing this plugin lets through could be trusted
        if (sent.Lines >= MaxHeaders) decision = AccessDecision.Refuse(TooManyHeaders);
        // with `anonymous` this plugin is one side of a logical OR: an earlier auth plugin that already authenticated
        // the request settles it (as with Kong's bundled auth plugins), but identity headers still come only from a token
        else if (earlierCredential) decision = AccessDecision.Defer;
        else
        {
            TokenResult result = sent.TokenCount switch
            {
                0 => TokenResult.Failure(TokenError.TokenMissing, $"no {_tokenHeader} header"),
                > 1 => TokenResult.Failure(TokenError.TokenMalformed, $"more than one {_tokenHeader} header"),
                _ => await validator.ValidateAsync(headers.First(_tokenHeader)),
            };
            decision = AccessDecider.Decide(result, compiled.Policy, method, path, _anonymous);
        }
        if (config.DryRun) decision = decision.AsDryRun();
        await ApplyAsync(kong, sent, decision);
    }

    /// <summary>Carries out <paramref name="decision"/>: metrics, Kong's error log, upstream headers, the credential, the log record, the exit.</summary>
    private ValueTask ApplyAsync(KongPdk kong, SentHeaders sent, in AccessDecision decision)
    {
        if (decision.Token is { } token) GitLabCiAuthMetrics.Token(GitLabCiAuthMetrics.Route(kong), token);
        if (decision.Policy is { } verdict) GitLabCiAuthMetrics.Policy(GitLabCiAuthMetrics.Route(kong), verdict);
        return decision.Outcome switch
        {
            AccessOutcome.Allow => AllowAsync(kong, sent, decision),
            AccessOutcome.Deny => DenyAsync(kong, decision),
            AccessOutcome.Reject => ExitTokenAsync(kong, decision),
            AccessOutcome.Anonymous => AuthenticateAnonymousAsync(kong, sent, decision.Token!),
            AccessOutcome.Forward => ForwardUnverifiedAsync(kong, sent, decision),
            // an earlier plugin's credential stands: no identity of ours, its consumer headers kept
            _ => ForwardAsync(kong, sent, UpstreamIdentity.None, config.HideCredentials, keepKongConsumerHeaders: true),
        };
    }

    /// <summary>
    /// The one place that lets a request through, whatever the outcome (allowed, dry_run, anonymous, an earlier
    /// plugin's credential): <paramref name="identity"/> is set in one set_headers; every protected name the client
    /// sent that the map does not replace is cleared (one clear_header per spelling actually sent: the view is complete,
    /// since a full one is refused); the token header is removed when <paramref name="hideToken"/>.
    /// </summary>
    /// <param name="hideToken">hide_credentials, except where the header may be another auth plugin's credential.</param>
    /// <param name="keepKongConsumerHeaders">An earlier auth plugin set Kong's consumer headers under their own names: keep those.</param>
    /// <param name="encodedIdentity"><paramref name="identity"/> kept in wire form with its cached token, when it has one.</param>
    private async ValueTask ForwardAsync(KongPdk kong, SentHeaders sent, UpstreamIdentity identity, bool hideToken,
        bool keepKongConsumerHeaders = false, PdkEncodedValue? encodedIdentity = null)
    {
        if (identity.Count > 0) await kong.ServiceRequest.SetHeadersAsync(encodedIdentity ?? (IPdkValue)identity);
        if (sent.Protected is { } names)
        {
            foreach (var name in names)
            {
                if (identity.Sets(name) || (keepKongConsumerHeaders && IsKongConsumerHeader(name))) continue;
                await kong.ServiceRequest.ClearHeaderAsync(name);
            }
        }
        if (hideToken && sent.TokenCount > 0) await kong.ServiceRequest.ClearHeaderAsync(_tokenHeader);
    }

    private static bool IsKongConsumerHeader(string name)
    {
        foreach (var h in KongConsumerHeaders.All)
            if (string.Equals(h, name, StringComparison.OrdinalIgnoreCase)) return true;
        return false;
    }

    // awaits Kong's replies: the suspended state machine is pooled, not allocated per event
    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask AllowAsync(KongPdk kong, SentHeaders sent, AccessDecision decision)
    {
        var token = decision.Token!;
        var claims = token.Claims!;
        if (decision.WouldBe == AccessDecision.WouldDeny)
        {
            GitLabCiAuthMetrics.WouldDeny(GitLabCiAuthMetrics.Route(kong), decision.Code!);
            await kong.Log.NoticeAsync($"dry_run: would deny ({decision.Code}) {Describe(token)}: {decision.Trace}");
        }
        KongConsumer? consumer = null;
        if (config.ConsumerClaim is { } consumerClaim)
        {
            string? key = claims.GetString(consumerClaim);
            bool byId = config.ConsumerBy == "id";
            // Kong raises for a non-UUID id looked up by id: such a value cannot name a Consumer
            if (key is not null && (!byId || Guid.TryParse(key, out _)))
                consumer = await kong.Client.LoadConsumerAsync(key, byUsername: !byId);
            if (consumer is null && !config.ConsumerOptional)
            {
                decision = decision.WithoutConsumer();
                if (decision.Outcome == AccessOutcome.Deny)
                {
                    await ExitAsync(kong, decision.Status, ErrorResponses.Body(decision.Message, decision.Code!), ErrorResponses.Json(),
                        new AuditRecord { Claims = claims, IncludeEmail = config.LogUserEmail, Jti = token.Jti, TokenHash = token.TokenHash,
                            Decision = "deny", Code = decision.Code, Rule = decision.Rule, Mode = _mode });
                    return;
                }
                // dry_run: enforce would answer 403 consumer_not_found; the record says so (unless the policy already denied)
                GitLabCiAuthMetrics.WouldDeny(GitLabCiAuthMetrics.Route(kong), AccessDecision.ConsumerNotFound);
                await kong.Log.NoticeAsync($"dry_run: would deny ({AccessDecision.ConsumerNotFound}) {Describe(token)}");
            }
        }

        // identity headers come from the token; Kong's consumer headers only when the request is really allowed.
        // Without a Consumer the identity depends on the token alone: rendered once per cached token.
        bool wouldDeny = decision.WouldBe == AccessDecision.WouldDeny;
        var rendered = consumer is null ? token.Derived(_render) : null;
        var credentialId = rendered is not null ? rendered.CredentialId : compiled.Credential?.Render(claims);
        var shared = wouldDeny ? null : rendered; // a dry_run request enforce would deny gets no consumer headers
        var identity = shared?.Identity
            ?? UpstreamIdentity.Build(compiled.Headers, claims, consumer, credentialId, anonymous: false, consumerHeaders: !wouldDeny);
        await ForwardAsync(kong, sent, identity, config.HideCredentials, encodedIdentity: shared?.EncodedIdentity);

        if (consumer is not null || credentialId is not null)
            await kong.Client.AuthenticateAsync(consumer, rendered is not null ? rendered.Credential
                : credentialId is null ? null : new KongCredential(credentialId, consumer!.Id));
        if (compiled.Groups.Count > 0)
        {
            var groups = new List<object?>(compiled.Groups.Count);
            foreach (var g in compiled.Groups) if (g.Render(claims) is { } name) groups.Add(name);
            if (groups.Count > 0) await kong.Nginx.SetCtxAsync("authenticated_groups", groups);
        }
        string? code = wouldDeny ? decision.Code : null;
        // the record of a plain allow is a function of the token, the rule and the route's mode: kept with the token
        var keeper = decision.Trace is null ? shared : null;
        var kept = keeper?.Record;
        if (kept is null || !string.Equals(kept.Rule, decision.Rule, StringComparison.Ordinal)
            || !string.Equals(kept.WouldBe, decision.WouldBe, StringComparison.Ordinal))
        {
            var record = new AuditRecord
            {
                Claims = claims, IncludeEmail = config.LogUserEmail, Jti = token.Jti, TokenHash = token.TokenHash,
                Decision = "allow", Code = code, Rule = decision.Rule, Mode = _mode,
                WouldBe = decision.WouldBe, Trace = decision.Trace, DroppedHeaders = identity.Dropped,
            };
            if (keeper is null) { await kong.Log.SetSerializeValueAsync(config.LogField, record); return; }
            keeper.Record = kept = new KeptRecord(decision.Rule, decision.WouldBe, new PdkEncodedValue(record));
        }
        await kong.Log.SetSerializeValueAsync(config.LogField, kept.Value);
    }

    /// <summary>dry_run with a token enforce would reject: forwarded without identity (no identity header, no consumer header).</summary>
    private async ValueTask ForwardUnverifiedAsync(KongPdk kong, SentHeaders sent, AccessDecision decision)
    {
        var result = decision.Token!;
        string code = decision.Code!;
        await ReportKeysFailureAsync(kong, result);
        await kong.Log.NoticeAsync($"dry_run: would reject token ({code}): {result.Description}; {Describe(result)}");
        GitLabCiAuthMetrics.WouldDeny(GitLabCiAuthMetrics.Route(kong), code);
        await ForwardAsync(kong, sent, UpstreamIdentity.None, config.HideCredentials);
        await kong.Log.SetSerializeValueAsync(config.LogField, new AuditRecord
        {
            Jti = result.Jti, TokenHash = result.TokenHash, Decision = "allow", Code = code, Mode = _mode, WouldBe = decision.WouldBe,
        });
    }

    private async ValueTask ExitTokenAsync(KongPdk kong, AccessDecision decision)
    {
        var result = decision.Token!;
        string code = decision.Code!;
        await ReportKeysFailureAsync(kong, result);
        await kong.Log.NoticeAsync($"rejected token ({code}): {result.Description}; {Describe(result)}");
        var headersOut = result.Error switch
        {
            TokenError.TokenMissing => ErrorResponses.MissingToken(),
            TokenError.KeysUnavailable => ErrorResponses.Unavailable(result.RetryAfterSeconds),
            _ => ErrorResponses.InvalidToken(result.Description ?? code),
        };
        await ExitAsync(kong, decision.Status, ErrorResponses.Body(decision.Message, code), headersOut,
            new AuditRecord { Jti = result.Jti, TokenHash = result.TokenHash, Decision = "deny", Code = code, Mode = _mode });
    }

    /// <summary>
    /// keys_unavailable: why, with the key URL, in Kong's error log at `err` (shown at Kong's default log level, unlike
    /// the server's own output, which Kong logs at `info`), once per key source and refetch cooldown. A log call is a
    /// setter: it rides in the same write as the exit, no round trip of its own.
    /// </summary>
    private static ValueTask ReportKeysFailureAsync(KongPdk kong, TokenResult result) =>
        result is { ReportKeysFailure: true, KeysFailure: { } failure }
            ? kong.Log.ErrAsync($"{failure.Describe()} (requests get 503 keys_unavailable; logged once per jwks_refetch_cooldown_seconds)")
            : ValueTask.CompletedTask;

    private async ValueTask DenyAsync(KongPdk kong, AccessDecision decision)
    {
        var token = decision.Token!;
        await kong.Log.NoticeAsync($"denied ({decision.Code}) {Describe(token)}: {decision.Trace}");
        await ExitAsync(kong, decision.Status, ErrorResponses.Body(decision.Message, decision.Code!, config.ExposeDenyReason ? decision.Rule : null), ErrorResponses.Json(),
            new AuditRecord
            {
                Claims = token.Claims, IncludeEmail = config.LogUserEmail, Jti = token.Jti, TokenHash = token.TokenHash,
                Decision = "deny", Code = decision.Code, Rule = decision.Rule, Mode = _mode, Trace = decision.Trace,
            });
    }

    private async ValueTask ExitAsync(KongPdk kong, int status, byte[] body, Dictionary<string, string> headers, AuditRecord record)
    {
        await kong.Log.SetSerializeValueAsync(config.LogField, record);
        await kong.Response.ExitAsync(status, body, headers);
    }

    // awaits Kong's replies: the suspended state machine is pooled, not allocated per event
    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask AuthenticateAnonymousAsync(KongPdk kong, SentHeaders sent, TokenResult failed)
    {
        if (failed.Error != TokenError.TokenMissing)
            await kong.Log.NoticeAsync($"token refused ({failed.ErrorCode}): {failed.Description}; continuing as the anonymous consumer; {Describe(failed)}");
        string anon = config.Anonymous!;
        var consumer = await kong.Client.LoadConsumerAsync(anon, byUsername: !Guid.TryParse(anon, out _));
        if (consumer is null)
        {
            await kong.Log.ErrAsync($"anonymous consumer '{ClaimText.Escape(anon)}' not found");
            await kong.Response.ExitAsync(500, ErrorResponses.Body("anonymous consumer not found", "anonymous_not_found"), ErrorResponses.Json());
            return;
        }
        // as Kong's auth plugins: the anonymous Consumer's headers and X-Anonymous-Consumer; no identity, no credential.
        // The token header stays: what this plugin refused may be a later auth plugin's credential (basic-auth, oauth2...)
        await ForwardAsync(kong, sent, UpstreamIdentity.Build(compiled.Headers, null, consumer, null, anonymous: true, consumerHeaders: true),
            hideToken: false);
        await kong.Client.AuthenticateAsync(consumer, null);
        await kong.Log.SetSerializeValueAsync(config.LogField, new AuditRecord
        {
            Jti = failed.Jti, TokenHash = failed.TokenHash, Decision = "allow", Code = "anonymous", Mode = _mode,
            Trace = failed.Error == TokenError.TokenMissing ? null : failed.ErrorCode,
        });
    }

    // kid, iss, aud, jti and the hash are already in ClaimText's form (TokenResult); claim values are escaped here
    private static string Describe(TokenResult r) =>
        $"kid={r.Kid ?? "-"} iss={r.Issuer ?? "-"} aud={r.Audience ?? "-"} jti={r.Jti ?? "-"} token={r.TokenHash ?? "-"}" +
        (r.Claims is { } c ? $" project_id={Claim(c, "project_id")} job_id={Claim(c, "job_id")} ref={Claim(c, "ref")}" : "");

    private static string Claim(ClaimSet claims, string name) => claims.GetString(name) is { } v ? ClaimText.Escape(v) : "-";

    public override void Dispose()
    {
        GitLabCiAuthMetrics.Untrack(validator.Cache);
        validator.Dispose();
    }
}
