using Kong.PluginServer.Framing;

namespace Kong.PluginServer.Io;

/// <summary>The protocol side of a connection: fed with received bytes, told when the connection is gone.</summary>
internal interface IConnectionHandler
{
    /// <summary>The transport was attached to a newly accepted connection. Called with the gate held.</summary>
    void OnAttached();

    /// <summary>While stopping: release the connection if it is idle between commands (see the protocol's drain). Gate held.</summary>
    void Drain();

    /// <summary>Parses and handles every complete frame or message in <see cref="Transport.Input"/>. Called with the gate held.</summary>
    void OnInput();

    /// <summary>The connection is closed (EOF, error, or closed by the server). Called once, with the gate held.</summary>
    void OnClosed();
}

/// <summary>
/// One connection's bytes: what was received and not parsed yet, what is queued to send, and the socket.
/// Everything is done under <see cref="Gate"/>: the event loop holds it while it feeds received bytes to the
/// handler (PDK replies complete there and the plugin's handler continues inline), and a handler that
/// continued on another thread (after an await of something other than Kong) takes it to queue calls and flush.
/// The object is reused for later connections; <see cref="Generation"/> tells a stale reference apart.
/// </summary>
internal abstract class Transport
{
    public readonly object Gate = new();
    public readonly InputBuffer Input = new();
    public readonly OutputBuffer Output = new();
    public IConnectionHandler Handler = null!;

    /// <summary>The connection number, for logs.</summary>
    public int Id;

    /// <summary>Incremented each time the object is attached to a new connection.</summary>
    public int Generation;

    public bool Closed;

    /// <summary>True once our write side is shut (draining): Kong reads EOF, we read until it closes.</summary>
    public bool WriteShut;

    /// <summary>When input started waiting in the middle of a frame (Environment.TickCount64), 0 when none.</summary>
    public long PartialSince;

    /// <summary>Sends everything queued in <see cref="Output"/> (the rest goes when the socket can take it). False when the connection is closed. Gate held.</summary>
    public abstract bool Flush();

    /// <summary>Shuts the write side once the queued output is sent: Kong's next read of this connection sees EOF. Gate held.</summary>
    public abstract void ShutdownWrite();

    /// <summary>Closes the connection now and tells the handler. Gate held.</summary>
    public abstract void Close();

    /// <summary>Records whether unconsumed input is left after parsing (the mid-frame idle bound).</summary>
    public void NotePartial()
    {
        if (Input.Length == 0) PartialSince = 0;
        else if (PartialSince == 0) PartialSince = Environment.TickCount64;
    }
}
