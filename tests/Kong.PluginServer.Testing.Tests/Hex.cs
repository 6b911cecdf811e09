using System.Text;

namespace Kong.PluginServer.Testing.Tests;

internal static class Hex
{
    /// <summary>Parses "1e 00 | 08 02 'text'" style dumps: hex bytes, with "..." or '...' for ASCII text; '|' ignored.</summary>
    public static byte[] Parse(string dump)
    {
        var bytes = new List<byte>();
        int i = 0;
        while (i < dump.Length)
        {
            char c = dump[i];
            if (c is ' ' or '|' or '\n' or '\r') { i++; continue; }
            if (c is '"' or '\'')
            {
                int end = dump.IndexOf(c, i + 1);
                bytes.AddRange(Encoding.ASCII.GetBytes(dump[(i + 1)..end]));
                i = end + 1;
                continue;
            }
            bytes.Add(Convert.ToByte(dump.Substring(i, 2), 16));
            i += 2;
        }
        return bytes.ToArray();
    }

    public static string Of(ReadOnlySpan<byte> b) => Convert.ToHexString(b).ToLowerInvariant();
}
