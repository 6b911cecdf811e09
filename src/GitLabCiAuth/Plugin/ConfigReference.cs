using System.Text;
using Kong.PluginServer.Plugins;

namespace GitLabCiAuth.Plugin;

/// <summary>The README's config reference, generated from the schema (a test fails when the README drifts).</summary>
public static class ConfigReference
{
    public const string Begin = "<!-- config-reference:begin (generated from the GitLabCiAuthConfig declarations; run UPDATE_README=1 dotnet test tests/GitLabCiAuth.Tests) -->";
    public const string End = "<!-- config-reference:end -->";

    public static string Markdown()
    {
        var sb = new StringBuilder();
        sb.AppendLine("| field | type | default | rules | meaning |");
        sb.AppendLine("|---|---|---|---|---|");
        foreach (var f in GitLabCiAuthConfig.KongFields) Row(sb, f.Name, f.Type);
        sb.AppendLine();
        sb.AppendLine("Cross-field rules (the schema's `entity_checks`: Kong refuses a plugin that breaks one when it is written, the server when an instance starts):");
        sb.AppendLine();
        foreach (var c in GitLabCiAuthSchema.EntityChecks) sb.Append("- ").Append(c.Describe()).Append(" (`").Append(c.Kind).AppendLine("`)");
        sb.AppendLine();
        sb.Append("The plugin cannot be scoped to a Consumer (`consumer` must be null) and runs on the protocols ")
          .AppendJoin(", ", Schema.HttpProtocols.Select(p => $"`{p}`")).AppendLine(" (`protocols`, default: all four).");
        return sb.ToString();
    }

    private static void Row(StringBuilder sb, string name, SchemaType t)
    {
        var rules = new List<string>();
        if (t.Required) rules.Add("required");
        if (t.LenMin is { } lm) rules.Add($"at least {lm}");
        if (t.Between is { } b) rules.Add($"{b.Min}..{b.Max}");
        if (t.OneOf is not null) rules.Add("one of " + string.Join(", ", t.OneOf.Select(o => $"`{o}`")));
        if (t.Elements?.OneOf is { } eo) rules.Add("each one of " + string.Join(", ", eo.Select(o => $"`{o}`")));
        string def = t.DefaultJson is null ? "" : "`" + (t.DefaultJson.Length > 60 ? t.DefaultJson[..57] + "..." : t.DefaultJson) + "`";
        sb.Append("| `").Append(name).Append("` | ").Append(TypeName(t)).Append(" | ").Append(def).Append(" | ")
          .Append(string.Join("; ", rules)).Append(" | ").Append((t.Description ?? "").Replace("|", "\\|")).AppendLine(" |");
        if (t.Type == "array" && t.Elements?.Fields is { } fields)
            foreach (var f in fields) Row(sb, name + "[]." + f.Name, f.Type);
    }

    private static string TypeName(SchemaType t) => t.Type switch
    {
        "array" => $"array of {(t.Elements is null ? "string" : TypeName(t.Elements))}",
        "map" => $"map {TypeName(t.Keys ?? Schema.StringType())} → {TypeName(t.Values ?? Schema.StringType())}",
        _ => t.Type,
    };
}
