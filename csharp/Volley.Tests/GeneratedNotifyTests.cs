// Notifications through the code volley-codegen generates (Kit.g.cs, from conformance/contract.ts),
// against the conformance kit's real server: the proxy's Notify… methods send a notification
// ([2, method, params], no id, no answer) that the server's handler runs once, and the server's
// notifications reach the typed methods Bind registers; one whose params don't convert never
// reaches the app's method and is reported, and the session stays.

using System;
using System.Collections.Generic;
using System.Linq;
using System.Net.Http;
using System.Text.Json;
using System.Threading;
using System.Threading.Tasks;
using Volley.Tests.Conformance;
using Xunit;

namespace Volley.Tests;

public class GeneratedNotifyTests : IClassFixture<KitFixture>
{
    static readonly HttpClient Http = new();
    readonly KitFixture _kit;
    public GeneratedNotifyTests(KitFixture kit) => _kit = kit;

    string Ws => _kit.Base.Replace("http", "ws") + "/";

    /// <summary>Every message the kit recorded from uid's client, as hex.</summary>
    async Task<string[]> UpHex(string uid)
    {
        var json = await Http.GetStringAsync($"{_kit.Base}/kit/frames?uid={Uri.EscapeDataString(uid)}");
        return JsonDocument.Parse(json).RootElement.EnumerateArray()
            .SelectMany(w => w.GetProperty("messages").EnumerateArray())
            .Where(m => m.GetProperty("dir").GetString() == "up")
            .Select(m => m.GetProperty("hex").GetString()!).ToArray();
    }

    static string Hex(string s) => Convert.ToHexString(System.Text.Encoding.UTF8.GetBytes(s)).ToLowerInvariant();

    [Fact]
    public async Task A_typed_notify_reaches_the_server_once_as_a_notification()
    {
        var uid = T.Uid("gn");
        using var client = await VolleyClient.ConnectAsync(Ws, T.Opts(uid));
        var server = new KitApi.ServerProxy(client);
        var key = "note-" + uid;
        server.NotifyKitNote(key);
        Assert.Equal(1, await server.KitNotes(key));
        // On the wire: [2, "kit.note", [key]] (a notification: no id, nothing answers it).
        var note = "9302a8" + Hex("kit.note") + "91" + $"{0xa0 + key.Length:x2}" + Hex(key);
        var up = await UpHex(uid);
        Assert.Single(up, h => h == note);
        Assert.DoesNotContain(up, h => h.Contains(Hex("kit.note") + "91") && h.StartsWith("94"));
        Assert.Equal(ConnectionState.Open, client.State);
    }

    [Fact]
    public async Task A_typed_notify_with_a_value_past_the_server_limits_throws_INVALID_PARAMS_and_sends_nothing()
    {
        var uid = T.Uid("gn");
        using var client = await VolleyClient.ConnectAsync(Ws, T.Opts(uid));
        var server = new KitApi.ServerProxy(client);
        var e = Assert.Throws<VolleyRpcException>(() => server.NotifyKitNote(new string('k', 2 * 1024 * 1024)));
        Assert.Equal(ErrorCodes.InvalidParams, e.Code);
        Assert.Equal(1L, await server.Echo(1L));
        Assert.DoesNotContain(await UpHex(uid), h => h.Contains(Hex("kit.note")));
    }

    /// <summary>Records what the server's notifications bring to the typed methods.</summary>
    sealed class Recorder : IKitClient
    {
        public readonly TaskCompletionSource<bool> Boomed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public int Fails;
        public Task<object?> Echo(object? x, CancellationToken ct) => Task.FromResult(x);
        public Task<double> Add(double a, double b, CancellationToken ct) => Task.FromResult(a + b);
        public Task<string> Slow(long ms, string tag, CancellationToken ct) => Task.FromResult("done");
        public void Fail(string code, string message, object? data) => Interlocked.Increment(ref Fails);
        public void Boom() => Boomed.TrySetResult(true);
        public Task<long> Count(string key, long? delayMs, CancellationToken ct) => Task.FromResult(1L);
        public IAsyncEnumerable<long> Numbers(long n, CancellationToken ct) => throw new NotSupportedException();
        public Task<long[]> Collect(IAsyncEnumerable<long> xs, CancellationToken ct) => throw new NotSupportedException();
    }

    [Fact]
    public async Task The_servers_notifications_reach_the_typed_methods_and_one_that_does_not_convert_is_reported()
    {
        var impl = new Recorder();
        var errors = new List<Exception>();
        var opts = T.Opts(T.Uid("gn"), o => o.OnHandlerError = (e, _) => { lock (errors) errors.Add(e); });
        using var client = await VolleyClient.ConnectAsync(Ws, opts, c => KitApi.Bind(c, impl));
        var server = new KitApi.ServerProxy(client);

        // notifyMe(method, n, payload) sends method(payload, i): boom(nil, 0) takes no params.
        Assert.Equal(1, await server.NotifyMe("boom", 1));
        Assert.Same(impl.Boomed.Task, await Task.WhenAny(impl.Boomed.Task, Task.Delay(5000)));

        // fail("APP", 0): its message param is a number, not a string: never reaches Fail.
        Assert.Equal(1, await server.NotifyMe("fail", 1, "APP"));
        Assert.True(await T.Until(() => { lock (errors) return errors.Count > 0; }, 5000), "the bad notification was not reported");
        var e = Assert.IsType<VolleyRpcException>(errors[0]);
        Assert.Equal(ErrorCodes.InvalidParams, e.Code);
        Assert.Contains("fail(message): expected a string", e.Message);
        Assert.Equal(0, Volatile.Read(ref impl.Fails));
        Assert.Equal(2L, await server.Echo(2L));
        Assert.Equal(ConnectionState.Open, client.State);
    }
}
