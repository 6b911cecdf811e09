using System.Text;
using System.Text.Json;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Kong.PluginServer.Protocol.ProtoBuf.Messages;
using PbString = Kong.PluginServer.Protocol.ProtoBuf.Messages.String;
using PbInt = Kong.PluginServer.Protocol.ProtoBuf.Messages.Int;

namespace Kong.PluginServer.Testing.Tests;

/// <summary>The simulator against the in-test ProtoBuf:1 fake server.</summary>
public class ProtoBufSimulatorTests
{
    private static KongSimulator Kong(FakePbServer server, int workers = 1, string name = "my-auth") =>
        new(server.SocketPath, KongProtocol.ProtoBuf, name, workers, new KongSimulatorOptions { Timeout = TimeSpan.FromSeconds(10) });

    [Fact]
    public async Task First_event_sends_spec_bytes_on_one_pooled_connection()
    {
        await using var server = new FakePbServer
        {
            InstanceIdFor = _ => 7,
            Handler = async ev =>
            {
                var v = await ev.CallAsync<PbString>("kong.request.get_header", new PbString { V = "authorization" }, PbString.Parser);
                Assert.Equal("Bearer x", v.V);
            },
        };
        await using var kong = Kong(server);
        var entity = kong.AddPlugin("{}");
        var r = await kong.Worker(0).RunAsync(entity, "access", new SimRequest { Headers = { ["Authorization"] = "Bearer x" } });

        Assert.Equal(SimOutcome.Completed, r.Outcome);
        Assert.Equal(200, r.Status);
        Assert.Equal(7, r.InstanceId);
        Assert.Equal(new[] { "kong.request.get_header" }, r.PdkCalls);
        Assert.Equal(1, r.RoundTrips);
        Assert.Equal(1, server.Connections); // StartInstance and HandleEvent reuse the pooled connection

        var bytes = server.Received[1].ToArray();
        var start = RpcCall.Parser.ParseFrom(bytes.AsSpan(4, BitConverter.ToInt32(bytes, 0)));
        Assert.Equal(2, start.Sequence);
        Assert.Equal("my-auth", start.CmdStartInstance.Name);
        var rest = Hex.Of(bytes.AsSpan(4 + BitConverter.ToInt32(bytes, 0)));
        Assert.Equal(Hex.Of(Hex.Parse("0f 00 00 00 | 08 03 a2 02 0a 08 07 12 06 'access'  0a 00 00 00 | 0a 08 'Bearer x'")), rest);
        // frames from the server: start reply; name+args (one write); end marker + RpcReturn (one write)
        Assert.Equal(5, r.FramesReceived);
        Assert.Equal(1, kong.Worker(0).PooledConnections);
    }

    [Fact]
    public async Task Sequence_starts_at_2_per_worker_and_increments_per_call()
    {
        await using var server = new FakePbServer();
        await using var kong = Kong(server, workers: 2);
        var entity = kong.AddPlugin();
        var r1 = await kong.Worker(0).RunAsync(entity, "access");
        var r2 = await kong.Worker(0).RunAsync(entity, "access");
        var r3 = await kong.Worker(1).RunAsync(entity, "access");
        Assert.Equal(new[] { ("cmd_start_instance", 2L), ("cmd_handle_event", 3L) }, r1.Rpcs.Select(x => (x.Command, x.Sequence)));
        Assert.Equal(new[] { ("cmd_handle_event", 4L) }, r2.Rpcs.Select(x => (x.Command, x.Sequence)));
        Assert.Equal(new[] { ("cmd_start_instance", 2L), ("cmd_handle_event", 3L) }, r3.Rpcs.Select(x => (x.Command, x.Sequence)));
        Assert.Equal(new long[] { 2, 3, 4, 2, 3 }, server.Calls.Select(c => c.Call.Sequence));
        Assert.Equal(5, kong.Worker(0).NextSequence);
    }

    [Fact]
    public async Task Sequence_mismatch_in_RpcReturn_is_an_assertion_and_a_500()
    {
        await using var server = new FakePbServer();
        server.SequenceOverride = c => c.CallCase == RpcCall.CallOneofCase.CmdHandleEvent ? c.Sequence + 1 : null;
        await using var kong = Kong(server);
        var r = await kong.RunAsync(kong.AddPlugin(), "access");
        Assert.Equal(SimOutcome.Failed, r.Outcome);
        Assert.Equal(500, r.Status);
        Assert.Contains("assertion failed", r.Error);
        Assert.Equal("{\"message\":\"An unexpected error occurred\"}", r.BodyText);
        Assert.Equal(0, r.Retries);

        server.SequenceOverride = null;
        var ok = await kong.RunAsync(kong.Entities[0], "access");
        Assert.Equal(200, ok.Status);
        Assert.Equal(4, ok.Rpcs.Single().Sequence);
    }

    [Fact]
    public async Task Sequence_mismatch_in_StartInstance_reply_fails_the_request()
    {
        await using var server = new FakePbServer { SequenceOverride = c => c.CallCase == RpcCall.CallOneofCase.CmdStartInstance ? 99 : null };
        await using var kong = Kong(server);
        var r = await kong.RunAsync(kong.AddPlugin(), "access");
        Assert.Equal(500, r.Status);
        Assert.Contains("assertion failed", r.Error);
        Assert.DoesNotContain(server.Calls, c => c.Call.CallCase == RpcCall.CallOneofCase.CmdHandleEvent);
    }

    [Fact]
    public async Task Instance_is_cached_then_restarted_on_config_change_and_the_old_one_closed()
    {
        await using var server = new FakePbServer();
        await using var kong = Kong(server);
        var entity = kong.AddPlugin("""{"header_name":"x-api-key"}""");
        var w = kong.Worker(0);
        var a = await w.RunAsync(entity, "access");
        var b = await w.RunAsync(entity, "access");
        Assert.Equal(1, a.InstanceStarts);
        Assert.Equal(0, b.InstanceStarts);
        Assert.Equal(a.InstanceId, b.InstanceId);
        Assert.Equal(a.InstanceId, w.CachedInstanceId(entity));

        long oldSeq = entity.Seq;
        kong.UpdateConfig(entity, """{"header_name":"x-other"}""");
        Assert.True(entity.Seq > oldSeq);
        var c = await w.RunAsync(entity, "access");
        Assert.Equal(new[] { "cmd_start_instance", "cmd_close_instance", "cmd_handle_event" }, c.Rpcs.Select(x => x.Command));
        Assert.Equal(new[] { a.InstanceId!.Value }, c.ClosedInstances);
        Assert.NotEqual(a.InstanceId, c.InstanceId);
        Assert.Equal(c.InstanceId, c.Rpcs[2].InstanceId);
        Assert.Equal(a.InstanceId, server.CallsOf(RpcCall.CallOneofCase.CmdCloseInstance).Single().CmdCloseInstance.InstanceId);
        var config = JsonDocument.Parse(server.Instances[c.InstanceId!.Value]).RootElement;
        Assert.Equal("x-other", config.GetProperty("header_name").GetString());
        Assert.Equal(entity.Seq, config.GetProperty("__seq__").GetInt64());
    }

    [Fact]
    public async Task Each_worker_has_its_own_instance_cache()
    {
        await using var server = new FakePbServer();
        await using var kong = Kong(server, workers: 3);
        var entity = kong.AddPlugin();
        var ids = new List<int?>();
        for (int i = 0; i < 3; i++) ids.Add((await kong.Worker(i).RunAsync(entity, "access")).InstanceId);
        Assert.Equal(3, ids.Distinct().Count());
        Assert.Equal(3, server.CallsOf(RpcCall.CallOneofCase.CmdStartInstance).Count());
    }

    [Fact]
    public async Task Config_json_carries_Kongs_injected_keys_and_cjson_quirks()
    {
        await using var server = new FakePbServer();
        await using var kong = Kong(server);
        var route = Guid.NewGuid().ToString();
        var entity = kong.AddPlugin("""{"allowed":[],"issuer":"https://gitlab.example/x","n":1.5}""", routeId: route, nullFields: new[] { "audience" });
        await kong.RunAsync(entity, "access");
        var json = server.Instances.Values.Single();
        Assert.Equal(entity.KongConfigJson, json);
        Assert.Contains("\"allowed\":{}", json);                       // empty array encoded as {}
        Assert.Contains("https:\\/\\/gitlab.example\\/x", json);        // cjson escapes '/'
        Assert.Contains("\"audience\":null", json);                     // unset field as explicit null
        Assert.Contains($"\"__seq__\":{entity.Seq}", json);             // integer
        var doc = JsonDocument.Parse(json).RootElement;
        Assert.Equal(entity.Id, doc.GetProperty("__plugin_id").GetString());
        Assert.Equal(kong.WorkspaceId, doc.GetProperty("__ws_id").GetString());
        Assert.Equal($"plugins:my-auth:{route}::::{kong.WorkspaceId}", doc.GetProperty("__key__").GetString());
        Assert.Equal(route, doc.GetProperty("route_id").GetString());
        Assert.False(doc.TryGetProperty("service_id", out _));
        Assert.False(doc.TryGetProperty("consumer_id", out _));

        var keepArrays = kong.AddPlugin("""{"allowed":[]}""", emptyArraysAsObjects: false);
        Assert.Contains("\"allowed\":[]", keepArrays.KongConfigJson);
    }

    [Fact]
    public async Task Seq_is_a_shared_counter_bumped_for_every_entity_on_rebuild()
    {
        await using var server = new FakePbServer();
        await using var kong = Kong(server);
        var a = kong.AddPlugin();
        Assert.Equal(1, a.Seq);
        var b = kong.AddPlugin();
        Assert.Equal(2, a.Seq);
        Assert.Equal(3, b.Seq);
        await kong.RunAsync(a, "access");
        kong.UpdateConfig(b, """{"x":1}""");
        Assert.Equal(4, a.Seq);
        Assert.Equal(5, b.Seq);
        var again = await kong.RunAsync(a, "access"); // a's seq changed too: restart
        Assert.Equal(1, again.InstanceStarts);
        Assert.Single(again.ClosedInstances);
    }

    [Fact]
    public async Task Replays_after_closed_with_a_new_instance()
    {
        await using var server = new FakePbServer();
        await using var kong = Kong(server);
        var entity = kong.AddPlugin();
        await kong.RunAsync(entity, "access");
        server.Instances.Clear(); // the server restarted: the cached id is unknown, the server closes the connection

        var r = await kong.RunAsync(entity, "access");
        Assert.Equal(SimOutcome.Completed, r.Outcome);
        Assert.Equal(1, r.Retries);
        Assert.Equal(1, r.InstanceStarts);
        Assert.Empty(r.ClosedInstances); // the cache was reset: nothing to close
        Assert.Equal(new[] { "cmd_handle_event", "cmd_start_instance", "cmd_handle_event" }, r.Rpcs.Select(x => x.Command));
        Assert.Contains(r.KongLog, l => l.Contains("closed"));
    }

    [Fact]
    public async Task Replays_are_bounded_and_then_fail_with_500()
    {
        await using var server = new FakePbServer { CloseInsteadOfReply = c => c.CallCase == RpcCall.CallOneofCase.CmdHandleEvent };
        await using var kong = Kong(server);
        var r = await kong.RunAsync(kong.AddPlugin(), "access");
        Assert.Equal(5, r.Retries);
        Assert.Equal(SimOutcome.Failed, r.Outcome);
        Assert.Equal(500, r.Status);
        Assert.Equal(6, r.InstanceStarts);
        Assert.Equal(6, server.CallsOf(RpcCall.CallOneofCase.CmdHandleEvent).Count());
    }

    [Fact]
    public async Task Replay_reset_drops_the_other_workers_instances_too()
    {
        await using var server = new FakePbServer();
        await using var kong = Kong(server, workers: 2);
        var entity = kong.AddPlugin();
        await kong.Worker(0).RunAsync(entity, "access");
        await kong.Worker(1).RunAsync(entity, "access");
        server.Instances.Clear();
        var r = await kong.Worker(0).RunAsync(entity, "access");
        Assert.Equal(1, r.Retries);
        Assert.Null(kong.Worker(1).CachedInstanceId(entity));
    }

    [Fact]
    public async Task A_failed_StartInstance_raises_a_500_without_replay()
    {
        await using var server = new FakePbServer { CloseInsteadOfReply = c => c.CallCase == RpcCall.CallOneofCase.CmdStartInstance };
        await using var kong = Kong(server);
        var r = await kong.RunAsync(kong.AddPlugin(), "access");
        Assert.Equal(500, r.Status);
        Assert.Equal(0, r.Retries);
        Assert.Equal("closed", r.Error);
    }

    [Fact]
    public async Task Exit_is_recorded_never_answered_and_the_connection_abandoned()
    {
        await using var server = new FakePbServer
        {
            Handler = async ev =>
            {
                var exit = new ExitArgs { Status = 401, Body = Google.Protobuf.ByteString.CopyFromUtf8("{\"message\":\"no\"}"), Headers = new Struct() };
                exit.Headers.Fields["WWW-Authenticate"] = Value.ForString("Bearer");
                exit.Headers.Fields["X-Multi"] = Value.ForList(Value.ForString("a"), Value.ForString("b"));
                await ev.ExitAsync(exit);
            },
        };
        await using var kong = Kong(server);
        var r = await kong.RunAsync(kong.AddPlugin(), "access");
        Assert.Equal(SimOutcome.Exited, r.Outcome);
        Assert.Equal(401, r.Status);
        Assert.Equal("{\"message\":\"no\"}", r.Exit!.BodyText);
        Assert.Equal("Bearer", r.Exit.Headers["www-authenticate"]);
        Assert.Equal(new[] { "a", "b" }, r.Exit.Headers.GetValues("x-multi"));
        Assert.Equal(new[] { "kong.response.exit" }, r.PdkCalls);
        Assert.Equal(0, r.RoundTrips);
        Assert.Equal(0, kong.Worker(0).PooledConnections);
        await WaitUntil(() => server.EofWhileWaitingForReply == 1);
    }

    [Fact]
    public async Task Phase_check_raise_in_access_sends_no_reply_and_fails_with_500()
    {
        await using var server = new FakePbServer
        {
            Handler = async ev => await ev.CallAsync("kong.response.get_status"),
        };
        await using var kong = Kong(server);
        var r = await kong.RunAsync(kong.AddPlugin(), "access");
        Assert.Equal(SimOutcome.Failed, r.Outcome);
        Assert.Equal(500, r.Status);
        Assert.Equal("function cannot be called in access phase", r.Error);
        Assert.Equal(0, r.RoundTrips);
        await WaitUntil(() => server.EofWhileWaitingForReply == 1);
    }

    [Theory]
    [InlineData("kong.response.exit")]
    [InlineData("kong.response.set_header")]
    [InlineData("kong.service.request.set_header")]
    [InlineData("kong.client.authenticate")]
    public async Task Setters_exit_and_authenticate_raise_in_log(string method)
    {
        IMessage arg = method switch
        {
            "kong.response.exit" => new ExitArgs { Status = 403 },
            "kong.client.authenticate" => new AuthenticateArgs { Consumer = new Consumer { Id = Guid.NewGuid().ToString() } },
            _ => new KV { K = "x-a", V = Value.ForString("1") },
        };
        await using var server = new FakePbServer { Handler = async ev => await ev.CallAsync(method, arg) };
        await using var kong = Kong(server);
        var r = await kong.RunAsync(kong.AddPlugin(), "log", new SimRequest { ResponseStatus = 201 });
        Assert.Equal(SimOutcome.FailedOpen, r.Outcome); // the response was already sent
        Assert.Equal(201, r.Status);
        Assert.Equal("function cannot be called in log phase", r.Error);
        Assert.Null(r.Exit);
    }

    [Fact]
    public async Task Log_phase_serves_serialize_and_saved_response_data()
    {
        string? serialized = null;
        int status = 0;
        await using var server = new FakePbServer
        {
            Handler = async ev =>
            {
                serialized = (await ev.CallAsync<PbString>("kong.log.serialize", null, PbString.Parser)).V;
                status = (await ev.CallAsync<PbInt>("kong.response.get_status", null, PbInt.Parser)).V;
            },
        };
        await using var kong = Kong(server);
        var r = await kong.RunAsync(kong.AddPlugin(), "log", new SimRequest { ResponseStatus = 201, Path = "/a/b", SerializeValues = { ["x.y"] = "z" } });
        Assert.Equal(SimOutcome.Completed, r.Outcome);
        Assert.Equal(201, status);
        var doc = JsonDocument.Parse(serialized!).RootElement;
        Assert.Equal("/a/b", doc.GetProperty("request").GetProperty("uri").GetString());
        Assert.Equal("z", doc.GetProperty("x").GetProperty("y").GetString());
    }

    [Fact]
    public async Task Live_request_getters_fail_in_the_log_timer()
    {
        await using var server = new FakePbServer { Handler = async ev => await ev.CallAsync("kong.request.get_path") };
        await using var kong = Kong(server);
        var r = await kong.RunAsync(kong.AddPlugin(), "log");
        Assert.Equal("API disabled in the context of ngx.timer", r.Error);
    }

    [Fact]
    public async Task Get_headers_shape_and_max_rules()
    {
        Struct? all = null, one = null;
        await using var server = new FakePbServer
        {
            Handler = async ev =>
            {
                all = await ev.CallAsync<Struct>("kong.request.get_headers", new PbInt { V = 100 }, Struct.Parser);
                one = await ev.CallAsync<Struct>("kong.request.get_headers", new PbInt { V = 1 }, Struct.Parser);
                await ev.CallAsync("kong.request.get_headers", new PbInt()); // max absent = 0: raises
            },
        };
        await using var kong = Kong(server);
        var req = new SimRequest { Headers = { { "Authorization", "Bearer x" }, { "X-Tag", "1" }, { "x-tag", "2" } } };
        var r = await kong.RunAsync(kong.AddPlugin(), "access", req);
        Assert.Equal("Bearer x", all!.Fields["authorization"].StringValue);
        Assert.Equal(new[] { "1", "2" }, all.Fields["x-tag"].ListValue.Values.Select(v => v.StringValue));
        Assert.Single(one!.Fields);
        Assert.Equal(500, r.Status);
        Assert.Equal("max_headers must be >= 1", r.Error);
        Assert.Equal(2, r.RoundTrips);
    }

    [Fact]
    public async Task Ctx_shared_values_follow_Kongs_Value_rules()
    {
        byte[]? missing = null;
        await using var server = new FakePbServer
        {
            Handler = async ev =>
            {
                missing = await ev.CallAsync("kong.ctx.shared.get", new PbString { V = "nope" });
                await ev.CallAsync("kong.ctx.shared.set", new KV { K = "s", V = Value.ForString("v") });
                await ev.CallAsync("kong.ctx.shared.set", new KV { K = "f", V = Value.ForBool(false) });
                await ev.CallAsync("kong.ctx.shared.set", new KV { K = "n", V = Value.ForNull() });
                await ev.CallAsync("kong.ctx.shared.set", new KV { K = "t", V = Value.ForStruct(new Struct { Fields = { ["a"] = Value.ForNumber(1) } }) });
                await ev.CallAsync("kong.ctx.shared.set", new KV { K = "old", V = null });
            },
        };
        await using var kong = Kong(server);
        var r = await kong.RunAsync(kong.AddPlugin(), "access", new SimRequest { CtxShared = { ["old"] = "x" } });
        Assert.Equal(200, r.Status);
        Assert.Equal("0801", Hex.Of(missing)); // nil -> Value{null_value = 1}
        Assert.Equal("v", r.CtxShared["s"]);
        Assert.False(r.CtxShared.ContainsKey("f"));           // false -> nil
        Assert.Equal("NULL_VALUE", r.CtxShared["n"]);          // standard null arrives as a string
        Assert.Equal(1.0, ((Dictionary<string, object?>)r.CtxShared["t"]!)["a"]);
        Assert.False(r.CtxShared.ContainsKey("old"));         // absent v -> nil -> removed
    }

    [Fact]
    public async Task Nil_string_reply_is_a_zero_length_frame()
    {
        byte[]? reply = null;
        await using var server = new FakePbServer { Handler = async ev => reply = await ev.CallAsync("kong.request.get_header", new PbString { V = "absent" }) };
        await using var kong = Kong(server);
        await kong.RunAsync(kong.AddPlugin(), "access");
        Assert.NotNull(reply);
        Assert.Empty(reply);
    }

    [Fact]
    public async Task Unknown_method_fails_with_a_pluginserver_error()
    {
        await using var server = new FakePbServer { Handler = async ev => await ev.CallAsync("kong.response.error", new PbInt { V = 401 }) };
        await using var kong = Kong(server);
        var r = await kong.RunAsync(kong.AddPlugin(), "access");
        Assert.Equal(500, r.Status);
        Assert.Equal("pluginserver error: method \"kong.response.error\" not found", r.Error);

        kong.Options.FailClosed = false; // Kong < 3.8: logged, the request continues
        var open = await kong.RunAsync(kong.Entities[0], "access");
        Assert.Equal(SimOutcome.FailedOpen, open.Outcome);
        Assert.Equal(200, open.Status);
    }

    [Fact]
    public async Task Missing_end_marker_stalls_until_the_read_timeout()
    {
        bool skip = false;
        await using var server = new FakePbServer { Handler = ev => { ev.SkipEndMarker = skip; return Task.CompletedTask; } };
        await using var kong = new KongSimulator(server.SocketPath, KongProtocol.ProtoBuf, "my-auth");
        var plugin = kong.AddPlugin();
        // The instance starts under the default timeout: a loaded machine must not turn StartInstance into the timeout.
        Assert.Equal(SimOutcome.Completed, (await kong.RunAsync(plugin, "access")).Outcome);
        skip = true;
        kong.Options.Timeout = TimeSpan.FromMilliseconds(500);
        var r = await kong.RunAsync(plugin, "access");
        Assert.Equal(500, r.Status);
        Assert.Equal("pluginserver error: timeout", r.Error);
    }

    [Fact]
    public async Task Exit_with_status_0_raises()
    {
        await using var server = new FakePbServer { Handler = async ev => await ev.CallAsync("kong.response.exit", new ExitArgs { Body = Google.Protobuf.ByteString.CopyFromUtf8("x") }) };
        await using var kong = Kong(server);
        var r = await kong.RunAsync(kong.AddPlugin(), "access");
        Assert.Equal(SimOutcome.Failed, r.Outcome);
        Assert.Equal("code must be a number between 100 and 599", r.Error);
        Assert.Null(r.Exit);
    }

    [Fact]
    public async Task Authenticate_records_defaults_filled_consumer_and_requires_one_of_both()
    {
        var id = Guid.NewGuid().ToString();
        await using var server = new FakePbServer
        {
            Handler = async ev =>
            {
                await ev.CallAsync("kong.client.authenticate", new AuthenticateArgs
                {
                    Consumer = new Consumer { Id = id },
                    Credential = new AuthenticatedCredential { Id = "cred-1" },
                });
                var c = await ev.CallAsync<Consumer>("kong.client.get_consumer", null, Consumer.Parser);
                Assert.Equal(id, c.Id);
                await ev.CallAsync("kong.client.authenticate", new AuthenticateArgs());
            },
        };
        await using var kong = Kong(server);
        var r = await kong.RunAsync(kong.AddPlugin(), "access");
        Assert.Equal(id, r.Consumer!.Id);
        Assert.Equal("", r.Consumer.Username);   // proto3 defaults arrive as ""/0
        Assert.Equal(0, r.Consumer.CreatedAt);
        Assert.Equal("cred-1", r.Credential!.Id);
        Assert.Equal("", r.Credential.ConsumerId);
        Assert.Equal(500, r.Status);
        Assert.Equal("either credential or consumer must be provided", r.Error);
    }

    [Fact]
    public async Task Load_consumer_by_id_by_username_and_non_uuid()
    {
        var alice = new SimConsumer { Id = Guid.NewGuid().ToString(), Username = "alice", CreatedAt = 1 };
        Consumer? byId = null, byName = null;
        byte[]? missing = null;
        await using var server = new FakePbServer
        {
            Handler = async ev =>
            {
                byId = await ev.CallAsync<Consumer>("kong.client.load_consumer", new ConsumerSpec { Id = alice.Id }, Consumer.Parser);
                byName = await ev.CallAsync<Consumer>("kong.client.load_consumer", new ConsumerSpec { Id = "alice", ByUsername = true }, Consumer.Parser);
                missing = await ev.CallAsync("kong.client.load_consumer", new ConsumerSpec { Id = Guid.NewGuid().ToString() });
                await ev.CallAsync("kong.client.load_consumer", new ConsumerSpec { Id = "alice" });
            },
        };
        await using var kong = Kong(server);
        kong.Consumers.Add(alice);
        var r = await kong.RunAsync(kong.AddPlugin(), "access");
        Assert.Equal("alice", byId!.Username);
        Assert.Equal(alice.Id, byName!.Id);
        Assert.Empty(missing!);
        Assert.Equal(500, r.Status);
        Assert.Equal("cannot load a consumer with an id that is not a uuid", r.Error);
    }

    [Fact]
    public async Task Query_arg_flag_raises()
    {
        byte[]? a = null;
        await using var server = new FakePbServer
        {
            Handler = async ev =>
            {
                a = await ev.CallAsync("kong.request.get_query_arg", new PbString { V = "a" });
                await ev.CallAsync("kong.request.get_query_arg", new PbString { V = "debug" });
            },
        };
        await using var kong = Kong(server);
        var r = await kong.RunAsync(kong.AddPlugin(), "access", new SimRequest { RawQuery = "a=1+2&debug" });
        Assert.Equal("1 2", PbString.Parser.ParseFrom(a).V);
        Assert.Equal(500, r.Status);
        Assert.Contains("string expected", r.Error);
    }

    [Fact]
    public async Task Upstream_headers_logs_serialize_values_and_service_changes_are_recorded()
    {
        await using var server = new FakePbServer
        {
            Handler = async ev =>
            {
                await ev.CallAsync("kong.service.request.clear_header", new PbString { V = "Authorization" });
                await ev.CallAsync("kong.service.request.set_header", new KV { K = "X-Consumer-Username", V = Value.ForString("alice") });
                await ev.CallAsync("kong.service.request.add_header", new KV { K = "X-Tag", V = Value.ForString("b") });
                await ev.CallAsync("kong.service.request.set_path", new PbString { V = "/internal" });
                await ev.CallAsync("kong.response.set_header", new KV { K = "X-Auth", V = Value.ForString("ok") });
                await ev.CallAsync("kong.log.err", new ListValue { Values = { Value.ForString("a"), Value.ForNumber(1), Value.ForBool(true) } });
                await ev.CallAsync("kong.log.set_serialize_value", new KV
                {
                    K = "gitlab",
                    V = Value.ForStruct(new Struct { Fields = { ["project"] = Value.ForString("g/p"), ["ids"] = Value.ForList(Value.ForNumber(1), Value.ForNumber(2)) } }),
                });
            },
        };
        await using var kong = Kong(server);
        var r = await kong.RunAsync(kong.AddPlugin(), "access", new SimRequest
        {
            Headers = { ["Authorization"] = "Bearer x", ["X-Tag"] = "a", ["Host"] = "h" },
        });
        Assert.Equal(200, r.Status);
        Assert.Null(r.UpstreamHeaders["authorization"]);
        Assert.Equal("alice", r.UpstreamHeaders["x-consumer-username"]);
        Assert.Equal(new[] { "a", "b" }, r.UpstreamHeaders.GetValues("x-tag"));
        Assert.Equal("h", r.UpstreamHeaders["host"]);
        Assert.Equal("/internal", r.Upstream.Path);
        Assert.Equal("ok", r.ResponseHeaders["x-auth"]);
        Assert.Equal(new SimLogLine("err", "a1true"), r.Logs.Single());
        var gitlab = (Dictionary<string, object?>)r.SerializeValues["gitlab"]!;
        Assert.Equal("g/p", gitlab["project"]);
        Assert.Equal(new List<object?> { 1.0, 2.0 }, gitlab["ids"]);
        Assert.Equal(7, r.RoundTrips);
    }

    [Fact]
    public async Task Concurrent_events_on_one_worker_share_one_instance_start()
    {
        await using var server = new FakePbServer
        {
            Handler = async ev => await ev.CallAsync("kong.request.get_header", new PbString { V = "x-n" }),
        };
        await using var kong = Kong(server);
        var entity = kong.AddPlugin();
        var tasks = Enumerable.Range(0, 40).Select(i =>
            kong.Worker(0).RunAsync(entity, "access", new SimRequest { Headers = { ["x-n"] = i.ToString() } })).ToArray();
        var results = await Task.WhenAll(tasks);
        Assert.All(results, r => Assert.Equal(200, r.Status));
        Assert.Single(server.CallsOf(RpcCall.CallOneofCase.CmdStartInstance));
        Assert.Single(results.Select(r => r.InstanceId).Distinct());
        Assert.Equal(41, server.Calls.Select(c => c.Call.Sequence).Distinct().Count()); // one counter, no reuse of a sequence
        Assert.True(kong.Worker(0).PooledConnections >= 1);
    }

    [Fact]
    public async Task Raw_connection_can_send_hostile_bytes_and_observe_eof()
    {
        await using var server = new FakePbServer();
        await using var conn = await KongConnection.ConnectAsync(server.SocketPath, TimeSpan.FromSeconds(5));
        await conn.SendFrameAsync(KongWire.HandleEvent(2, 12345, "access")); // unknown instance: the server closes
        var e = await Assert.ThrowsAsync<KongSocketException>(async () => await conn.ReadFrameAsync());
        Assert.Equal("closed", e.KongError);
    }

    internal static async Task WaitUntil(Func<bool> condition)
    {
        for (int i = 0; i < 500 && !condition(); i++) await Task.Delay(10);
        Assert.True(condition());
    }
}
