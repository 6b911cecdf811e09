using System.Collections.Concurrent;
using System.Net.Sockets;
using Kong.PluginServer.Framing;
using Kong.PluginServer.Pdk;
using Kong.PluginServer.Plugins;
using Kong.PluginServer.Protocol.ProtoBuf;

namespace Kong.PluginServer.Server;

/// <summary>
/// A Kong connection speaking ProtoBuf:1, served by one worker thread with blocking I/O (no async hops on
/// the hot path); the worker keeps this object, its buffers and its PDK facade for the next connection.
/// Loops `read RpcCall → reply` until EOF. During an event it is also the PDK session:
/// calls are queued in one output buffer; awaiting a reply flushes the queue in one write and reads
/// replies in order; the last setters, the end-of-event frame and the RpcReturn leave together.
/// </summary>
internal sealed class ProtoBufConnection : PdkSession, IDisposable
{
    private Socket _socket = null!;
    private readonly KongPluginServer _server;
    private readonly SocketInput _input;
    private readonly OutputBuffer _output = new();
    private readonly ProtoBufPdkCodec _codec = new();
    private readonly Queue<PdkReplySink?> _awaiting = new();
    private int _id;
    private readonly ManualResetEventSlim _wake = new(false); // not disposed: a late task continuation may still Set it
    private readonly ConcurrentQueue<PdkReplySink> _pullRequests = new();
    private Thread? _thread;

    public ProtoBufConnection(KongPluginServer server)
    {
        _server = server;
        _input = new SocketInput(null!, server.Options.MaxFrameBytes);
    }

    /// <summary>Binds this (reused) connection object to a newly accepted socket.</summary>
    public ProtoBufConnection Attach(Socket socket, int id)
    {
        _socket = socket;
        _id = id;
        _input.Attach(socket);
        _output.Reset();
        _awaiting.Clear();
        _pullRequests.Clear();
        return this;
    }

    public override bool PullsReplies => true;

    private ServerLog Log => _server.Options.Log;

    public void Run()
    {
        _thread = Thread.CurrentThread;
        try
        {
            while (_input.TryReadFrame(out var frame))
            {
                if (!Dispatch(frame)) break;
            }
        }
        catch (ProtocolViolationException e) { Log.Warn($"connection {_id}: closing: {e.Message}"); }
        catch (KongAbortedException e) { Log.Debug($"connection {_id}: {e.Message}"); }
        catch (SocketException e) { Log.Debug($"connection {_id}: socket error: {e.SocketErrorCode}"); }
        catch (ObjectDisposedException) { }
        catch (ConfigException e) { Log.Error($"connection {_id}: instance refused: {e.Message}"); }
        catch (Exception e) { Log.Error($"connection {_id}: closing after an unexpected error: {e}"); }
    }

    /// <summary>Handles one command; false closes the connection.</summary>
    private bool Dispatch(ReadOnlyMemory<byte> frame)
    {
        var cmd = RpcCodec.DecodeCall(frame.Span);
        var registry = _server.Registry;
        switch (cmd.Kind)
        {
            case RpcCommandKind.HandleEvent:
                return HandleEvent(cmd.Sequence, cmd.InstanceId, KongPhases.Parse(cmd.Name));

            case RpcCommandKind.StartInstance:
            {
                // a bad config is refused by closing without a reply: Kong raises a 500 for the request
                var inst = registry.Start(cmd.Config);
                Log.Info($"instance {inst.Id} started");
                RpcCodec.WriteInstanceStatus(_output, cmd.Sequence, _server.Plugin.Info.Name, inst.Id, inst.StartedAt);
                _output.FlushTo(_socket);
                return true;
            }

            case RpcCommandKind.CloseInstance:
            case RpcCommandKind.GetInstanceStatus:
            {
                int id = cmd.InstanceId;
                bool known = registry.TryGet(id, out var inst);
                if (cmd.Kind == RpcCommandKind.CloseInstance && known) registry.Close(id);
                if (!known) Log.Info($"status/close for unknown instance {id}");
                RpcCodec.WriteInstanceStatus(_output, cmd.Sequence, _server.Plugin.Info.Name, id, known ? inst.StartedAt : 0);
                _output.FlushTo(_socket);
                return true;
            }

            default: // GetPluginNames / GetPluginInfo: Kong never sends them; answer like the Go server
                _output.WriteFrame(ReadOnlySpan<byte>.Empty);
                _output.FlushTo(_socket);
                return true;
        }
    }

    private bool HandleEvent(long sequence, int instanceId, KongPhase phase)
    {
        // unknown instance or event: close before doing anything, so Kong's replay has no side effects
        if (!_server.Registry.TryGet(instanceId, out var instance))
        {
            Log.Info($"connection {_id}: no plugin instance {instanceId}; closing so that Kong restarts it");
            return false;
        }
        if (phase == KongPhase.None)
            throw new ProtocolViolationException("unknown event name");
        long started = System.Diagnostics.Stopwatch.GetTimestamp();
        _server.EventStarted(); // counted before the stop check: shutdown waits for every event it lets start
        if (_server.Stopping)
        {
            _server.EventRefused();
            Log.Info($"connection {_id}: stopping; no new event starts");
            return false;
        }

        instance.Touch();
        Interlocked.Increment(ref instance.InFlight);
        try
        {
            BeginEvent(phase);
            if ((_server.Plugin.Info.Phases & phase) != 0)
            {
                var task = EventRunner.StartAsync(instance, phase, this, Log);
                if (!task.IsCompleted) WaitServingPulls(task.AsTask());
                else task.GetAwaiter().GetResult();
            }
            if (Exited)
            {
                // Kong never answers kong.response.exit nor reads anything after it
                _server.CountEventWrite();
                _output.FlushTo(_socket);
                _awaiting.Clear();
                _input.DrainToEof();
                return false;
            }
            _output.WriteFrame(ReadOnlySpan<byte>.Empty);  // end of PDK steps
            RpcCodec.WriteReturn(_output, sequence);
            _server.CountEventWrite();
            _output.FlushTo(_socket);
            DrainReplies();
            return true;
        }
        catch (AggregateException e) when (e.InnerException is KongAbortedException abort) { throw abort; }
        finally
        {
            Interlocked.Decrement(ref instance.InFlight);
            instance.Touch();
            _server.EventFinished(started);
        }
    }

    /// <summary>
    /// Waits for a handler that went asynchronous. Its PDK awaits from other threads come back here as pull
    /// requests: the socket is only read on this thread, and thread-pool threads never block on Kong.
    /// </summary>
    private void WaitServingPulls(Task task)
    {
        _wake.Reset();
        task.ContinueWith(static (_, w) => ((ManualResetEventSlim)w!).Set(), _wake, CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        while (!task.IsCompleted)
        {
            _wake.Wait();
            _wake.Reset();
            while (_pullRequests.TryDequeue(out var sink))
            {
                if (sink.IsCompleted) continue;
                try { Pull(sink); }
                catch (Exception e)
                {
                    sink.Fail(e);
                    while (_awaiting.TryDequeue(out var s)) s?.Fail(e);
                }
            }
        }
        task.GetAwaiter().GetResult();
    }

    public override bool CanPullOnCurrentThread => Thread.CurrentThread == _thread;

    public override void RequestPull(PdkReplySink sink)
    {
        _pullRequests.Enqueue(sink);
        _wake.Set();
    }

    public override void Send(PdkMethod method, in PdkArgs args, PdkReplySink? sink)
    {
        if (Exited) throw new KongExitedException();
        _codec.WriteCall(_output, method, args);
        CallCount++;
        if (method.Return == PdkReturnKind.NoReply) { Exited = true; return; }
        _awaiting.Enqueue(sink);
    }

    public override void Pull(PdkReplySink sink)
    {
        if (_output.Length > 0)
        {
            _server.CountEventWrite();
            _output.FlushTo(_socket);
        }
        while (!sink.IsCompleted)
        {
            if (!_awaiting.TryDequeue(out var head))
                throw new InvalidOperationException("a PDK reply was awaited that was never requested");
            ReadReplyInto(head);
        }
    }

    private void DrainReplies()
    {
        while (_awaiting.TryDequeue(out var head)) ReadReplyInto(head);
    }

    private void ReadReplyInto(PdkReplySink? sink)
    {
        if (!_input.TryReadFrame(out var reply))
        {
            var abort = new KongAbortedException("connection closed while a PDK reply was expected");
            sink?.Fail(abort);
            while (_awaiting.TryDequeue(out var s)) s?.Fail(abort);
            throw abort;
        }
        sink?.Complete(_codec, reply);
    }

    /// <summary>After a connection: gives back buffers grown for large frames; true when it did.</summary>
    public bool ReleaseLargeBuffers() => _input.Shrink() | _output.Reset();

    public void Dispose()
    {
        _input.Dispose();
        _output.Dispose();
    }
}
