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
    private const int MaxHeaders = 1000;
    private readonly string _tokenHeader = config.TokenHeader.ToLowerInvariant();
    private readonly string _mode = config.DryRun ? "dry_run" : "enforce";

    public GitLabTokenValidator Validator => validator;

    public AccessHandler Tracked()
    {
        GitLabCiAuthMetrics.Track(validator.Cache);
        return this;
    }

    public override async ValueTask AccessAsync(KongPdk kong)
    {
        var headersCall = kong.Request.GetHeadersViewAsync(MaxHeaders);
        var methodCall = compiled.Policy.UsesMethod ? kong.Request.GetMethodAsync() : default;
        var pathCall = compiled.Policy.UsesPath ? kong.Request.GetPathAsync() : default;
        // with `anonymous` this plugin is one side of a logical OR: an earlier auth plugin that already
        // authenticated the request settles it (same rule as Kong's bundled auth plugins)
        var credentialCall = config.Anonymous is { Length: > 0 } ? kong.Client.GetCredentialAsync() : default;
        var headers = await headersCall;
        if (config.Anonymous is { Length: > 0 } && await credentialCall is { Id.Length: > 0 }) return;
        string? method = compiled.Policy.UsesMethod ? await methodCall : null;
        string? path = compiled.Policy.UsesPath ? await pathCall : null;

        int count = headers.Count(_tokenHeader);
        TokenResult result = count switch
        {
            0 => TokenResult.Failure(TokenError.TokenMissing, $"no {_tokenHeader} header"),
            > 1 => TokenResult.Failure(TokenError.TokenMalformed, $"more than one {_tokenHeader} header"),
            _ => await validator.ValidateAsync(headers.First(_tokenHeader)),
        };
        GitLabCiAuthMetrics.Token(result);

        if (!result.IsValid)
        {
            // like Kong's own auth plugins: with `anonymous`, a missing or failed credential continues as that
            // Consumer, so a later auth plugin (or acl) decides; the request's own headers are left for it
            if (config.Anonymous is { Length: > 0 } && !config.DryRun && result.Error != TokenError.KeysUnavailable)
                await AuthenticateAnonymousAsync(kong, result);
            else
                await RejectTokenAsync(kong, result);
            return;
        }

        var claims = result.Claims!;
        var decision = compiled.Policy.Evaluate(claims, method, path);
        GitLabCiAuthMetrics.Policy(decision);
        if (!decision.Allowed)
        {
            string trace = compiled.Policy.Explain(claims, method, path).ToString();
            if (!config.DryRun)
            {
                await DenyAsync(kong, result, decision, trace);
                return;
            }
            GitLabCiAuthMetrics.WouldDeny(decision.Code!);
            await kong.Log.MessageAsync(PdkMethods.LogNotice, $"dry_run: would deny ({decision.Code}) {Describe(result)}: {trace}");
            await AllowAsync(kong, result, decision, wouldBe: "deny", trace);
            return;
        }
        await AllowAsync(kong, result, decision, wouldBe: config.DryRun ? "allow" : null, trace: null);
    }

    private async ValueTask AllowAsync(KongPdk kong, TokenResult token, PolicyDecision decision, string? wouldBe, string? trace)
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
                GitLabCiAuthMetrics.WouldDeny("consumer_not_found");
                await kong.Log.MessageAsync(PdkMethods.LogNotice, $"dry_run: would deny (consumer_not_found) {Describe(token)}");
                if (wouldBe != "deny") (wouldBe, consumerCode) = ("deny", "consumer_not_found");
            }
        }

        // identity headers: token values replace whatever the client sent; configured names the token lacks are removed
        if (compiled.Headers.Count > 0) await kong.ServiceRequest.SetHeadersAsync(compiled.Headers.For(claims));
        var toClear = new List<string>(2);
        compiled.Headers.CollectAbsent(claims, toClear);
        if (config.HideCredentials) toClear.Add(_tokenHeader);
        foreach (var h in toClear) await kong.ServiceRequest.ClearHeaderAsync(h);

        var credentialId = compiled.Credential?.Render(claims);
        if (consumer is not null || credentialId is not null)
            await kong.Client.AuthenticateAsync(consumer, credentialId is null ? null : new KongCredential(credentialId, consumer?.Id));
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
            WouldBe = wouldBe, Trace = trace,
        });
    }

    private async ValueTask RejectTokenAsync(KongPdk kong, TokenResult result)
    {
        string code = result.ErrorCode!;
        await kong.Log.MessageAsync(PdkMethods.LogNotice, $"{(config.DryRun ? "dry_run: would reject" : "rejected")} token ({code}): {result.Description}; {Describe(result)}");
        var record = new AuditRecord
        {
            Jti = result.Jti, TokenHash = result.TokenHash, Decision = config.DryRun ? "allow" : "deny", Code = code, Mode = _mode,
            WouldBe = config.DryRun ? "deny" : null,
        };
        if (config.DryRun)
        {
            GitLabCiAuthMetrics.WouldDeny(code);
            // forwarded without identity: clear any identity header the client sent, and the token if configured
            // (not narrowed to what get_headers showed: it stops at 1000 header lines)
            var toClear = new List<string>(compiled.Headers.Count + 1);
            compiled.Headers.CollectAbsent(null, toClear);
            if (config.HideCredentials) toClear.Add(_tokenHeader);
            foreach (var h in toClear) await kong.ServiceRequest.ClearHeaderAsync(h);
            await kong.Log.SetSerializeValueAsync(config.LogField, record);
            return;
        }
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
        await ExitAsync(kong, status, ErrorResponses.Body(message, code), headersOut, record);
    }

    private async ValueTask DenyAsync(KongPdk kong, TokenResult token, PolicyDecision decision, string trace)
    {
        await kong.Log.MessageAsync(PdkMethods.LogNotice, $"denied ({decision.Code}) {Describe(token)}: {trace}");
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

    private async ValueTask AuthenticateAnonymousAsync(KongPdk kong, TokenResult failed)
    {
        if (failed.Error != TokenError.TokenMissing)
            await kong.Log.MessageAsync(PdkMethods.LogNotice, $"token refused ({failed.ErrorCode}): {failed.Description}; continuing as the anonymous consumer; {Describe(failed)}");
        string anon = config.Anonymous!;
        var consumer = await kong.Client.LoadConsumerAsync(anon, byUsername: !Guid.TryParse(anon, out _));
        if (consumer is null)
        {
            await kong.Log.MessageAsync(PdkMethods.LogErr, $"anonymous consumer '{anon}' not found");
            await kong.Response.ExitAsync(500, ErrorResponses.Body("anonymous consumer not found", "anonymous_not_found"), ErrorResponses.Json());
            return;
        }
        var toClear = new List<string>(compiled.Headers.Count);
        compiled.Headers.CollectAbsent(null, toClear);
        foreach (var h in toClear) await kong.ServiceRequest.ClearHeaderAsync(h);
        await kong.Client.AuthenticateAsync(consumer, null);
        await kong.Log.SetSerializeValueAsync(config.LogField, new AuditRecord
        {
            Jti = failed.Jti, TokenHash = failed.TokenHash, Decision = "allow", Code = "anonymous", Mode = _mode,
            Trace = failed.Error == TokenError.TokenMissing ? null : failed.ErrorCode,
        });
    }

    private static string Describe(TokenResult r) =>
        $"kid={r.Kid ?? "-"} iss={r.Issuer ?? "-"} aud={r.Audience ?? "-"} jti={r.Jti ?? "-"} token={r.TokenHash ?? "-"}" +
        (r.Claims is { } c ? $" project_id={c.GetString("project_id")} job_id={c.GetString("job_id")} ref={c.GetString("ref")}" : "");

    public override void Dispose()
    {
        GitLabCiAuthMetrics.Untrack(validator.Cache);
        validator.Dispose();
    }
}
