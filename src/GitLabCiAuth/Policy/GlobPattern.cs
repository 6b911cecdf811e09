using System.Text;

namespace GitLabCiAuth.Policy;

/// <summary>
/// Glob over a whole value: <c>*</c> = any run without <c>/</c>, <c>**</c> = any run, <c>?</c> = one non-<c>/</c>
/// character, <c>\</c> escapes the next character. Matching is allocation-free, O(value × pattern) worst case,
/// using the two-pointer wildcard algorithm with one resume point per star kind.
/// </summary>
internal sealed class GlobPattern : ClaimPattern
{
    private enum Token : byte { Literal, AnyChar, Star, DoubleStar }

    private const char Separator = '/';

    private readonly Token[] _tokens;
    private readonly char[] _literals; // the character for Literal tokens, parallel to _tokens

    private GlobPattern(Token[] tokens, char[] literals, string source) : base(source)
    {
        _tokens = tokens;
        _literals = literals;
    }

    /// <summary>Parses a glob body; returns an <see cref="ExactPattern"/> when it has no wildcards.</summary>
    public static ClaimPattern Create(string glob, string source)
    {
        var tokens = new List<Token>(glob.Length);
        var literals = new List<char>(glob.Length);
        var hasWildcard = false;
        for (var i = 0; i < glob.Length; i++)
        {
            var c = glob[i];
            if (c == Escape)
            {
                if (++i == glob.Length)
                    throw new FormatException("pattern ends with a lone \"\\\" (write \"\\\\\" for a literal backslash)");
                tokens.Add(Token.Literal);
                literals.Add(glob[i]);
            }
            else if (c == '*')
            {
                hasWildcard = true;
                var run = 1;
                while (i + 1 < glob.Length && glob[i + 1] == '*') { i++; run++; }
                tokens.Add(run == 1 ? Token.Star : Token.DoubleStar);
                literals.Add('\0');
            }
            else if (c == '?')
            {
                hasWildcard = true;
                tokens.Add(Token.AnyChar);
                literals.Add('\0');
            }
            else
            {
                tokens.Add(Token.Literal);
                literals.Add(c);
            }
        }

        if (!hasWildcard) return new ExactPattern(new string(literals.ToArray()), source);
        return new GlobPattern(tokens.ToArray(), literals.ToArray(), source);
    }

    public override bool IsMatch(string value) => IsMatch(value.AsSpan());

    public bool IsMatch(ReadOnlySpan<char> text)
    {
        var tokens = _tokens;
        var literals = _literals;
        int p = 0, t = 0;
        // Resume points: the most recent '*' of the current segment and the most recent '**'.
        // A later '**' supersedes earlier ones (the part between them matched as early as possible);
        // a '*' cannot extend over '/', so once a literal '/' is matched its '*' is dropped.
        int starP = -1, starT = 0, dblP = -1, dblT = 0;

        while (t < text.Length)
        {
            if (p < tokens.Length)
            {
                switch (tokens[p])
                {
                    case Token.Literal:
                        if (literals[p] == text[t])
                        {
                            if (text[t] == Separator) starP = -1;
                            p++;
                            t++;
                            continue;
                        }
                        break;
                    case Token.AnyChar:
                        if (text[t] != Separator)
                        {
                            p++;
                            t++;
                            continue;
                        }
                        break;
                    case Token.Star:
                        starP = ++p;
                        starT = t;
                        continue;
                    case Token.DoubleStar:
                        dblP = ++p;
                        dblT = t;
                        starP = -1;
                        continue;
                }
            }

            // Mismatch (or pattern exhausted): let the last '*' swallow one more character, else the last '**'.
            if (starP >= 0 && text[starT] != Separator)
            {
                t = ++starT;
                p = starP;
            }
            else if (dblP >= 0)
            {
                t = ++dblT;
                p = dblP;
                starP = -1;
            }
            else
            {
                return false;
            }
        }

        while (p < tokens.Length && tokens[p] is Token.Star or Token.DoubleStar) p++;
        return p == tokens.Length;
    }

    /// <summary>The parsed form, for diagnostics and tests: literals as-is, wildcards in braces.</summary>
    internal string Describe()
    {
        var sb = new StringBuilder();
        for (var i = 0; i < _tokens.Length; i++)
        {
            sb.Append(_tokens[i] switch
            {
                Token.Literal => _literals[i].ToString(),
                Token.AnyChar => "{?}",
                Token.Star => "{*}",
                _ => "{**}",
            });
        }
        return sb.ToString();
    }
}
