using HeaderAuth;
using Kong.PluginServer.Hosting;

return KongPluginHost.Run(args, new HeaderAuthPlugin());
