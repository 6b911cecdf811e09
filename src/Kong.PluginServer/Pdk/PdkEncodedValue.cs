namespace Kong.PluginServer.Pdk;

/// <summary>
/// A PDK argument that repeats across requests (the identity headers or the log record of a cached token): its wire
/// form is kept once per protocol and copied into later calls instead of being encoded again.
/// <para>
/// Pass it where a map argument goes (<c>kong.service.request.set_headers</c>, <c>kong.response.set_headers</c>,
/// <c>kong.log.set_serialize_value</c>, <c>kong.nginx.set_ctx</c>, ...). The first <see cref="EncodeAfterUses"/>
/// calls write <see cref="Value"/> as usual, so a value used once costs no copy; the next one keeps its bytes
/// (about the size of the value, per protocol). <see cref="Value"/> must not change afterwards: the kept bytes would
/// not follow it. Nested inside another value it is written as <see cref="Value"/>.
/// </para>
/// </summary>
public sealed class PdkEncodedValue : IPdkValue
{
    // one form per protocol and argument shape (a ProtoBuf Struct body differs from a ProtoBuf Value body)
    private byte[]? _protoBufStruct, _protoBufValue, _msgPack;
    private int _uses;

    /// <param name="value">The value; written as usual until its bytes are kept.</param>
    /// <param name="encodeAfterUses">Calls written without keeping bytes first (0: keep them at the first call).</param>
    public PdkEncodedValue(IPdkValue value, int encodeAfterUses = 1)
    {
        ArgumentNullException.ThrowIfNull(value);
        ArgumentOutOfRangeException.ThrowIfNegative(encodeAfterUses);
        Value = value;
        EncodeAfterUses = encodeAfterUses;
    }

    public IPdkValue Value { get; }

    public int EncodeAfterUses { get; }

    /// <summary>How many protocol forms are kept (0 to 3): tests and memory accounting.</summary>
    public int KeptForms => (_protoBufStruct is null ? 0 : 1) + (_protoBufValue is null ? 0 : 1) + (_msgPack is null ? 0 : 1);

    public void WriteTo(PdkValueWriter writer) => Value.WriteTo(writer);

    internal enum Form { ProtoBufStruct, ProtoBufValue, MsgPack }

    /// <summary>
    /// Copies the kept bytes of <paramref name="form"/> into <paramref name="output"/> (true). Otherwise (false) the
    /// codec writes <see cref="Value"/> itself and then calls <see cref="Written"/> with <paramref name="start"/>.
    /// </summary>
    internal bool TryCopy(Framing.OutputBuffer output, Form form, out int start)
    {
        if (Kept(form, out bool keep) is { } kept)
        {
            output.Write(kept);
            start = -1;
            return true;
        }
        start = keep ? output.Length : -1;
        return false;
    }

    /// <summary>After the codec wrote <see cref="Value"/> from <paramref name="start"/>: keeps those bytes when this use keeps them.</summary>
    internal void Written(Framing.OutputBuffer output, Form form, int start)
    {
        if (start >= 0) Keep(form, output.WrittenSpan[start..]);
    }

    /// <summary>The kept bytes of <paramref name="form"/>, or null; counts a use when there are none.</summary>
    private byte[]? Kept(Form form, out bool keepThisOne)
    {
        var kept = form switch
        {
            Form.ProtoBufStruct => Volatile.Read(ref _protoBufStruct),
            Form.ProtoBufValue => Volatile.Read(ref _protoBufValue),
            _ => Volatile.Read(ref _msgPack),
        };
        // a racing second thread may also encode: both produce the same bytes, either may be kept
        keepThisOne = kept is null && Interlocked.Increment(ref _uses) > EncodeAfterUses;
        return kept;
    }

    private void Keep(Form form, ReadOnlySpan<byte> bytes)
    {
        var copy = bytes.ToArray();
        switch (form)
        {
            case Form.ProtoBufStruct: Volatile.Write(ref _protoBufStruct, copy); break;
            case Form.ProtoBufValue: Volatile.Write(ref _protoBufValue, copy); break;
            default: Volatile.Write(ref _msgPack, copy); break;
        }
    }
}
