// Connecting, refusals, timeouts, reconnect and resume against a real server, with a
// loopback TCP proxy that cuts connections mid-stream.

using System;
using System.Collections.Generic;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using Xunit;

namespace Volley.Tests;

public class ConnectionTests : IClassFixture<OwnServerFixture>
{
    readonly NodeServer _server;
    public ConnectionTests(OwnServerFixture f) => _server = f.Server;

    [Fact]
    public async Task A_refused_login_is_REFUSED_with_the_HTTP_status()
    {
        var e = await Assert.ThrowsAsync<VolleyRpcException>(() => VolleyClient.ConnectAsync(_server.Url, T.Opts(token: "bad token!")));
        Assert.Equal(ErrorCodes.Refused, e.Code);
        Assert.Equal(401L, ((Dictionary<string, object?>)e.ErrorData!)["status"]);
    }

    [Fact]
    public async Task The_token_may_travel_in_the_Authorization_header()
    {
        var uid = T.Uid();
        var c = await VolleyClient.ConnectAsync(_server.Url, T.Opts(uid, o => o.TokenIn = TokenTransport.Header));
        Assert.Equal(uid, (await c.CallAsync<Dictionary<string, object?>>("whoami"))["uid"]);
        await c.CloseAsync();
        var e = await Assert.ThrowsAsync<VolleyRpcException>(() => VolleyClient.ConnectAsync(_server.Url, T.Opts("bad token!", o => o.TokenIn = TokenTransport.Header)));
        Assert.Equal(ErrorCodes.Refused, e.Code);
    }

    [Fact]
    public async Task A_duplicate_login_refused_by_policy_is_REFUSED_409()
    {
        await using var strict = await NodeServer.StartOwnAsync("--reject");
        var uid = T.Uid();
        var first = await VolleyClient.ConnectAsync(strict.Url, T.Opts(uid));
        var e = await Assert.ThrowsAsync<VolleyRpcException>(() => VolleyClient.ConnectAsync(strict.Url, T.Opts(uid)));
        Assert.Equal(ErrorCodes.Refused, e.Code);
        Assert.Equal(409L, ((Dictionary<string, object?>)e.ErrorData!)["status"]);
        await first.CloseAsync();
    }

    [Fact]
    public async Task An_unreachable_server_is_DISCONNECTED_not_REFUSED()
    {
        var port = FreePort();
        var e = await Assert.ThrowsAsync<VolleyRpcException>(() => VolleyClient.ConnectAsync($"ws://127.0.0.1:{port}/", T.Opts()));
        Assert.Equal(ErrorCodes.Disconnected, e.Code);
    }

    [Fact]
    public async Task A_server_that_never_answers_hits_the_connect_timeout()
    {
        // Accepts TCP and then says nothing: the upgrade never completes.
        var silent = new TcpListener(IPAddress.Loopback, 0);
        silent.Start();
        var held = new List<TcpClient>();
        _ = Task.Run(async () => { try { while (true) held.Add(await silent.AcceptTcpClientAsync()); } catch { } });
        var port = ((IPEndPoint)silent.LocalEndpoint).Port;
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<VolleyRpcException>(() => VolleyClient.ConnectAsync($"ws://127.0.0.1:{port}/", T.Opts(tweak: o => o.ConnectTimeout = TimeSpan.FromMilliseconds(300))));
        Assert.Equal(ErrorCodes.Disconnected, e.Code);
        Assert.InRange(sw.ElapsedMilliseconds, 250, 3000);
        silent.Stop();
        foreach (var h in held) h.Dispose();
    }

    static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        var port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    [Fact]
    public async Task Close_ends_the_session_and_fails_pending_calls_DISCONNECTED()
    {
        var c = await VolleyClient.ConnectAsync(_server.Url, T.Opts());
        var pending = c.CallAsync<string>("sleep", 5000);
        await Task.Delay(50);
        c.Close();
        var e = await Assert.ThrowsAsync<VolleyRpcException>(() => pending);
        Assert.Equal(ErrorCodes.Disconnected, e.Code);
        Assert.Equal(ConnectionState.Closed, c.State);
        Assert.Equal(ErrorCodes.Disconnected, (await Assert.ThrowsAsync<VolleyRpcException>(() => c.CallAsync("echo", 1))).Code);
    }

    [Fact]
    public async Task A_dropped_socket_reconnects_and_resumes_the_same_session()
    {
        var c = await VolleyClient.ConnectAsync(_server.Url, T.Opts());
        var sid = c.SessionId;
        var resumed = new TaskCompletionSource<bool>();
        c.SessionOpened += r => { if (r) resumed.TrySetResult(true); }; // the first open's event may still be on its way
        c.Drop();
        Assert.True(await resumed.Task.WaitAsync(TimeSpan.FromSeconds(5)));
        Assert.Equal(sid, c.SessionId);
        Assert.Equal(4, await c.CallAsync<int>("add", 2, 2));
        await c.CloseAsync();
    }

    [Fact]
    public async Task A_call_pending_across_a_drop_is_answered_once_and_runs_once()
    {
        var c = await VolleyClient.ConnectAsync(_server.Url, T.Opts());
        var key = T.Uid("once");
        var call = c.CallAsync<int>("count", new object[] { key, 300 }, TimeSpan.FromSeconds(10));
        await Task.Delay(100); // the server is running it
        c.Drop();
        Assert.Equal(1, await call);
        Assert.Equal(1, await c.CallAsync<int>("runs", key));
        await c.CloseAsync();
    }

    [Fact]
    public async Task Calls_made_while_reconnecting_go_out_after_the_resume()
    {
        await using var proxy = await TcpCutter.StartAsync(_server.Port);
        var c = await VolleyClient.ConnectAsync($"ws://127.0.0.1:{proxy.Port}/", T.Opts());
        proxy.Refuse = true;
        proxy.CutAll();
        Assert.True(await T.Until(() => c.State == ConnectionState.Reconnecting));
        var key = T.Uid("offline");
        var call = c.CallAsync<int>("count", key, 0);
        await Task.Delay(300);
        proxy.Refuse = false;
        Assert.Equal(1, await call.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(1, await c.CallAsync<int>("runs", key));
        await c.CloseAsync();
    }

    [Fact]
    public async Task Cuts_through_a_proxy_while_calls_flow_both_ways_lose_and_repeat_nothing()
    {
        await using var proxy = await TcpCutter.StartAsync(_server.Port);
        var ran = 0;
        var c = await VolleyClient.ConnectAsync($"ws://127.0.0.1:{proxy.Port}/", T.Opts(), cl =>
            cl.Handle<long, long>("id", x => { Interlocked.Increment(ref ran); return x; }));
        var prefix = T.Uid("cut");
        var calls = new List<Task<int>>();
        using var stop = new CancellationTokenSource();
        var cutter = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                await Task.Delay(120);
                proxy.CutAll();
            }
        });
        for (var i = 0; i < 60; i++)
        {
            calls.Add(c.CallAsync<int>("count", new object[] { $"{prefix}-{i}", 20 }, TimeSpan.FromSeconds(20)));
            await Task.Delay(10);
        }
        var counts = await Task.WhenAll(calls);
        stop.Cancel();
        await cutter;
        Assert.True(proxy.Cuts >= 3, $"only {proxy.Cuts} cuts");
        Assert.All(counts, n => Assert.Equal(1, n));
        for (var i = 0; i < 60; i += 7) Assert.Equal(1, await c.CallAsync<int>("runs", $"{prefix}-{i}"));
        await c.CloseAsync();
    }

    [Fact]
    public async Task A_server_to_client_call_pending_across_a_drop_is_answered_once()
    {
        var runs = 0;
        var c = await VolleyClient.ConnectAsync(_server.Url, T.Opts(), cl =>
            cl.Handle<string, string>("slowOnce", async (tag, ct) => { Interlocked.Increment(ref runs); await Task.Delay(400, CancellationToken.None); return tag; }));
        var tag = T.Uid("s2c");
        Assert.True(await c.CallAsync<bool>("callMeLater", tag, "slowOnce", new object[] { tag }));
        await Task.Delay(100);
        c.Drop();
        var outcome = await c.CallAsync<Dictionary<string, object?>>("callResult", new object[] { tag }, TimeSpan.FromSeconds(10));
        Assert.False(outcome.ContainsKey("code"), "server saw " + (outcome.TryGetValue("code", out var code) ? code : ""));
        Assert.Equal(tag, outcome["value"]);
        Assert.Equal(1, runs);
        Assert.Equal(ConnectionState.Open, c.State);
        await c.CloseAsync();
    }
}

/// <summary>A loopback TCP proxy that can cut every connection (both sides destroyed mid-stream) or refuse new ones.</summary>
public sealed class TcpCutter : IAsyncDisposable
{
    readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    readonly int _target;
    readonly List<(TcpClient a, TcpClient b)> _pairs = new();
    readonly CancellationTokenSource _stop = new();
    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;
    public int Cuts;
    public volatile bool Refuse;

    TcpCutter(int target) => _target = target;

    public static Task<TcpCutter> StartAsync(int target)
    {
        var p = new TcpCutter(target);
        p._listener.Start();
        _ = p.AcceptLoop();
        return Task.FromResult(p);
    }

    async Task AcceptLoop()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try { client = await _listener.AcceptTcpClientAsync(_stop.Token); }
            catch { return; }
            if (Refuse) { client.Client.LingerState = new LingerOption(true, 0); client.Dispose(); continue; }
            var up = new TcpClient();
            try { await up.ConnectAsync(IPAddress.Loopback, _target); }
            catch { client.Dispose(); continue; }
            lock (_pairs) _pairs.Add((client, up));
            _ = Pump(client, up);
            _ = Pump(up, client);
        }
    }

    static async Task Pump(TcpClient from, TcpClient to)
    {
        var buf = new byte[16384];
        try
        {
            var a = from.GetStream();
            var b = to.GetStream();
            int n;
            while ((n = await a.ReadAsync(buf)) > 0) await b.WriteAsync(buf.AsMemory(0, n));
        }
        catch { }
        from.Dispose();
        to.Dispose();
    }

    public void CutAll()
    {
        lock (_pairs)
        {
            foreach (var (a, b) in _pairs)
            {
                // RST both ways, like a dead link.
                try { a.Client.LingerState = new LingerOption(true, 0); } catch { }
                try { b.Client.LingerState = new LingerOption(true, 0); } catch { }
                a.Dispose();
                b.Dispose();
                Cuts++;
            }
            _pairs.Clear();
        }
    }

    public ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        CutAll();
        return ValueTask.CompletedTask;
    }
}
