using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Resilience.Tests.Infrastructure;

/// <summary>Scrapes the binary's <c>--metrics-listen</c> endpoint (Prometheus text) for the server's gauges.</summary>
public sealed class Metrics(int port) : IDisposable
{
    private readonly HttpClient _http = new() { Timeout = Bounds.Hang };

    public int Port { get; } = port;

    /// <summary>Arguments that make the binary serve metrics on a free loopback port.</summary>
    public string[] Args => ["--metrics-listen", $"127.0.0.1:{Port}"];

    public static Metrics OnFreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return new Metrics(port);
    }

    /// <summary>Sum of the samples of <paramref name="name"/> (all label sets).</summary>
    public async Task<double> GetAsync(string name)
    {
        var text = await _http.GetStringAsync($"http://127.0.0.1:{Port}/metrics");
        double sum = 0;
        bool seen = false;
        foreach (var line in text.Split('\n'))
        {
            if (line.StartsWith('#') || !line.StartsWith(name, StringComparison.Ordinal)) continue;
            var rest = line[name.Length..];
            if (rest.Length == 0 || (rest[0] != ' ' && rest[0] != '{')) continue;
            var value = line[(line.LastIndexOf(' ') + 1)..];
            sum += double.Parse(value, CultureInfo.InvariantCulture);
            seen = true;
        }
        if (!seen) throw new InvalidOperationException($"metric {name} not exposed");
        return sum;
    }

    public async Task<double> ConnectionsAsync() => await GetAsync("pluginserver_connections");
    public async Task<double> InFlightAsync() => await GetAsync("pluginserver_events_in_flight");

    /// <summary>Waits until <paramref name="name"/> satisfies <paramref name="ok"/>; returns the last value.</summary>
    public async Task<double> UntilAsync(string name, Func<double, bool> ok, string what)
    {
        var deadline = DateTime.UtcNow + Bounds.Hang;
        double v;
        while (!ok(v = await GetAsync(name)))
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"{name} = {v}: timed out waiting until {what}");
            await Task.Delay(20);
        }
        return v;
    }

    public void Dispose() => _http.Dispose();
}
