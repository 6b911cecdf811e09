using GitLabCiAuth.TestSupport;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Deployment.Tests.Infrastructure;
using GitLabCiAuth.Testing;
using Kong.PluginServer.Testing;
using static Deployment.Tests.Infrastructure.Deployment;

namespace Deployment.Tests;

/// <summary>The Dockerfile (Docker cannot run here): its stages, and its Kong settings run against the real binary.</summary>
public sealed class DockerfileTests
{
    private const string PublishCommand = "dotnet publish src/GitLabCiAuth.Host -c Release -r \"$rid\" -o ";

    /// <summary>The build stage's RUN that publishes the host (one shell line: continuations joined).</summary>
    private static string PublishRun()
    {
        var build = Dockerfile.Stages[0];
        var run = Dockerfile.In(build, "RUN").Select(i => i.Arguments).SingleOrDefault(a => a.Contains(PublishCommand, StringComparison.Ordinal));
        Assert.True(run is not null, $"the build stage does not run `{PublishCommand}<dir>`");
        return run!;
    }

    private static string PublishOutput()
    {
        var run = PublishRun();
        return ShellWords.Split(run[(run.IndexOf(PublishCommand, StringComparison.Ordinal) + PublishCommand.Length)..])[0];
    }

    [Fact]
    public void Build_stage_is_the_NET_10_SDK_with_the_native_toolchain_and_publishes_the_host()
    {
        Assert.True(Dockerfile.Stages.Count >= 2, "the Dockerfile must be multi-stage");
        var build = Dockerfile.Stages[0];
        Assert.Equal("mcr.microsoft.com/dotnet/sdk:10.0", build.Image);
        Assert.NotNull(build.Name);

        var installs = string.Join('\n', Dockerfile.In(build, "RUN").Select(i => i.Arguments).Where(a => a.Contains("apt-get install", StringComparison.Ordinal)));
        var packages = Regex.Split(installs, @"[\s;&|\\]+");
        Assert.True(packages.Contains("clang") || packages.Contains("gcc"), "NativeAOT needs clang or gcc: " + installs);
        Assert.Contains("zlib1g-dev", packages);

        // the sources are in the build context and the publish output is the AOT executable `gitlab-ci-auth`
        Assert.Contains(Dockerfile.In(build, "COPY"), c => ShellWords.Split(c.Arguments) is [".", _]);
        Assert.StartsWith("/", PublishOutput());
        var csproj = Repo.Read(Repo.File("src", "GitLabCiAuth.Host", "GitLabCiAuth.Host.csproj"));
        Assert.Contains("<PublishAot>true</PublishAot>", csproj);
        Assert.Contains("<AssemblyName>gitlab-ci-auth</AssemblyName>", csproj);
    }

    [Theory]
    [InlineData("amd64", "linux-x64")]
    [InlineData("arm64", "linux-arm64")]
    public async Task Build_stage_publishes_for_the_target_architecture(string targetArch, string rid)
    {
        var r = await RunPublishStep(targetArch);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal($"publish src/GitLabCiAuth.Host -c Release -r {rid} -o {PublishOutput()}", r.Stdout.Trim());
    }

    [Fact]
    public async Task Build_stage_refuses_an_architecture_it_cannot_build()
    {
        var r = await RunPublishStep("riscv64");
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("linux/amd64 and linux/arm64, not riscv64", r.Stderr);
        Assert.Equal("", r.Stdout);   // dotnet publish never ran
    }

    [Fact]
    public async Task Without_TARGETARCH_the_build_is_for_the_build_machine()
    {
        // the classic builder does not set TARGETARCH: dpkg's architecture decides (the SDK image is Debian-family)
        var dpkg = await ShellProcess.RunAsync("exec dpkg --print-architecture");
        Assert.True(dpkg.ExitCode == 0, "this test needs dpkg: " + dpkg);
        var r = await RunPublishStep(null);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains(dpkg.Stdout.Trim() == "arm64" ? "-r linux-arm64" : "-r linux-x64", r.Stdout);
    }

    [Fact]
    public void Build_stage_runs_natively_on_the_target_platform()
    {
        // NativeAOT cannot cross-compile across architectures without a cross toolchain, which the stage does not have:
        // it must not be pinned to the build platform, and it declares TARGETARCH to pick the runtime identifier
        var from = Dockerfile.Instructions.First(i => i.Keyword == "FROM");
        Assert.DoesNotContain("--platform", from.Arguments);
        Assert.Contains(Dockerfile.In(Dockerfile.Stages[0], "ARG"), a => a.Arguments.Trim() == "TARGETARCH");
        Assert.DoesNotContain("--platform", Dockerfile.Instructions.Last(i => i.Keyword == "FROM").Arguments);   // kong:3.9 is multi-arch
        Assert.Contains("--platform linux/amd64,linux/arm64", Repo.Read(Repo.Dockerfile));                        // how to build both, documented
    }

    /// <summary>The publishing RUN under /bin/sh with TARGETARCH set as BuildKit sets it, and a `dotnet` that prints its arguments.</summary>
    private static async Task<Infrastructure.RunResult> RunPublishStep(string? targetArch)
    {
        using var dir = new TempDir();
        string fake = Path.Combine(dir.Path, "dotnet");
        File.WriteAllText(fake, "#!/bin/sh\necho \"$@\"\n");
        File.SetUnixFileMode(fake, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        string env = $"export PATH={ShellWords.Quote(dir.Path)}:/usr/bin:/bin" + (targetArch is null ? "; unset TARGETARCH" : $" TARGETARCH={targetArch}");
        return await ShellProcess.RunAsync($"{env}; {PublishRun()}");
    }

    [Fact]
    public void Final_stage_is_official_Kong_3_8_or_later_and_gets_only_the_binary_at_usr_local_bin()
    {
        var final = Dockerfile.FinalStage;
        var m = Regex.Match(final.Image, @"^kong:(\d+)\.(\d+)");
        Assert.True(m.Success, $"the final stage must be the official kong image, not {final.Image}");
        // before 3.8 a failing plugin server lets requests through unauthenticated (fail-open)
        Assert.True(new Version(int.Parse(m.Groups[1].Value), int.Parse(m.Groups[2].Value)) >= new Version(3, 8), final.Image);
        Assert.Equal("kong:3.9", final.Image);

        var copies = Dockerfile.In(final, "COPY").Select(c => ShellWords.Split(c.Arguments)).ToList();
        var binary = Assert.Single(copies);
        Assert.Equal([$"--from={Dockerfile.Stages[0].Name}", PublishOutput().TrimEnd('/') + "/gitlab-ci-auth", InstalledBinary], binary);
    }

    [Fact]
    public void Image_runs_as_kongs_unprivileged_user()
    {
        var final = Dockerfile.FinalStage;
        string? user = Dockerfile.User(final);
        Assert.Equal("kong", user);
        var last = Dockerfile.In(final, "USER").Last();
        // nothing after the last USER switches back, and it is not root by any spelling
        Assert.DoesNotContain(Dockerfile.Instructions.Where(i => i.Stage == final.Index && i.Line > last.Line), i => i.Keyword == "USER");
        Assert.DoesNotMatch(@"^(root|0)(:|$)", user!);
    }

    [Fact]
    public async Task Kong_plugins_lists_the_dumped_plugin_name_and_the_keys_follow_the_server_label()
    {
        var env = ImageEnv;
        var plugins = env["KONG_PLUGINS"].Split(',', StringSplitOptions.TrimEntries);
        var dumped = (string)(await DumpAsync())["Plugins"]![0]!["Name"]!;
        Assert.Equal(PluginName, dumped);
        Assert.Contains(dumped, plugins);
        Assert.Contains("bundled", plugins);    // rate-limiting, acl, file-log of kong.yml

        // exactly the five settings, nothing misspelt next to them
        var server = Server;
        var pluginServerKeys = env.Keys.Where(k => k.StartsWith("KONG_PLUGINSERVER_", StringComparison.Ordinal)).Order().ToArray();
        var prefix = PluginServerEnv.KeyPrefix(server.Label);
        Assert.Equal(new[] { "KONG_PLUGINSERVER_NAMES", prefix + "QUERY_CMD", prefix + "SOCKET", prefix + "START_CMD" }.Order(), pluginServerKeys);
    }

    [Fact]
    public void Explicit_settings_equal_the_defaults_of_Kong_3_4_to_3_9()
    {
        var s = Server;
        // socket: /usr/local/kong/<label>.socket (hard-coded before 3.9) = <prefix>/<label>.socket (3.9, image prefix /usr/local/kong)
        Assert.Equal($"/usr/local/kong/{s.Label}.socket", s.Socket);
        // 3.9's default query command when /usr/local/bin/<label> exists; 3.5+'s default start command is that file
        Assert.Equal($"/usr/local/bin/{s.Label} -dump", s.QueryCmd);
        Assert.Equal($"/usr/local/bin/{s.Label}", ShellWords.Split(s.StartCmd)[0]);
        Assert.Equal(InstalledBinary, $"/usr/local/bin/{s.Label}");
    }

    [Fact]
    public async Task Query_command_prints_one_line_of_valid_dump_json_and_nothing_else()
    {
        var r = await ShellProcess.RunAsync(ShellLine(await LocalCommandAsync(Server.QueryCmd)));

        Assert.True(r.ExitCode == 0, r.ToString());
        var lines = r.Stdout.TrimEnd('\n').Split('\n');
        Assert.Single(lines);   // Kong decodes the whole stdout with cjson
        var dump = JsonNode.Parse(lines[0])!.AsObject();
        Assert.Equal("ProtoBuf:1", (string?)dump["Protocol"]);  // the protocol that fails closed on Kong >= 3.8
        var plugin = Assert.Single(dump["Plugins"]!.AsArray())!.AsObject();
        Assert.Equal(PluginName, (string?)plugin["Name"]);
        Assert.Matches(@"^\d+\.\d+\.\d+$", (string?)plugin["Version"]);
        Assert.Equal(1200, (int)plugin["Priority"]!);
        Assert.Equal(["access"], plugin["Phases"]!.AsArray().Select(p => (string)p!));
        Assert.Equal(PluginName, (string?)plugin["Schema"]!["name"]);
    }

    [Fact]
    public async Task Start_command_listens_where_the_socket_key_points_and_serves_kong()
    {
        var s = Server;
        var words = await LocalCommandAsync(s.StartCmd);
        int flag = words.FindIndex(w => w is "-kong-prefix" or "--kong-prefix");
        Assert.True(flag > 0 && flag + 1 < words.Count, $"the start command has no -kong-prefix DIR: {s.StartCmd}");
        Assert.DoesNotContain(words, w => w is "--socket" or "-socket");
        string imagePrefix = words[flag + 1];
        Assert.Equal(imagePrefix, Path.GetDirectoryName(s.Socket));

        using var dir = new TempDir();
        words[flag + 1] = dir.Path;
        string expected = Path.Combine(dir.Path, "gitlab-ci-auth.socket");
        Assert.Equal(Path.GetFileName(expected), Path.GetFileName(s.Socket));

        await using var server = ShellProcess.Start(ShellLine(words));
        await server.WaitUntilListeningAsync(expected);
        Assert.Equal([Path.GetFileName(s.Socket)], Directory.GetFileSystemEntries(dir.Path).Select(Path.GetFileName));
        // Kong's worker 0 runs the start command, so the server is Kong's worker user (kong in the image) and the
        // socket is that user's alone; the start command does not widen it
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(expected));
        Assert.DoesNotContain(words, w => w.Contains("socket-mode", StringComparison.Ordinal));

        // Kong talks to it: one instance of gitlab-ci-auth, one authenticated request
        using var key = MinterKey.CreateRsa(2048);
        var minter = new TokenMinter("https://gitlab.example.com", key, "https://api.acme.example");
        await using (var kong = new KongSimulator(expected, KongProtocol.ProtoBuf, PluginName, 1, new KongSimulatorOptions { Timeout = RouteHarness.Bound }))
        {
            var config = new JsonObject
            {
                ["issuer"] = minter.Issuer,
                ["audiences"] = new JsonArray(minter.Audience),
                ["static_jwks"] = MinterKey.JwksJson(key),
                ["rules"] = new JsonArray(new JsonObject { ["name"] = "any", ["claims"] = new JsonObject { ["project_id"] = new JsonArray("*") } }),
            };
            var entity = kong.AddPlugin(config.ToJsonString());
            var request = new SimRequest { Method = "GET", Path = "/" };
            request.Headers["authorization"] = "Bearer " + minter.Mint();
            var r = await kong.Worker(0).RunAsync(entity, "access", request).WaitAsync(RouteHarness.Bound);
            Assert.True(r.Outcome == SimOutcome.Completed && r.Status == 200, r.ToString());
            Assert.Equal("gitlab-project-16234", r.Credential?.Id);
        }

        // Kong stops it with SIGTERM (exit_worker): clean exit, socket removed, ready for the next spawn
        Assert.Equal(0, Kill(server.Pid, 15));
        Assert.Equal(0, await server.WaitForExitAsync(ShellProcess.Bound));
        Assert.False(File.Exists(expected), "the socket file is left behind after SIGTERM");
    }

    [Fact]
    public void Dockerignore_keeps_build_outputs_out_of_the_context_and_the_sources_in()
    {
        var patterns = Repo.Read(Repo.DockerIgnore).Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')).ToList();
        foreach (var excluded in new[]
                 {
                     "src/GitLabCiAuth/bin/Debug/net10.0/GitLabCiAuth.dll", "src/GitLabCiAuth.Host/obj/project.assets.json",
                     "tests/Deployment.Tests/bin/Release/x.dll", "artifacts/bin/gitlab-ci-auth", "node_modules/x/index.js",
                     "tools/web/node_modules/a.js",
                 })
            Assert.True(DockerIgnore.Excludes(patterns, excluded), $".dockerignore does not exclude {excluded}");
        foreach (var kept in new[]
                 {
                     "Directory.Build.props", "Directory.Build.targets", "Plugin.sln", "src/GitLabCiAuth.Host/GitLabCiAuth.Host.csproj",
                     "src/GitLabCiAuth.Host/Program.cs", "src/Kong.PluginServer/Protos/pluginsocket.proto", "src/GitLabCiAuth/Plugin/GitLabCiAuthSchema.cs",
                 })
            Assert.False(DockerIgnore.Excludes(patterns, kept), $".dockerignore excludes {kept}, which the publish needs");
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);
}

/// <summary>Docker's .dockerignore matching (Go filepath.Match per pattern plus <c>**</c>; a matching directory excludes its contents; last match wins, <c>!</c> re-includes).</summary>
public static class DockerIgnore
{
    public static bool Excludes(IEnumerable<string> patterns, string path)
    {
        bool excluded = false;
        foreach (var raw in patterns)
        {
            bool negate = raw.StartsWith('!');
            var p = (negate ? raw[1..] : raw).Trim().TrimStart('/');
            if (p.StartsWith("./", StringComparison.Ordinal)) p = p[2..];
            if (Regex.IsMatch(path, "^" + ToRegex(p) + "(/.*)?$")) excluded = !negate;
        }
        return excluded;
    }

    private static string ToRegex(string pattern)
    {
        var sb = new System.Text.StringBuilder();
        for (int i = 0; i < pattern.Length; i++)
        {
            char c = pattern[i];
            if (c == '*' && i + 1 < pattern.Length && pattern[i + 1] == '*')
            {
                i++;
                if (i + 1 < pattern.Length && pattern[i + 1] == '/') { i++; sb.Append("(.*/)?"); }
                else sb.Append(".*");
            }
            else if (c == '*') sb.Append("[^/]*");
            else if (c == '?') sb.Append("[^/]");
            else sb.Append(Regex.Escape(c.ToString()));
        }
        return sb.ToString();
    }
}
