using System.Buffers;
using System.Buffers.Text;
using System.Collections;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace GitLabCiAuth.Testing;

/// <summary>A claim or header value written verbatim as JSON (e.g. an object, or a number as text).</summary>
public readonly record struct RawJson(string Json);

/// <summary>
/// A token under construction: an ordered header and claim set, a key and an algorithm. Values may be
/// string, bool, int, long, double, decimal, <see cref="RawJson"/>, null (JSON null), or a sequence of those
/// (JSON array). Written with Utf8JsonWriter (AOT-safe, no reflection).
/// </summary>
public sealed class TokenBuilder
{
    private readonly OrderedDictionary<string, object?> _header = new(StringComparer.Ordinal);
    private readonly OrderedDictionary<string, object?> _claims = new(StringComparer.Ordinal);
    private MinterKey? _key;
    private byte[]? _hmacKey;
    private string? _signatureOverride;
    private bool _kidFollowsKey = true;

    public TokenBuilder(MinterKey? key)
    {
        _key = key;
        _header["alg"] = key?.DefaultAlgorithm ?? "RS256";
        _header["kid"] = key?.Kid;
        _header["typ"] = "JWT";
    }

    /// <summary>Sets (adds or replaces) a payload claim.</summary>
    public TokenBuilder Set(string claim, object? value)
    {
        _claims[claim] = value;
        return this;
    }

    public TokenBuilder Remove(string claim)
    {
        _claims.Remove(claim);
        return this;
    }

    /// <summary>Sets a header field (alg, kid, typ, crit, jku, ...). Setting kid pins it even if the key changes.</summary>
    public TokenBuilder Header(string name, object? value)
    {
        _header[name] = value;
        if (name == "kid") _kidFollowsKey = false;
        return this;
    }

    public TokenBuilder RemoveHeader(string name)
    {
        _header.Remove(name);
        if (name == "kid") _kidFollowsKey = false;
        return this;
    }

    /// <summary>Signs with <paramref name="key"/> (its kid goes into the header unless kid was set explicitly).</summary>
    public TokenBuilder SignWith(MinterKey key)
    {
        _key = key;
        return this;
    }

    /// <summary>Sets the header alg. "none" gives an empty signature; HS* needs <see cref="HmacKey"/>.</summary>
    public TokenBuilder Algorithm(string alg) => Header("alg", alg);

    /// <summary>HMAC secret for HS* algorithms.</summary>
    public TokenBuilder HmacKey(byte[] secret)
    {
        _hmacKey = secret;
        return this;
    }

    /// <summary>Replaces the signature segment with this base64url text.</summary>
    public TokenBuilder Signature(string base64Url)
    {
        _signatureOverride = base64Url;
        return this;
    }

    /// <summary>Sets iat, nbf = iat - 5 and exp = iat + lifetime (GitLab's layout).</summary>
    public TokenBuilder IssuedAt(DateTimeOffset iat, TimeSpan? lifetime = null)
    {
        var s = iat.ToUnixTimeSeconds();
        _claims["iat"] = s;
        _claims["nbf"] = s - 5;
        _claims["exp"] = s + (long)(lifetime ?? TimeSpan.FromHours(1)).TotalSeconds;
        return this;
    }

    public object? this[string claim] => _claims.TryGetValue(claim, out var v) ? v : null;

    public IEnumerable<string> ClaimNames => _claims.Keys;

    public string HeaderJson => Encoding.UTF8.GetString(WriteObject(EffectiveHeader()));

    public string PayloadJson => Encoding.UTF8.GetString(WriteObject(_claims));

    /// <summary>Builds the compact JWS.</summary>
    public string Build() => BuildFromParts(WriteObject(EffectiveHeader()), WriteObject(_claims));

    /// <summary>Builds a token whose payload segment is these raw bytes (e.g. broken JSON), signed normally.</summary>
    public string BuildWithRawPayload(byte[] payload) => BuildFromParts(WriteObject(EffectiveHeader()), payload);

    /// <summary>Builds a token whose header segment is these raw bytes, signed normally.</summary>
    public string BuildWithRawHeader(byte[] header) => BuildFromParts(header, WriteObject(_claims));

    public override string ToString() => Build();

    private string BuildFromParts(byte[] header, byte[] payload)
    {
        var signingInput = Base64Url.EncodeToString(header) + "." + Base64Url.EncodeToString(payload);
        if (_signatureOverride is not null) return signingInput + "." + _signatureOverride;
        var alg = _header.TryGetValue("alg", out var a) ? a as string : null;
        byte[] sig;
        if (alg is null || alg.Equals("none", StringComparison.OrdinalIgnoreCase))
            sig = [];
        else if (alg.StartsWith("HS", StringComparison.Ordinal))
        {
            var secret = _hmacKey ?? throw new InvalidOperationException("HS* tokens need HmacKey(...)");
            sig = alg switch
            {
                "HS256" => HMACSHA256.HashData(secret, Encoding.ASCII.GetBytes(signingInput)),
                "HS384" => HMACSHA384.HashData(secret, Encoding.ASCII.GetBytes(signingInput)),
                _ => HMACSHA512.HashData(secret, Encoding.ASCII.GetBytes(signingInput)),
            };
        }
        else
        {
            var key = _key ?? throw new InvalidOperationException("no signing key");
            sig = key.Sign(alg, Encoding.ASCII.GetBytes(signingInput));
        }
        return signingInput + "." + Base64Url.EncodeToString(sig);
    }

    private OrderedDictionary<string, object?> EffectiveHeader()
    {
        if (!_kidFollowsKey || _key is null) return _header;
        var h = new OrderedDictionary<string, object?>(_header, StringComparer.Ordinal);
        if (h.ContainsKey("kid")) h["kid"] = _key.Kid;
        return h;
    }

    private static byte[] WriteObject(OrderedDictionary<string, object?> members)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            foreach (var (name, value) in members)
            {
                if (value is RawJson raw)
                {
                    w.WritePropertyName(name);
                    w.WriteRawValue(raw.Json, skipInputValidation: true);
                    continue;
                }
                w.WritePropertyName(name);
                WriteValue(w, value);
            }
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    private static void WriteValue(Utf8JsonWriter w, object? value)
    {
        switch (value)
        {
            case null: w.WriteNullValue(); break;
            case string s: w.WriteStringValue(s); break;
            case bool b: w.WriteBooleanValue(b); break;
            case int i: w.WriteNumberValue(i); break;
            case long l: w.WriteNumberValue(l); break;
            case double d: w.WriteNumberValue(d); break;
            case decimal m: w.WriteNumberValue(m); break;
            case RawJson r: w.WriteRawValue(r.Json, skipInputValidation: true); break;
            case IEnumerable e:
                w.WriteStartArray();
                foreach (var item in e) WriteValue(w, item);
                w.WriteEndArray();
                break;
            default:
                throw new ArgumentException("unsupported claim value type " + value.GetType().Name + " (" +
                    Convert.ToString(value, CultureInfo.InvariantCulture) + ")");
        }
    }
}
