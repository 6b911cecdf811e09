using System.Text;

namespace Deployment.Tests.Infrastructure;

/// <summary>One Dockerfile instruction (continuations joined, comments dropped) and the build stage it belongs to.</summary>
public sealed record DockerInstruction(string Keyword, string Arguments, int Stage, int Line);

/// <summary>A build stage: <c>FROM image [AS name]</c>.</summary>
public sealed record DockerStage(int Index, string Image, string? Name);

/// <summary>
/// A small Dockerfile reader: enough of the reference syntax to check what the image will contain and run
/// (line continuations with <c>\</c>, comment lines, <c>ENV k=v k2="v 2"</c> and the legacy <c>ENV k v</c>).
/// </summary>
public sealed class DockerfileModel
{
    private DockerfileModel(List<DockerInstruction> instructions, List<DockerStage> stages)
    {
        Instructions = instructions;
        Stages = stages;
    }

    public IReadOnlyList<DockerInstruction> Instructions { get; }
    public IReadOnlyList<DockerStage> Stages { get; }
    public DockerStage FinalStage => Stages[^1];

    public IEnumerable<DockerInstruction> In(DockerStage stage, string keyword) =>
        Instructions.Where(i => i.Stage == stage.Index && i.Keyword == keyword);

    /// <summary>The ENV variables of a stage, in order (a later assignment wins).</summary>
    public Dictionary<string, string> Env(DockerStage stage)
    {
        var env = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var i in In(stage, "ENV"))
        {
            var words = ShellWords.Split(i.Arguments);
            if (words.Count > 0 && !words[0].Contains('='))
            {
                // legacy form: ENV key the rest of the line
                var rest = i.Arguments.TrimStart()[words[0].Length..].Trim();
                env[words[0]] = rest;
                continue;
            }
            foreach (var w in words)
            {
                int eq = w.IndexOf('=');
                if (eq <= 0) throw new FormatException($"Dockerfile line {i.Line}: ENV word '{w}' is not key=value");
                env[w[..eq]] = w[(eq + 1)..];
            }
        }
        return env;
    }

    /// <summary>The effective USER of a stage (the last one), or null when the stage sets none.</summary>
    public string? User(DockerStage stage) => In(stage, "USER").Select(i => i.Arguments.Trim()).LastOrDefault();

    public static DockerfileModel Parse(string text)
    {
        var instructions = new List<DockerInstruction>();
        var stages = new List<DockerStage>();
        var lines = text.Replace("\r\n", "\n").Split('\n');
        var current = new StringBuilder();
        int startLine = 0;
        for (int n = 0; n < lines.Length; n++)
        {
            string line = lines[n];
            string trimmed = line.TrimStart();
            if (trimmed.StartsWith('#')) continue;              // comment (also inside a continuation)
            if (current.Length == 0)
            {
                if (trimmed.Length == 0) continue;
                startLine = n + 1;
            }
            if (line.TrimEnd().EndsWith('\\'))
            {
                var t = line.TrimEnd();
                current.Append(t[..^1]).Append(' ');
                continue;
            }
            current.Append(line);
            Add(current.ToString().Trim(), startLine);
            current.Clear();
        }
        if (current.Length > 0) Add(current.ToString().Trim(), startLine);
        return new DockerfileModel(instructions, stages);

        void Add(string instruction, int line)
        {
            if (instruction.Length == 0) return;
            int sp = instruction.IndexOfAny([' ', '\t']);
            string keyword = (sp < 0 ? instruction : instruction[..sp]).ToUpperInvariant();
            string args = sp < 0 ? "" : instruction[(sp + 1)..].Trim();
            if (keyword == "FROM")
            {
                var words = args.Split(' ', StringSplitOptions.RemoveEmptyEntries)
                    .Where(w => !w.StartsWith("--", StringComparison.Ordinal)).ToArray();
                string? name = words.Length >= 3 && words[1].Equals("AS", StringComparison.OrdinalIgnoreCase) ? words[2] : null;
                stages.Add(new DockerStage(stages.Count, words[0], name));
            }
            instructions.Add(new DockerInstruction(keyword, args, Math.Max(0, stages.Count - 1), line));
        }
    }
}

/// <summary>POSIX shell word splitting for simple command lines: blanks, '...', "..." and backslash escapes (no expansions).</summary>
public static class ShellWords
{
    public static List<string> Split(string command)
    {
        var words = new List<string>();
        var w = new StringBuilder();
        bool inWord = false;
        for (int i = 0; i < command.Length; i++)
        {
            char c = command[i];
            switch (c)
            {
                case ' ' or '\t' or '\n':
                    if (inWord) { words.Add(w.ToString()); w.Clear(); inWord = false; }
                    break;
                case '\'':
                {
                    int end = command.IndexOf('\'', i + 1);
                    if (end < 0) throw new FormatException($"unterminated ' in: {command}");
                    w.Append(command, i + 1, end - i - 1);
                    i = end;
                    inWord = true;
                    break;
                }
                case '"':
                {
                    int j = i + 1;
                    for (; j < command.Length && command[j] != '"'; j++)
                    {
                        if (command[j] == '\\' && j + 1 < command.Length && command[j + 1] is '"' or '\\' or '$' or '`') j++;
                        w.Append(command[j]);
                    }
                    if (j >= command.Length) throw new FormatException($"unterminated \" in: {command}");
                    i = j;
                    inWord = true;
                    break;
                }
                case '\\' when i + 1 < command.Length:
                    w.Append(command[++i]);
                    inWord = true;
                    break;
                default:
                    if (c is '$' or '`' or ';' or '|' or '&' or '<' or '>' or '(' or ')' or '*' or '?')
                        throw new FormatException($"'{c}' in a command Kong runs through /bin/sh: keep pluginserver commands to plain words ({command})");
                    w.Append(c);
                    inWord = true;
                    break;
            }
        }
        if (inWord) words.Add(w.ToString());
        return words;
    }

    /// <summary>Quotes one word for /bin/sh.</summary>
    public static string Quote(string word) => "'" + word.Replace("'", "'\\''") + "'";
}
