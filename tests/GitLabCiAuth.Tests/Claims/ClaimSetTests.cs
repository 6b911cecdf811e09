using System.Text.Json;
using GitLabCiAuth.Claims;

namespace GitLabCiAuth.Tests.Claims;

public sealed class ClaimSetTests
{
    private static JsonElement Payload(string json) => JsonDocument.Parse(json).RootElement;

    [Fact]
    public void Retained_sets_keep_only_the_named_claims_and_share_the_name_array()
    {
        var retained = new RetainedClaims(["project_path", "ref", "groups"]);
        var a = ClaimSet.FromJson(Payload("""{"project_path":"acme/api","ref":"main","user_email":"a@b.c","groups":["x","y"],"n":null}"""), retained);
        var b = ClaimSet.FromJson(Payload("""{"project_path":"acme/api","ref":"feature"}"""), retained);

        Assert.Equal(3, a.Count);
        Assert.Null(a.GetString("user_email"));
        Assert.True(a.TryGet("groups", out var groups) && groups.IsArray);
        Assert.Equal(2, b.Count);
        Assert.False(b.TryGet("groups", out _));
        // values that repeat across jobs are one string in memory
        Assert.Same(a.GetString("project_path"), b.GetString("project_path"));
    }

    [Fact]
    public void Names_are_found_by_their_text_whatever_instance_names_them()
    {
        // config-compiled names share ClaimNames' instances and are found by reference; any other instance of the same
        // text (a name built at run time, a set built from plain values) is found by comparing characters
        var retained = new RetainedClaims([new string("project_path".AsSpan()), "ref"]);
        Assert.Same(ClaimNames.Canonical("project_path"), retained.Names[0]);
        var set = ClaimSet.FromJson(Payload("""{"project_path":"acme/api","ref":"main"}"""), retained);
        var runtimeName = string.Concat("project", "_path".AsSpan());
        Assert.NotSame(ClaimNames.Canonical("project_path"), runtimeName);
        Assert.Equal("acme/api", set.GetString(runtimeName));
        Assert.Equal("main", set.GetString(ClaimNames.Canonical("ref")));
        Assert.Null(set.GetString("project_pat"));

        var plain = ClaimSet.FromValues([new(string.Concat("r", "ef".AsSpan()), ClaimValue.FromString("v1"))]);
        Assert.Equal("v1", plain.GetString(ClaimNames.Canonical("ref")));
    }

    [Fact]
    public void The_name_table_keeps_one_instance_per_name_up_to_its_bound()
    {
        var table = new NameTable(maxNames: 2);
        var a = table.Canonical(new string("ref".AsSpan()));
        Assert.Same(a, table.Canonical(new string("ref".AsSpan())));
        Assert.Same(a, table.IfKnown(new string("ref".AsSpan())));
        var unknown = new string("sha".AsSpan());
        Assert.Same(unknown, table.IfKnown(unknown));   // asking does not add
        table.Canonical("sha");
        var third = new string("jti".AsSpan());
        Assert.Same(third, table.Canonical(third));     // past the bound: returned as it is, not kept
        Assert.NotSame(third, table.Canonical(new string("jti".AsSpan())));
        Assert.Equal(2, table.Count);
    }

    [Fact]
    public void Values_unique_to_a_job_are_not_interned()
    {
        var retained = new RetainedClaims(["job_id"]);
        var a = ClaimSet.FromJson(Payload("""{"job_id":"31415926"}"""), retained);
        var b = ClaimSet.FromJson(Payload("""{"job_id":"31415926"}"""), retained);
        Assert.Equal(a.GetString("job_id"), b.GetString("job_id"));
        Assert.NotSame(a.GetString("job_id"), b.GetString("job_id"));
    }

    [Fact]
    public void Retained_names_and_values_escaped_in_the_json_read_as_their_decoded_text()
    {
        var retained = new RetainedClaims(["project_path", "ref", "environment"]);
        var plain = ClaimSet.FromJson(Payload("""{"project_path":"acme/escaped-api","ref":"main"}"""), retained);
        var escaped = ClaimSet.FromJson(Payload("""{"proj\u0065ct_path":"acme\/escaped-api","ref":"ma\u0069n","env\u0069ronment":"prod\"uction"}"""), retained);

        Assert.Equal("acme/escaped-api", escaped.GetString("project_path"));
        Assert.Equal("main", escaped.GetString("ref"));
        Assert.Equal("prod\"uction", escaped.GetString("environment"));
        // the pooled copy is found whichever way the token spelled it
        Assert.Same(plain.GetString("project_path"), escaped.GetString("project_path"));
        Assert.Same(plain.GetString("ref"), escaped.GetString("ref"));
    }

    [Fact]
    public void A_retained_name_longer_than_the_indexed_lengths_and_non_ascii_names_are_found()
    {
        var longName = new string('c', 80);
        var retained = new RetainedClaims([longName, "équipe", "ref"]);
        var set = ClaimSet.FromJson(Payload($$"""{"{{longName}}":"x","équipe":"ops","{{new string('c', 79)}}":"no","ref":"main"}"""), retained);
        Assert.Equal("x", set.GetString(longName));
        Assert.Equal("ops", set.GetString("équipe"));
        Assert.Equal("main", set.GetString("ref"));
        Assert.Equal(3, set.Count);
    }

    [Fact]
    public void A_repeated_member_keeps_its_last_value_in_retained_sets_as_in_full_ones()
    {
        const string json = """{"ref":"first","ref":"last"}""";
        Assert.Equal("last", ClaimSet.FromJson(Payload(json), new RetainedClaims(["ref"])).GetString("ref"));
        Assert.Equal("last", ClaimSet.FromJson(Payload(json)).GetString("ref"));
    }

    [Fact]
    public void Unfiltered_sets_keep_everything_and_a_null_is_absent()
    {
        var all = ClaimSet.FromJson(Payload("""{"a":"1","b":true,"c":2.5,"d":null,"e":[1,{"k":1}]}"""));
        Assert.Equal(4, all.Count);
        Assert.Equal("true", all.GetString("b"));
        Assert.Equal("2.5", all.GetString("c"));
        Assert.False(all.TryGet("d", out _));
        Assert.True(all.TryGet("e", out var e));
        Assert.Equal(["1", """{"k":1}"""], e.Items.ToArray());
    }
}
