using System.Security.Cryptography;
using System.Text;
using GitLabCiAuth.Testing;
using GitLabCiAuth.Tokens;

namespace GitLabCiAuth.Tests.Tokens;

public sealed class GitLabTokenValidatorTests : IDisposable
{
    private readonly ValidatorHarness _h = new();

    public void Dispose() => _h.Dispose();

    [Fact]
    public async Task Valid_token_is_accepted_with_claims_and_log_fields()
    {
        var v = await _h.ValidatorAsync();
        var b = _h.Minter.Ci();
        var token = b.Build();

        var r = await _h.ValidateAsync(v, token);

        Assert.True(r.IsValid, r.ToString());
        Assert.Null(r.ErrorCode);
        Assert.Equal(200, r.HttpStatus);
        Assert.Equal("16234", r.Claims!.GetString("project_id"));
        Assert.Equal("5120", r.Claims.GetString("runner_id"));          // integer claim, decimal string form
        Assert.Equal("true", r.Claims.GetString("ref_protected"));
        Assert.Equal(_h.GitLab.CiKey.Kid, r.Kid);
        Assert.Equal((string)b["jti"]!, r.Jti);
        Assert.Equal(ValidatorHarness.Audience, r.Audience);
        Assert.Equal(_h.GitLab.Issuer, r.Issuer);
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds((long)b["exp"]!), r.ExpiresAt);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(Encoding.ASCII.GetBytes(token)))[..12], r.TokenHash);
    }

    [Fact]
    public async Task Lowercase_scheme_and_extra_spaces_are_accepted()
    {
        var v = await _h.ValidatorAsync();
        var r = await v.ValidateAsync("  bearer    " + _h.Minter.Mint() + " ", _h.Now);
        Assert.True(r.IsValid, r.ToString());
    }

    [Fact]
    public async Task Expired_token_is_rejected()
    {
        var v = await _h.ValidatorAsync();
        var token = _h.Minter.Ci(_h.Now.AddHours(-2)).Build(); // exp = now - 1h

        var r = await _h.ValidateAsync(v, token);

        Assert.Equal(TokenErrors.TokenExpired, r.ErrorCode);
        Assert.Equal(401, r.HttpStatus);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(600)]
    public async Task The_latest_accepted_exp_validates_and_caches_whatever_the_skew(int skew)
    {
        // 9999-12-31T23:59:59Z is the largest NumericDate accepted; exp + skew lies past DateTimeOffset's range
        var v = await _h.ValidatorAsync(o => o.ClockSkewSeconds = skew);
        var last = _h.Minter.Mint(b => b.Set("exp", 253402300799L));
        var past = _h.Minter.Mint(b => b.Set("exp", 253402300800L));

        var r = await _h.ValidateAsync(v, last);
        Assert.True(r.IsValid, r.Description);
        Assert.Equal(DateTimeOffset.MaxValue.AddTicks(-(TimeSpan.TicksPerSecond - 1)), r.ExpiresAt);
        Assert.Same(r, await _h.ValidateAsync(v, last)); // served from the cache
        Assert.Equal(TokenErrors.TokenMalformed, (await _h.ValidateAsync(v, past)).ErrorCode);
    }

    [Fact]
    public async Task Expiry_honours_the_clock_skew()
    {
        var v = await _h.ValidatorAsync(o => o.ClockSkewSeconds = 60);
        var inSkew = _h.Minter.Mint(b => b.Set("exp", _h.Now.AddSeconds(-30).ToUnixTimeSeconds()));
        var pastSkew = _h.Minter.Mint(b => b.Set("exp", _h.Now.AddSeconds(-61).ToUnixTimeSeconds()));

        Assert.True((await _h.ValidateAsync(v, inSkew)).IsValid);
        Assert.Equal(TokenErrors.TokenExpired, (await _h.ValidateAsync(v, pastSkew)).ErrorCode);
    }

    [Fact]
    public async Task Token_without_exp_is_rejected()
    {
        var v = await _h.ValidatorAsync();
        var r = await _h.ValidateAsync(v, _h.Minter.Mint(b => b.Remove("exp")));
        Assert.Equal(TokenErrors.ClaimMissing, r.ErrorCode);
    }

    [Fact]
    public async Task Nbf_in_the_future_is_rejected()
    {
        var v = await _h.ValidatorAsync();
        var r = await _h.ValidateAsync(v, _h.Minter.Mint(b => b.Set("nbf", _h.Now.AddMinutes(10).ToUnixTimeSeconds())));
        Assert.Equal(TokenErrors.TokenNotYetValid, r.ErrorCode);
    }

    [Fact]
    public async Task Iat_in_the_future_beyond_skew_is_rejected()
    {
        var v = await _h.ValidatorAsync();
        var r = await _h.ValidateAsync(v, _h.Minter.Ci(_h.Now.AddMinutes(5)).Build());
        Assert.Equal(TokenErrors.TokenNotYetValid, r.ErrorCode);
    }

    [Fact]
    public async Task Token_older_than_max_age_is_rejected()
    {
        var v = await _h.ValidatorAsync(o => o.MaxTokenAgeSeconds = 600);
        var young = _h.Minter.Ci(_h.Now.AddMinutes(-5)).Build();
        var old = _h.Minter.Ci(_h.Now.AddMinutes(-20)).Build(); // exp still 40 min ahead

        Assert.True((await _h.ValidateAsync(v, young)).IsValid);
        Assert.Equal(TokenErrors.TokenTooOld, (await _h.ValidateAsync(v, old)).ErrorCode);
    }

    [Fact]
    public async Task Max_age_requires_iat()
    {
        var v = await _h.ValidatorAsync(o => o.MaxTokenAgeSeconds = 600);
        var r = await _h.ValidateAsync(v, _h.Minter.Mint(b => b.Remove("iat")));
        Assert.Equal(TokenErrors.ClaimMissing, r.ErrorCode);
    }

    [Theory]
    [InlineData("https://gitlab.evil.example")]
    [InlineData("TRAILING_SLASH")]
    [InlineData("127.0.0.1")]
    public async Task Wrong_issuer_is_rejected(string iss)
    {
        var v = await _h.ValidatorAsync();
        if (iss == "TRAILING_SLASH") iss = _h.GitLab.Issuer + "/";
        var r = await _h.ValidateAsync(v, _h.Minter.Mint(b => b.Set("iss", iss)));
        Assert.Equal(TokenErrors.IssuerMismatch, r.ErrorCode);
        Assert.Equal(iss, r.Issuer); // log field (unverified)
    }

    [Fact]
    public async Task Wrong_or_missing_audience_is_rejected()
    {
        var v = await _h.ValidatorAsync();
        Assert.Equal(TokenErrors.AudienceMismatch, (await _h.ValidateAsync(v, _h.Minter.Mint(b => b.Set("aud", "https://other.example")))).ErrorCode);
        Assert.Equal(TokenErrors.AudienceMismatch, (await _h.ValidateAsync(v, _h.Minter.Mint(b => b.Remove("aud")))).ErrorCode);
        Assert.Equal(TokenErrors.AudienceMismatch, (await _h.ValidateAsync(v, _h.Minter.Mint(b => b.Set("aud", new[] { "a", "b" })))).ErrorCode);
        // Case matters: audiences are compared exactly.
        Assert.Equal(TokenErrors.AudienceMismatch, (await _h.ValidateAsync(v, _h.Minter.Mint(b => b.Set("aud", ValidatorHarness.Audience.ToUpperInvariant())))).ErrorCode);
    }

    [Fact]
    public async Task Audience_array_containing_ours_is_accepted()
    {
        var v = await _h.ValidatorAsync(o => o.Audiences = ["https://first.example", ValidatorHarness.Audience]);
        var r = await _h.ValidateAsync(v, _h.Minter.Mint(b => b.Set("aud", new[] { "https://vault.example", ValidatorHarness.Audience })));
        Assert.True(r.IsValid, r.ToString());
        Assert.Equal(ValidatorHarness.Audience, r.Audience);
    }

    [Fact]
    public async Task User_login_token_without_ci_claims_is_rejected_as_claim_missing()
    {
        var v = await _h.ValidatorAsync();
        var r = await _h.ValidateAsync(v, _h.Minter.UserLoginToken());

        // The user OIDC key is in the JWKS and the signature is good; only the CI claims are missing.
        Assert.Equal(TokenErrors.ClaimMissing, r.ErrorCode);
        Assert.Equal(_h.GitLab.UserOidcKey.Kid, r.Kid);
        Assert.Contains("project_id", r.Description);
    }

    [Theory]
    [InlineData("job_id")]
    [InlineData("runner_id")]
    [InlineData("ref_type")]
    public async Task Required_claims_must_be_present_and_non_empty(string claim)
    {
        var v = await _h.ValidatorAsync();
        Assert.Equal(TokenErrors.ClaimMissing, (await _h.ValidateAsync(v, _h.Minter.Mint(b => b.Remove(claim)))).ErrorCode);
        Assert.Equal(TokenErrors.ClaimMissing, (await _h.ValidateAsync(v, _h.Minter.Mint(b => b.Set(claim, "")))).ErrorCode);
        Assert.Equal(TokenErrors.ClaimMissing, (await _h.ValidateAsync(v, _h.Minter.Mint(b => b.Set(claim, null)))).ErrorCode);
    }

    [Fact]
    public async Task Required_claims_are_configurable()
    {
        var v = await _h.ValidatorAsync(o => o.RequiredClaims = ["project_id", "environment"]);
        Assert.True((await _h.ValidateAsync(v, _h.Minter.Mint(b => b.Remove("job_id")))).IsValid);
        Assert.Equal(TokenErrors.ClaimMissing, (await _h.ValidateAsync(v, _h.Minter.Mint(b => b.Remove("environment")))).ErrorCode);
    }

    [Fact]
    public async Task Alg_none_is_not_allowed_and_fetches_nothing()
    {
        var v = await _h.ValidatorAsync();
        var before = _h.GitLab.KeysRequests;

        var r = await _h.ValidateAsync(v, _h.Minter.AlgNone());

        Assert.Equal(TokenErrors.AlgorithmNotAllowed, r.ErrorCode);
        Assert.Equal(before, _h.GitLab.KeysRequests);
        // Variants of "none" spelling are not algorithms we know either.
        Assert.Equal(TokenErrors.AlgorithmNotAllowed, (await _h.ValidateAsync(v, _h.Minter.Ci().Algorithm("None").Build())).ErrorCode);
    }

    [Fact]
    public async Task Hs256_signed_with_the_public_key_is_not_allowed()
    {
        var v = await _h.ValidatorAsync(o => o.Algorithms = ["RS256", "PS256", "ES256"]);
        var r = await _h.ValidateAsync(v, _h.Minter.Hs256WithPublicKey());
        Assert.Equal(TokenErrors.AlgorithmNotAllowed, r.ErrorCode);
    }

    [Fact]
    public async Task Algorithm_outside_the_configured_list_is_not_allowed()
    {
        var v = await _h.ValidatorAsync(); // RS256 only
        var r = await _h.ValidateAsync(v, _h.Minter.Mint(b => b.Algorithm("RS384")));
        Assert.Equal(TokenErrors.AlgorithmNotAllowed, r.ErrorCode);
    }

    [Fact]
    public async Task Algorithm_must_agree_with_the_key_alg_and_type()
    {
        // The JWKS declares alg RS256 for every key: a PS256 token (allowed in config) must not use them.
        var v = await _h.ValidatorAsync(o => o.Algorithms = ["RS256", "PS256", "ES256"]);
        Assert.Equal(TokenErrors.AlgorithmNotAllowed, (await _h.ValidateAsync(v, _h.Minter.Mint(b => b.Algorithm("PS256")))).ErrorCode);
        // An ES256 token naming an RSA kid.
        using var ec = MinterKey.CreateEc("P-256");
        var esToken = _h.Minter.Ci().SignWith(ec).Algorithm("ES256").Header("kid", _h.GitLab.CiKey.Kid).Build();
        Assert.Equal(TokenErrors.AlgorithmNotAllowed, (await _h.ValidateAsync(v, esToken)).ErrorCode);
    }

    [Fact]
    public async Task Unknown_key_reusing_a_known_kid_fails_the_signature()
    {
        var v = await _h.ValidatorAsync();
        var r = await _h.ValidateAsync(v, _h.Minter.SignedByUnknownKeyReusingKid());
        Assert.Equal(TokenErrors.SignatureInvalid, r.ErrorCode);
        Assert.Equal(_h.GitLab.CiKey.Kid, r.Kid);
    }

    [Fact]
    public async Task Tampered_payload_fails_the_signature()
    {
        var v = await _h.ValidatorAsync();
        var good = _h.Minter.Mint().Split('.');
        var evilPayload = _h.Minter.Ci().Set("project_id", "1").PayloadJson;
        var tampered = good[0] + "." + System.Buffers.Text.Base64Url.EncodeToString(Encoding.UTF8.GetBytes(evilPayload)) + "." + good[2];
        Assert.Equal(TokenErrors.SignatureInvalid, (await _h.ValidateAsync(v, tampered)).ErrorCode);
        Assert.Equal(TokenErrors.SignatureInvalid, (await _h.ValidateAsync(v, good[0] + "." + good[1] + ".")).ErrorCode);
    }

    [Fact]
    public async Task Token_without_kid_is_unknown_key_and_never_tried_against_all_keys()
    {
        var v = await _h.ValidatorAsync();
        var before = _h.GitLab.KeysRequests;
        var r = await _h.ValidateAsync(v, _h.Minter.Mint(b => b.RemoveHeader("kid")));
        Assert.Equal(TokenErrors.UnknownKey, r.ErrorCode);
        Assert.Equal(before, _h.GitLab.KeysRequests);
    }

    [Fact]
    public async Task Jku_x5u_and_jwk_headers_are_ignored_and_never_fetched()
    {
        var v = await _h.ValidatorAsync();
        using var attacker = MinterKey.CreateRsa();
        var token = _h.Minter.Ci().SignWith(attacker)
            .Header("jku", _h.GitLab.Issuer + "/evil/jwks")
            .Header("x5u", _h.GitLab.Issuer + "/evil/cert")
            .Header("jwk", new RawJson(attacker.PublicJwkJson()))
            .Build();

        var r = await _h.ValidateAsync(v, token);

        Assert.Equal(TokenErrors.UnknownKey, r.ErrorCode); // attacker's kid is not in the JWKS
        Assert.Equal(0, _h.GitLab.RequestCount("/evil/jwks"));
        Assert.Equal(0, _h.GitLab.RequestCount("/evil/cert"));

        // The same headers on a genuine token change nothing.
        var genuine = _h.Minter.Ci().Header("jku", _h.GitLab.Issuer + "/evil/jwks").Build();
        Assert.True((await _h.ValidateAsync(v, genuine)).IsValid);
    }

    [Fact]
    public async Task Crit_header_is_rejected_as_malformed()
    {
        var v = await _h.ValidatorAsync();
        var r = await _h.ValidateAsync(v, _h.Minter.Ci().Header("crit", new[] { "exp" }).Header("exp", 1).Build());
        Assert.Equal(TokenErrors.TokenMalformed, r.ErrorCode);
    }

    [Fact]
    public async Task Oversized_token_is_rejected_before_parsing()
    {
        var v = await _h.ValidatorAsync(o => o.MaxTokenBytes = 4096);
        var big = _h.Minter.Mint(b => b.Set("padding", new string('x', 5000)));
        Assert.Equal(TokenErrors.TokenTooLarge, (await _h.ValidateAsync(v, big)).ErrorCode);

        // Not even a JWT: a huge header value is "too large", not "malformed".
        Assert.Equal(TokenErrors.TokenTooLarge, (await v.ValidateAsync("Basic " + new string('%', 50_000), _h.Now)).ErrorCode);
        Assert.Equal(0, v.Cache.Misses); // never reached hashing/cache
    }

    [Theory]
    [InlineData("Bearer abc!.def.ghi")]
    [InlineData("Bearer abc.def")]
    [InlineData("Bearer abc.def.ghi.jkl")]
    [InlineData("Bearer .def.ghi")]
    [InlineData("Bearer abc..ghi")]
    [InlineData("Bearer YWJj.ZGVm.Z2hp=")]
    [InlineData("Bearer eyJhbGciOiJSUzI1NiJ9.eyJ.sig")]          // payload: invalid base64 length
    [InlineData("Bearer bm90IGpzb24.eyJpc3MiOiJ4In0.c2ln")]       // header "not json"
    [InlineData("Bearer eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2ln")]  // payload "not json"
    [InlineData("Bearer WzFd.eyJpc3MiOiJ4In0.c2ln")]              // header is an array
    public async Task Broken_base64_or_json_is_malformed(string header)
    {
        var v = await _h.ValidatorAsync();
        var r = await v.ValidateAsync(header, _h.Now);
        Assert.Equal(TokenErrors.TokenMalformed, r.ErrorCode);
        Assert.Equal(401, r.HttpStatus);
    }

    [Fact]
    public async Task Properly_signed_but_broken_json_is_malformed()
    {
        var v = await _h.ValidatorAsync();
        var b = _h.Minter.Ci();
        Assert.Equal(TokenErrors.TokenMalformed, (await _h.ValidateAsync(v, b.BuildWithRawPayload("{\"iss\":"u8.ToArray()))).ErrorCode);
        // Duplicate members are refused (no "last one wins" parser differential on iss/aud/exp).
        var dup = b.PayloadJson.TrimEnd('}') + ",\"iss\":\"https://evil.example\"}";
        Assert.Equal(TokenErrors.TokenMalformed, (await _h.ValidateAsync(v, b.BuildWithRawPayload(Encoding.UTF8.GetBytes(dup)))).ErrorCode);
        Assert.Equal(TokenErrors.TokenMalformed, (await _h.ValidateAsync(v, b.BuildWithRawHeader("{\"alg\":\"RS256\",\"alg\":\"none\"}"u8.ToArray()))).ErrorCode);
        // exp that is not a NumericDate.
        Assert.Equal(TokenErrors.TokenMalformed, (await _h.ValidateAsync(v, _h.Minter.Mint(x => x.Set("exp", "tomorrow")))).ErrorCode);
    }

    [Theory]
    [InlineData("Basic dXNlcjpwYXNz")]
    [InlineData("Digest username=\"x\"")]
    [InlineData("Bearer")]
    [InlineData("BearerX a.b.c")]
    [InlineData("TOKEN")]
    public async Task Other_schemes_are_malformed(string header)
    {
        var v = await _h.ValidatorAsync();
        Assert.Equal(TokenErrors.TokenMalformed, (await v.ValidateAsync(header, _h.Now)).ErrorCode);
    }

    [Fact]
    public async Task Basic_scheme_carrying_a_valid_jwt_is_still_malformed()
    {
        var v = await _h.ValidatorAsync();
        Assert.Equal(TokenErrors.TokenMalformed, (await v.ValidateAsync("Basic " + _h.Minter.Mint(), _h.Now)).ErrorCode);
        Assert.Equal(TokenErrors.TokenMalformed, (await v.ValidateAsync(_h.Minter.Mint(), _h.Now)).ErrorCode); // no scheme
        Assert.Equal(TokenErrors.TokenMalformed, (await v.ValidateAsync("Bearer " + _h.Minter.Mint() + " " + _h.Minter.Mint(), _h.Now)).ErrorCode);
    }

    [Fact]
    public async Task Custom_token_header_also_accepts_a_bare_token()
    {
        var v = await _h.ValidatorAsync(o => o.TokenHeader = "x-gitlab-oidc-token");
        Assert.True((await v.ValidateAsync(_h.Minter.Mint(), _h.Now)).IsValid);
        Assert.True((await v.ValidateAsync("Bearer " + _h.Minter.Mint(), _h.Now)).IsValid);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("   ")]
    public async Task Missing_header_is_token_missing(string? header)
    {
        var v = await _h.ValidatorAsync();
        var r = await v.ValidateAsync(header, _h.Now);
        Assert.Equal(TokenErrors.TokenMissing, r.ErrorCode);
        Assert.Equal(401, r.HttpStatus);
        Assert.Equal(TokenErrors.TokenMissing, (await v.ValidateAsync(ReadOnlySpan<byte>.Empty, _h.Now)).ErrorCode);
    }

    [Fact]
    public async Task Failure_results_carry_log_fields_but_never_the_token()
    {
        var v = await _h.ValidatorAsync();
        var b = _h.Minter.Ci().Set("aud", "https://other.example");
        var token = b.Build();

        var r = await _h.ValidateAsync(v, token);

        Assert.Equal(TokenErrors.AudienceMismatch, r.ErrorCode);
        Assert.Equal(_h.GitLab.CiKey.Kid, r.Kid);
        Assert.Equal(_h.GitLab.Issuer, r.Issuer);
        Assert.Equal("https://other.example", r.Audience);
        Assert.Equal((string)b["jti"]!, r.Jti);
        Assert.Equal(12, r.TokenHash!.Length);
        foreach (var text in new[] { r.Description!, r.ToString() })
        {
            Assert.DoesNotContain(token, text);
            Assert.DoesNotContain(token.Split('.')[1], text);
            Assert.DoesNotContain(token.Split('.')[2], text);
        }
    }

    [Fact]
    public async Task Static_jwks_needs_no_fetch()
    {
        using var key = MinterKey.CreateRsa();
        using var store = new GitLabCiAuth.Keys.JwksKeyStore(_h.Time);
        var o = _h.Options(x => x.StaticJwks = MinterKey.JwksJson(key));
        using var v = new GitLabTokenValidator(o, store, _h.Time);
        var minter = new TokenMinter(_h.GitLab.Issuer, key, ValidatorHarness.Audience, _h.Time);

        Assert.True((await v.ValidateAsync("Bearer " + minter.Mint(), _h.Now)).IsValid);
        Assert.Equal(TokenErrors.UnknownKey, (await v.ValidateAsync("Bearer " + minter.WithRandomKid(), _h.Now)).ErrorCode);
        Assert.Equal(0, _h.GitLab.Connections);
    }

    [Theory]
    [InlineData("P-256", "ES256")]
    [InlineData("P-384", "ES384")]
    [InlineData("P-521", "ES512")]
    public async Task Ec_keys_verify_with_their_curve_and_only_their_curve(string crv, string alg)
    {
        using var key = MinterKey.CreateEc(crv);
        using var store = new GitLabCiAuth.Keys.JwksKeyStore(_h.Time);
        var o = _h.Options(x =>
        {
            x.StaticJwks = "{\"keys\":[" + key.PublicJwkJson(alg: null) + "]}";
            x.Algorithms = ["ES256", "ES384", "ES512"];
        });
        using var v = new GitLabTokenValidator(o, store, _h.Time);
        var minter = new TokenMinter(_h.GitLab.Issuer, key, ValidatorHarness.Audience, _h.Time);

        Assert.True((await v.ValidateAsync("Bearer " + minter.Mint(), _h.Now)).IsValid);
        var wrongCurveAlg = alg == "ES256" ? "ES384" : "ES256";
        var r = await v.ValidateAsync("Bearer " + minter.Ci().Algorithm(wrongCurveAlg).Signature("AAAA").Build(), _h.Now);
        Assert.Equal(TokenErrors.AlgorithmNotAllowed, r.ErrorCode);
    }

    [Theory]
    [InlineData("P-256", "ES256")]
    [InlineData("P-384", "ES384")]
    [InlineData("P-521", "ES512")]
    public async Task The_high_s_twin_of_an_ecdsa_signature_is_signature_invalid(string crv, string alg)
    {
        // (r, n - s) verifies too; accepting it would give one token two strings and two token hashes
        using var key = MinterKey.CreateEc(crv);
        using var store = new GitLabCiAuth.Keys.JwksKeyStore(_h.Time);
        var o = _h.Options(x =>
        {
            x.StaticJwks = "{\"keys\":[" + key.PublicJwkJson(alg: alg) + "]}";
            x.Algorithms = [alg];
        });
        using var v = new GitLabTokenValidator(o, store, _h.Time);
        var token = new TokenMinter(_h.GitLab.Issuer, key, ValidatorHarness.Audience, _h.Time).Mint();
        int dot = token.LastIndexOf('.');
        var signature = System.Buffers.Text.Base64Url.DecodeFromChars(token.AsSpan(dot + 1));
        string twin = token[..(dot + 1)] + System.Buffers.Text.Base64Url.EncodeToString(key.Twin(signature));
        Assert.True(key.Ecdsa!.VerifyData(System.Text.Encoding.ASCII.GetBytes(token[..dot]), key.Twin(signature),
            alg switch { "ES256" => System.Security.Cryptography.HashAlgorithmName.SHA256, "ES384" => System.Security.Cryptography.HashAlgorithmName.SHA384,
                _ => System.Security.Cryptography.HashAlgorithmName.SHA512 },
            System.Security.Cryptography.DSASignatureFormat.IeeeP1363FixedFieldConcatenation), "the twin is a valid ECDSA signature");

        Assert.True((await v.ValidateAsync("Bearer " + token, _h.Now)).IsValid);
        Assert.Equal(TokenErrors.SignatureInvalid, (await v.ValidateAsync("Bearer " + twin, _h.Now)).ErrorCode);
    }

    [Fact]
    public async Task Ps256_verifies_with_an_rsa_key_that_declares_no_alg()
    {
        using var key = MinterKey.CreateRsa();
        using var store = new GitLabCiAuth.Keys.JwksKeyStore(_h.Time);
        var o = _h.Options(x =>
        {
            x.StaticJwks = "{\"keys\":[" + key.PublicJwkJson(alg: null) + "]}";
            x.Algorithms = ["PS256"];
        });
        using var v = new GitLabTokenValidator(o, store, _h.Time);
        var minter = new TokenMinter(_h.GitLab.Issuer, key, ValidatorHarness.Audience, _h.Time);

        Assert.True((await v.ValidateAsync("Bearer " + minter.Mint(b => b.Algorithm("PS256")), _h.Now)).IsValid);
        Assert.Equal(TokenErrors.AlgorithmNotAllowed, (await v.ValidateAsync("Bearer " + minter.Mint(), _h.Now)).ErrorCode); // RS256 not allowed
    }
}
