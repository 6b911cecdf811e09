namespace Kong.PluginServer.Pdk;

/// <summary>
/// The arguments of one PDK call, protocol-neutral; which fields mean what depends on the method's
/// <see cref="PdkArgKind"/>. A struct so a call allocates nothing of its own.
/// </summary>
internal readonly struct PdkArgs
{
    /// <summary>String: v. KV: k. ConsumerSpec: id. Target: host.</summary>
    public readonly string? Text;
    /// <summary>KV: v (value tree). Struct: the map. ListValue: object?[] items. ExitArgs: headers. AuthenticateArgs: consumer.</summary>
    public readonly object? Value;
    /// <summary>AuthenticateArgs: credential.</summary>
    public readonly object? Value2;
    /// <summary>Int: v. ExitArgs: status. Target: port.</summary>
    public readonly long Number;
    /// <summary>Bool: v. ConsumerSpec: by_username.</summary>
    public readonly bool Flag;
    /// <summary>ExitArgs: body. ByteString: v.</summary>
    public readonly ReadOnlyMemory<byte> Bytes;

    public PdkArgs(string? text = null, object? value = null, object? value2 = null, long number = 0, bool flag = false, ReadOnlyMemory<byte> bytes = default)
    {
        Text = text; Value = value; Value2 = value2; Number = number; Flag = flag; Bytes = bytes;
    }

    public static PdkArgs None => default;
    public static PdkArgs Of(string v) => new(text: v);
    public static PdkArgs Of(long v) => new(number: v);
    public static PdkArgs Of(bool v) => new(flag: v);
    public static PdkArgs KV(string key, object? value) => new(text: key, value: value);
}
