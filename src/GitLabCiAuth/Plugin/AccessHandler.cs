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
/// RpcReturn in one write.
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

    /// <summary>An allowed request's identity when no Consumer is mapped: a function of the token alone.</summary>
    private sealed record RenderedIdentity(string? CredentialId, KongCredential? Credential, UpstreamIdentity Identity);

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

        // a full view may hide a second token header or a spoofed identity header after it: refused in every mode,
        // since nothing this plugin lets through could be trusted
        if (sent.Lines >= MaxHeaders)
        {
            GitLabCiAuthMetrics.Token(GitLabCiAuthMetrics.Route(kong), TooManyHeaders);
            await ExitTokenAsync(kong, TooManyHeaders);
            return;
        }
        // with `anonymous` this plugin is one side of a logical OR: an earlier auth plugin that already authenticated
        // the request settles it (as with Kong's bundled auth plugins), but identity headers still come only from a token
        if (earlierCredential)
        {
            await ForwardAsync(kong, sent, UpstreamIdentity.None, config.HideCredentials, keepKongConsumerHeaders: true);
            return;
        }

        TokenResult result = sent.TokenCount switch
        {
            0 => TokenResult.Failure(TokenError.TokenMissing, $"no {_tokenHeader} header"),
            > 1 => TokenResult.Failure(TokenError.TokenMalformed, $"more than one {_tokenHeader} header"),
            _ => await validator.ValidateAsync(headers.First(_tokenHeader)),
        };
        GitLabCiAuthMetrics.Token(GitLabCiAuthMetrics.Route(kong), result);

        if (!result.IsValid)
        {
            // like Kong's own auth plugins: with `anonymous`, a missing or failed credential continues as that
            // Consumer, so a later auth plugin (or acl) decides
            if (_anonymous && !config.DryRun && result.Error != TokenError.KeysUnavailable)
                await AuthenticateAnonymousAsync(kong, sent, result);
            else
                await RejectTokenAsync(kong, sent, result);
            return;
        }

        var claims = result.Claims!;
        var decision = compiled.Policy.Evaluate(claims, method, path);
        GitLabCiAuthMetrics.Policy(GitLabCiAuthMetrics.Route(kong), decision);
        if (!decision.Allowed)
        {
            string trace = compiled.Policy.Explain(claims, method, path).ToString();
            if (!config.DryRun)
            {
                await DenyAsync(kong, result, decision, trace);
                return;
            }
            GitLabCiAuthMetrics.WouldDeny(GitLabCiAuthMetrics.Route(kong), decision.Code!);
            await kong.Log.NoticeAsync($"dry_run: would deny ({decision.Code}) {Describe(result)}: {trace}");
            await AllowAsync(kong, sent, result, decision, wouldBe: "deny", trace);
            return;
        }
        await AllowAsync(kong, sent, result, decision, wouldBe: config.DryRun ? "allow" : null, trace: null);
    }

    /// <summary>
    /// The one place that lets a request through, whatever the outcome (allowed, dry_run, anonymous, an earlier
    /// plugin's credential): <paramref name="identity"/> is set in one set_headers; every protected name the client
    /// sent that the map does not replace is cleared (one clear_header per spelling actually sent: the view is complete,
    /// since a full one is refused); the token header is removed when <paramref name="hideToken"/>.
    /// </summary>
    /// <param name="hideToken">hide_credentials, except where the header may be another auth plugin's credential.</param>
    /// <param name="keepKongConsumerHeaders">An earlier auth plugin set Kong's consumer headers under their own names: keep those.</param>
    private async ValueTask ForwardAsync(KongPdk kong, SentHeaders sent, UpstreamIdentity identity, bool hideToken, bool keepKongConsumerHeaders = false)
    {
        if (identity.Count > 0) await kong.ServiceRequest.SetHeadersAsync(identity);
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
    private async ValueTask AllowAsync(KongPdk kong, SentHeaders sent, TokenResult token, PolicyDecision decision, string? wouldBe, string? trace)
    {
        var claims = token.Claims!;
        KongConsumer? consumer = null;
        string? consumerCode = null;
        if (config.ConsumerClaim is { } consumerClaim)
        {
            string? key = claims.GetString(consumerClaim);
            bool byId = config.ConsumerBy == "id";
            // Kong raises for a non-UUID id looked up by id: such a value cannot name a Consumer
            if (key is not null && (!byId || Guid.TryParse(key, out _)))
                consumer = await kong.Client.LoadConsumerAsync(key, byUsername: !byId);
            if (consumer is null && !config.ConsumerOptional)
            {
                if (!config.DryRun)
                {
                    await ExitAsync(kong, 403, ErrorResponses.Body("no Kong consumer for this job", "consumer_not_found"), ErrorResponses.Json(),
                        new AuditRecord { Claims = claims, IncludeEmail = config.LogUserEmail, Jti = token.Jti, TokenHash = token.TokenHash,
                            Decision = "deny", Code = "consumer_not_found", Rule = decision.Rule, Mode = _mode });
                    return;
                }
                // dry_run: enforce would answer 403 consumer_not_found; mark the record with that (unless the policy already denied)
                GitLabCiAuthMetrics.WouldDeny(GitLabCiAuthMetrics.Route(kong), "consumer_not_found");
                await kong.Log.NoticeAsync($"dry_run: would deny (consumer_not_found) {Describe(token)}");
                if (wouldBe != "deny") (wouldBe, consumerCode) = ("deny", "consumer_not_found");
            }
        }

        // identity headers come from the token; Kong's consumer headers only when the request is really allowed.
        // Without a Consumer the identity depends on the token alone: rendered once per cached token.
        var credentialId = consumer is null ? token.Derived(_render).CredentialId : compiled.Credential?.Render(claims);
        var identity = consumer is null && wouldBe != "deny" ? token.Derived(_render).Identity
            : UpstreamIdentity.Build(compiled.Headers, claims, consumer, credentialId, anonymous: false, consumerHeaders: wouldBe != "deny");
        await ForwardAsync(kong, sent, identity, config.HideCredentials);

        if (consumer is not null || credentialId is not null)
            await kong.Client.AuthenticateAsync(consumer, consumer is null ? token.Derived(_render).Credential
                : credentialId is null ? null : new KongCredential(credentialId, consumer.Id));
        if (compiled.Groups.Count > 0)
        {
            var groups = new List<object?>(compiled.Groups.Count);
            foreach (var g in compiled.Groups) if (g.Render(claims) is { } name) groups.Add(name);
            if (groups.Count > 0) await kong.Nginx.SetCtxAsync("authenticated_groups", groups);
        }
        await kong.Log.SetSerializeValueAsync(config.LogField, new AuditRecord
        {
            Claims = claims, IncludeEmail = config.LogUserEmail, Jti = token.Jti, TokenHash = token.TokenHash,
            Decision = "allow", Code = wouldBe == "deny" ? consumerCode ?? decision.Code : null, Rule = decision.Rule, Mode = _mode,
            WouldBe = wouldBe, Trace = trace, DroppedHeaders = identity.Dropped,
        });
    }

    private async ValueTask RejectTokenAsync(KongPdk kong, SentHeaders sent, TokenResult result)
    {
        if (!config.DryRun)
        {
            await ExitTokenAsync(kong, result);
            return;
        }
        string code = result.ErrorCode!;
        await ReportKeysFailureAsync(kong, result);
        await kong.Log.NoticeAsync($"dry_run: would reject token ({code}): {result.Description}; {Describe(result)}");
        GitLabCiAuthMetrics.WouldDeny(GitLabCiAuthMetrics.Route(kong), code);
        // forwarded without identity: no identity header, no consumer header
        await ForwardAsync(kong, sent, UpstreamIdentity.None, config.HideCredentials);
        await kong.Log.SetSerializeValueAsync(config.LogField, new AuditRecord
        {
            Jti = result.Jti, TokenHash = result.TokenHash, Decision = "allow", Code = code, Mode = _mode, WouldBe = "deny",
        });
    }

    private async ValueTask ExitTokenAsync(KongPdk kong, TokenResult result)
    {
        string code = result.ErrorCode!;
        await ReportKeysFailureAsync(kong, result);
        await kong.Log.NoticeAsync($"rejected token ({code}): {result.Description}; {Describe(result)}");
        var (status, headersOut) = result.Error switch
        {
            TokenError.TokenMissing => (401, ErrorResponses.MissingToken()),
            TokenError.KeysUnavailable => (503, ErrorResponses.Unavailable(result.RetryAfterSeconds)),
            _ => (401, ErrorResponses.InvalidToken(result.Description ?? code)),
        };
        string message = result.Error switch
        {
            TokenError.TokenMissing => "a GitLab CI ID token is required",
            TokenError.KeysUnavailable => "the GitLab signing keys are unavailable; retry later",
            _ => "invalid GitLab CI ID token: " + result.Description,
        };
        await ExitAsync(kong, status, ErrorResponses.Body(message, code), headersOut,
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

    private async ValueTask DenyAsync(KongPdk kong, TokenResult token, PolicyDecision decision, string trace)
    {
        await kong.Log.NoticeAsync($"denied ({decision.Code}) {Describe(token)}: {trace}");
        string message = decision.Code == PolicyDecision.PolicyDenied ? "this job is denied by the route's policy" : "no rule of the route's policy allows this job";
        await ExitAsync(kong, 403, ErrorResponses.Body(message, decision.Code!, config.ExposeDenyReason ? decision.Rule : null), ErrorResponses.Json(),
            new AuditRecord
            {
                Claims = token.Claims, IncludeEmail = config.LogUserEmail, Jti = token.Jti, TokenHash = token.TokenHash,
                Decision = "deny", Code = decision.Code, Rule = decision.Rule, Mode = _mode, Trace = trace,
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
