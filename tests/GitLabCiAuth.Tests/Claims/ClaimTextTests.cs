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
}
