using System.Text;
using System.Text.RegularExpressions;
using Kong.PluginServer.Pdk;
using Kong.PluginServer.Protocol.ProtoBuf.Messages;

namespace Kong.PluginServer.Tests.Pdk;

/// <summary>The PDK table must be exactly the proto's service under Kong's naming rule (docs/protocol.md#pdk-method-names).</summary>
public class PdkMethodsTests
{
    private static string KongName(string rpc)
    {
        // Kong.X_Y: '_' -> '.', '_' between a lowercase letter (+digits) and an uppercase letter, lowercase
        string s = ("Kong." + rpc).Replace('_', '.');
        s = Regex.Replace(s, "([a-z][0-9]*)([A-Z])", "$1_$2");
        return s.ToLowerInvariant();
    }

    [Fact]
    public void Table_has_the_74_methods_of_the_proto_with_the_same_types()
    {
        var service = PluginsocketReflection.Descriptor.Services.Single(s => s.Name == "Kong");
        Assert.Equal(74, service.Methods.Count);
        Assert.Equal(74, PdkMethods.All.Count);
        foreach (var m in service.Methods)
        {
            var opt = m.GetOptions()?.GetExtension(PluginsocketExtensions.MethodName);
            string wire = string.IsNullOrEmpty(opt) ? KongName(m.Name) : opt;
            var pdk = PdkMethods.Find(wire);
            Assert.True(pdk is not null, $"{m.Name} -> {wire} is missing from PdkMethods");
            Assert.Equal(ArgKind(m.InputType.Name), pdk!.Arg);
            Assert.Equal(ReturnKind(m.OutputType.Name, wire), pdk.Return);
        }
    }

    [Theory]
    [InlineData("Request_GetHeader", "kong.request.get_header")]
    [InlineData("Nginx_GetTls1VersionStr", "kong.nginx.get_tls1_version_str")]
    [InlineData("Service_Request_SetRawBody", "kong.service.request.set_raw_body")]
    public void Naming_rule_matches_the_spec_examples(string rpc, string wire) => Assert.Equal(wire, KongName(rpc));

    private static PdkArgKind ArgKind(string message) => message switch
    {
        "Empty" => PdkArgKind.Empty, "String" => PdkArgKind.String, "Int" => PdkArgKind.Int, "Bool" => PdkArgKind.Bool,
        "KV" => PdkArgKind.KV, "ListValue" => PdkArgKind.ListValue, "Struct" => PdkArgKind.Struct, "ExitArgs" => PdkArgKind.ExitArgs,
        "Target" => PdkArgKind.Target, "ConsumerSpec" => PdkArgKind.ConsumerSpec, "AuthenticateArgs" => PdkArgKind.AuthenticateArgs,
        "ByteString" => PdkArgKind.ByteString, _ => throw new InvalidOperationException(message),
    };

    private static PdkReturnKind ReturnKind(string message, string wire) => wire == "kong.response.exit" ? PdkReturnKind.NoReply : message switch
    {
        "Empty" => PdkReturnKind.Empty, "String" => PdkReturnKind.String, "Int" => PdkReturnKind.Int, "Number" => PdkReturnKind.Number,
        "Bool" => PdkReturnKind.Bool, "Value" => PdkReturnKind.Value, "Struct" => PdkReturnKind.Struct, "Consumer" => PdkReturnKind.Consumer,
        "AuthenticatedCredential" => PdkReturnKind.Credential, "Route" => PdkReturnKind.Route, "Service" => PdkReturnKind.Service,
        "MemoryStats" => PdkReturnKind.MemoryStats, "RawBodyResult" => PdkReturnKind.RawBody, "UriCapturesResult" => PdkReturnKind.UriCaptures,
        "ByteString" => PdkReturnKind.ByteString, _ => throw new InvalidOperationException(message),
    };

    [Fact]
    public void Method_names_are_ascii_frames() =>
        Assert.All(PdkMethods.All, m => Assert.Equal(m.Name, Encoding.ASCII.GetString(m.NameUtf8)));
}
