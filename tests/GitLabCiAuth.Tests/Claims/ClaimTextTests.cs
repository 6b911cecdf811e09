using GitLabCiAuth.Claims;

namespace GitLabCiAuth.Tests.Claims;

public sealed class ClaimTextTests
{
    [Theory]
    [InlineData("main", "main")]
    [InlineData("a\r\nb", "a\\u000d\\u000ab")]
    [InlineData("x\u0085y\u2028z\u2029", "x\\u0085y\\u2028z\\u2029")]
    [InlineData("abc\u202Efed", "abc\\u202efed")]                 // RIGHT-TO-LEFT OVERRIDE
    [InlineData("\u2066iso\u2069 \u200E\u200F\u061C", "\\u2066iso\\u2069 \\u200e\\u200f\\u061c")]
    [InlineData("q\"b\\s", "q\\\"b\\\\s")]                       // the escape character itself, so the form is unambiguous
    [InlineData("\u001b[31mred", "\\u001b[31mred")]              // terminal control sequence
    public void Escapes_controls_separators_bidi_quotes_and_backslashes(string value, string expected) =>
        Assert.Equal(expected, ClaimText.Escape(value));

    [Fact]
    public void A_clean_value_is_returned_as_it_is()
    {
        const string value = "acme/platform/billing-api";
        Assert.Same(value, ClaimText.Escape(value));
    }

    [Fact]
    public void Long_values_are_capped_with_a_marker_naming_what_was_left_out()
    {
        var value = new string('a', 300);
        Assert.Equal(new string('a', 256) + "…(+44)", ClaimText.Escape(value));
        Assert.Equal("ab…(+3)", ClaimText.Escape("abcde", max: 2));
        // never half a surrogate pair
        Assert.Equal("a…(+2)", ClaimText.Escape("a\U0001F600", max: 2));
    }

    [Theory]
    [InlineData("16234", true)]
    [InlineData("", false)]
    [InlineData("main\n", false)]
    [InlineData("prod\u202Euction", false)]
    [InlineData("naïve/ünïcode", true)]
    public void Header_values_are_sent_as_they_are_or_not_at_all(string value, bool safe) =>
        Assert.Equal(safe, ClaimText.IsHeaderSafe(value));

    [Fact]
    public void Header_values_over_the_cap_are_unfit_never_cut()
    {
        Assert.True(ClaimText.IsHeaderSafe(new string('p', ClaimText.MaxHeaderChars)));
        Assert.False(ClaimText.IsHeaderSafe(new string('p', ClaimText.MaxHeaderChars + 1)));
    }

    /// <summary>A long value (the vectorized check's width and more) with one unsafe character anywhere is caught.</summary>
    [Theory]
    [InlineData('\n')]
    [InlineData('\u007F')]
    [InlineData('\u0085')]
    [InlineData('\u2028')]
    [InlineData('\u202E')]
    [InlineData('\u2066')]
    [InlineData('\u061C')]
    public void An_unsafe_character_anywhere_in_a_long_value_is_found(char unsafeChar)
    {
        var clean = new string('a', 100) + "/group-name_1.x@y" + new string('z', 100);
        Assert.True(ClaimText.IsHeaderSafe(clean));
        Assert.Same(clean, ClaimText.Escape(clean));
        for (int at = 0; at < clean.Length; at++)
        {
            var value = clean[..at] + unsafeChar + clean[(at + 1)..];
            Assert.False(ClaimText.IsHeaderSafe(value), $"at {at}");
            Assert.Contains($"\\u{(int)unsafeChar:x4}", ClaimText.Escape(value));
        }
        // non-ASCII but safe text stays as it is
        var accented = clean + "é✓";
        Assert.True(ClaimText.IsHeaderSafe(accented));
        Assert.Same(accented, ClaimText.Escape(accented));
    }
}
