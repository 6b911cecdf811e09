using Kong.PluginServer.Hosting;
using KongPlugin1;

// Kong's conventions: -dump prints the schema, -kong-prefix/--socket set the socket, SIGTERM drains.
// Run with --help for every option.
return KongPluginHost.Run(args, new Plugin());
