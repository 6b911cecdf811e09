using System.Buffers;
using System.Text.Json;

namespace GitLabCiAuth.Plugin;

/// <summary>
/// The responses the plugin ends a request with: JSON bodies <c>{"message", "code"}</c>, the
/// WWW-Authenticate challenge of RFC 6750 for 401s, Retry-After for 503s.
/// </summary>
public static class ErrorResponses
{
    public const string Realm = "gitlab-ci-auth";

    public static byte[] Body(string message, string code, string? rule = null)
    {
        var buffer = new ArrayBufferWriter<byte>(128);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("message", message);
            w.WriteString("code", code);
            if (rule is not null) w.WriteString("rule", rule);
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    public static Dictionary<string, string> Json() => new() { ["Content-Type"] = "application/json; charset=utf-8" };

    /// <summary>401 without a token: a bare challenge (RFC 6750 3.1: no error code when no credentials were sent).</summary>
    public static Dictionary<string, string> MissingToken()
    {
        var h = Json();
        h["WWW-Authenticate"] = $"Bearer realm=\"{Realm}\"";
        return h;
    }

    public static Dictionary<string, string> InvalidToken(string description)
    {
        var h = Json();
        h["WWW-Authenticate"] = $"Bearer realm=\"{Realm}\", error=\"invalid_token\", error_description=\"{QuotedSafe(description)}\"";
        return h;
    }

    public static Dictionary<string, string> Unavailable(int retryAfterSeconds)
    {
        var h = Json();
        h["Retry-After"] = Math.Max(1, retryAfterSeconds).ToString(System.Globalization.CultureInfo.InvariantCulture);
        return h;
    }

    /// <summary>A description fit for a quoted-string: printable ASCII without quotes or backslashes, bounded.</summary>
    public static string QuotedSafe(string s)
    {
        var sb = new System.Text.StringBuilder(Math.Min(s.Length, 200));
        foreach (char c in s)
        {
            if (sb.Length >= 200) break;
            sb.Append(c is >= ' ' and <= '~' and not '"' and not '\\' ? c : '\'');
        }
        return sb.ToString();
    }
}
