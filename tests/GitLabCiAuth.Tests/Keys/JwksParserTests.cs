using System.Text;
using GitLabCiAuth.Keys;
using GitLabCiAuth.Testing;
using Microsoft.IdentityModel.Tokens;

namespace GitLabCiAuth.Tests.Keys;

public sealed class JwksParserTests
{
    private static JwksParseResult Parse(string json, KeySet? previous = null, List<string>? log = null) =>
        JwksParser.Parse(Encoding.UTF8.GetBytes(json), previous, log is null ? null : (l, m) => log.Add($"{l}: {m}"));

    private static string Jwks(params string[] jwks) => "{\"keys\":[" + string.Join(",", jwks) + "]}";

    [Fact]
    public void Imports_rsa_and_ec_keys_once()
    {
        using var rsa = MinterKey.CreateRsa();
        using var ec = MinterKey.CreateEc("P-384");

        var r = Parse(MinterKey.JwksJson(rsa, ec));

        Assert.NotNull(r.Set);
        Assert.Equal(2, r.Set.Count);
        Assert.True(r.Set.TryGetKey(rsa.Kid, out var k1));
        Assert.IsType<RsaSecurityKey>(k1.SecurityKey);
        Assert.Equal(2048, k1.KeySizeBits);
        Assert.Equal(JwsAlgorithm.RS256, k1.Algorithm);
        Assert.True(r.Set.TryGetKey(ec.Kid.AsSpan(), out var k2));
        Assert.IsType<ECDsaSecurityKey>(k2.SecurityKey);
        Assert.Equal(JwkCurve.P384, k2.Curve);
        Assert.True(k2.Accepts(JwsAlgorithm.ES384));
        Assert.False(k2.Accepts(JwsAlgorithm.ES256));
        Assert.False(k1.Accepts(JwsAlgorithm.PS256)); // its JWK says RS256
    }

    [Fact]
    public void Duplicate_kids_are_refused_and_logged()
    {
        using var a = MinterKey.CreateRsa();
        using var b = MinterKey.CreateRsa();
        using var c = MinterKey.CreateRsa();
        var log = new List<string>();

        var r = Parse(Jwks(a.PublicJwkJson(), b.PublicJwkJson(kid: a.Kid), c.PublicJwkJson()), log: log);

        Assert.NotNull(r.Set);
        Assert.Equal([c.Kid], r.Set.Kids);
        Assert.Equal([a.Kid], r.Set.DroppedDuplicateKids);
        Assert.Contains(log, l => l.StartsWith("Warning") && l.Contains(a.Kid) && l.Contains("ambiguous"));
    }

    [Fact]
    public void Duplicate_kid_where_one_copy_is_unimportable_is_still_refused()
    {
        using var a = MinterKey.CreateRsa();
        using var small = MinterKey.CreateRsa(1024);
        var r = Parse(Jwks(a.PublicJwkJson(), small.PublicJwkJson(kid: a.Kid), MinterKey.CreateEc().PublicJwkJson()));
        Assert.False(r.Set!.TryGetKey(a.Kid, out _));
    }

    [Fact]
    public void Skips_keys_that_are_not_for_us()
    {
        using var good = MinterKey.CreateRsa();
        using var other = MinterKey.CreateRsa();
        using var small = MinterKey.CreateRsa(1024);
        var noKid = other.PublicJwkJson().Replace("\"kid\":\"" + other.Kid + "\",", "");

        var r = Parse(Jwks(
            good.PublicJwkJson(),
            noKid,                                                    // no kid
            other.PublicJwkJson(use: "enc", kid: "enc-key"),          // encryption key
            other.PublicJwkJson(alg: "HS256", kid: "hs-key"),         // alg not allowed
            other.PublicJwkJson(alg: "RSA-OAEP", kid: "oaep-key"),    // alg not a JWS alg
            other.PublicJwkJson(alg: "ES256", kid: "mismatch-key"),   // alg does not fit the key
            small.PublicJwkJson(),                                    // 1024-bit RSA
            "{\"kty\":\"oct\",\"kid\":\"sym\",\"k\":\"c2VjcmV0\"}",   // symmetric
            "{\"kty\":\"OKP\",\"kid\":\"ed\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}",
            "{\"kty\":\"EC\",\"kid\":\"bad-ec\",\"crv\":\"P-256\",\"x\":\"AAAA\",\"y\":\"AAAA\"}",
            "{\"kty\":\"RSA\",\"kid\":\"no-n\",\"e\":\"AQAB\"}",
            "{\"kty\":\"RSA\",\"kid\":\"ops\",\"key_ops\":[\"encrypt\"],\"e\":\"AQAB\",\"n\":\"AQAB\"}",
            "42"));

        Assert.NotNull(r.Set);
        Assert.Equal([good.Kid], r.Set.Kids);
        Assert.Equal(12, r.SkippedKeys);
    }

    [Fact]
    public void Ec_point_not_on_the_curve_is_skipped()
    {
        using var ec = MinterKey.CreateEc();
        var p = ec.Ecdsa!.ExportParameters(false);
        var y = (byte[])p.Q.Y!.Clone();
        y[^1] ^= 1;
        var bad = $"{{\"kty\":\"EC\",\"kid\":\"off-curve\",\"crv\":\"P-256\",\"x\":\"{System.Buffers.Text.Base64Url.EncodeToString(p.Q.X)}\",\"y\":\"{System.Buffers.Text.Base64Url.EncodeToString(y)}\"}}";
        using var good = MinterKey.CreateRsa();
        var r = Parse(Jwks(bad, good.PublicJwkJson()));
        Assert.False(r.Set!.TryGetKey("off-curve", out _));
    }

    [Theory]
    [InlineData("not json")]
    [InlineData("[]")]
    [InlineData("{\"keys\":{}}")]
    [InlineData("{\"keys\":[]}")]
    [InlineData("{\"keys\":[{\"kty\":\"oct\",\"kid\":\"x\",\"k\":\"AAAA\"}]}")]
    [InlineData("{\"keys\":[],\"keys\":[]}")]
    public void Documents_without_usable_keys_are_refused(string json)
    {
        var r = Parse(json);
        Assert.Null(r.Set);
        Assert.NotNull(r.Error);
    }

    [Fact]
    public void Too_many_keys_are_refused()
    {
        using var k = MinterKey.CreateEc();
        var jwks = Jwks(Enumerable.Range(0, JwksParser.MaxKeys + 1).Select(i => k.PublicJwkJson(kid: "k" + i)).ToArray());
        Assert.Null(Parse(jwks).Set);
    }

    [Fact]
    public void Same_content_keeps_the_set_and_generation_changed_content_reuses_unchanged_keys()
    {
        using var a = MinterKey.CreateRsa();
        using var b = MinterKey.CreateRsa();
        using var c = MinterKey.CreateRsa();

        var s1 = Parse(MinterKey.JwksJson(a, b)).Set!;
        var s1Again = Parse(MinterKey.JwksJson(b, a), s1).Set!; // order does not matter
        Assert.Same(s1, s1Again);

        var s2 = Parse(MinterKey.JwksJson(a, c), s1).Set!;
        Assert.NotSame(s1, s2);
        Assert.True(s2.Generation > s1.Generation);
        s1.TryGetKey(a.Kid, out var a1);
        s2.TryGetKey(a.Kid, out var a2);
        Assert.Same(a1, a2);              // imported once, carried over
        Assert.True(s2.ContainsKey(a1));
        s1.TryGetKey(b.Kid, out var b1);
        Assert.False(s2.ContainsKey(b1)); // b left the set

        // Same kid, different material: a different key object, so cached verifications under the old one die.
        var s3 = Parse(Jwks(c.PublicJwkJson(kid: a.Kid)), s2).Set!;
        s3.TryGetKey(a.Kid, out var a3);
        Assert.NotSame(a2, a3);
        Assert.False(s3.ContainsKey(a2));
    }

    [Theory]
    [InlineData("https://gitlab.example.com/oauth/discovery/keys", false, true)]
    [InlineData("https://GITLAB.example.com/oauth/discovery/keys", false, true)]
    [InlineData("https://gitlab.example.com:443/keys", false, true)]
    [InlineData("http://gitlab.example.com/oauth/discovery/keys", false, false)]   // downgrade
    [InlineData("https://evil.example.com/oauth/discovery/keys", false, false)]    // other host
    [InlineData("https://gitlab.example.com.evil.example/keys", false, false)]
    [InlineData("https://gitlab.example.com:8443/oauth/discovery/keys", false, false)] // other port
    [InlineData("https://user@gitlab.example.com/oauth/discovery/keys", false, false)]
    [InlineData("/oauth/discovery/keys", false, false)]
    [InlineData("file:///etc/passwd", false, false)]
    public void Discovered_jwks_uri_must_stay_on_the_issuer(string jwksUri, bool allowHttp, bool ok)
    {
        var check = () => JwksHttpFetcher.CheckDiscoveredJwksUri(jwksUri, "https://gitlab.example.com", allowHttp);
        if (ok) Assert.NotNull(check());
        else Assert.Throws<JwksFetchException>(check);
    }

    [Fact]
    public void Discovered_http_jwks_uri_needs_allow_insecure_http()
    {
        Assert.NotNull(JwksHttpFetcher.CheckDiscoveredJwksUri("http://gitlab.lab/oauth/discovery/keys", "http://gitlab.lab", allowInsecureHttp: true));
        Assert.Throws<JwksFetchException>(() => JwksHttpFetcher.CheckDiscoveredJwksUri("http://gitlab.lab/oauth/discovery/keys", "http://gitlab.lab", allowInsecureHttp: false));
    }
}
