// The client's time on a frame-pumped scheduler, as on Unity WebGL players (no timer fires, no
// thread-pool thread): a loop calls client.Tick() every 16 ms on one thread, like Unity's
// frame loop, against a real server. Deadlines, reconnects and heartbeats happen through those
// ticks and only through them: while no tick comes, nothing of the client's time moves.

using System;
using System.Diagnostics;
using System.Threading;
using System.Threading.Tasks;
using Xunit;

namespace Volley.Tests;

/// <summary>One thread calling Tick every 16 ms while running (the game's frame loop).</summary>
sealed class FrameLoop : IDisposable
{
    readonly VolleyClient _client;
    readonly Thread _thread;
    volatile bool _running;
    volatile bool _stop;
    public int Ticks;

    public FrameLoop(VolleyClient client)
    {
        _client = client;
        _thread = new Thread(Loop) { IsBackground = true, Name = "frame loop" };
        _thread.Start();
    }

    public void Run() => _running = true;
    public void Pause() => _running = false;

    void Loop()
    {
        while (!_stop)
        {
            if (_running)
            {
                _client.Tick();
                Interlocked.Increment(ref Ticks);
            }
            Thread.Sleep(16);
        }
    }

    public void Dispose()
    {
        _stop = true;
        _thread.Join();
    }
}

public class SchedulerTests : IClassFixture<OwnServerFixture>
{
    readonly NodeServer _server;
    public SchedulerTests(OwnServerFixture f) => _server = f.Server;

    static VolleyClientOptions Pumped(Action<VolleyClientOptions>? tweak = null) => T.Opts(null, o =>
    {
        o.Scheduler = new FrameScheduler();
        o.CaptureContext = false; // callbacks go through the scheduler too (the game's thread)
        tweak?.Invoke(o);
    });

    [Fact]
    public async Task A_deadline_fires_only_through_ticks()
    {
        var c = await VolleyClient.ConnectAsync(_server.Url, Pumped());
        using var frames = new FrameLoop(c);
        var key = T.Uid("dl");
        var call = c.CallAsync<string>("sleep", new object[] { 5000, key }, TimeSpan.FromMilliseconds(300));
        // No tick for 4x the deadline: no timer may fail the call behind the game's back.
        await Task.Delay(1200);
        Assert.False(call.IsCompleted, $"the call settled without a tick: {call.Status}");
        var sw = Stopwatch.StartNew();
        frames.Run();
        var e = await Assert.ThrowsAsync<VolleyRpcException>(() => call.WaitAsync(TimeSpan.FromSeconds(3)));
        Assert.Equal(ErrorCodes.Timeout, e.Code);
        Assert.True(frames.Ticks > 0);
        // The deadline's $cancel reached the server (the handler's signal fired).
        Assert.True(await T.Until(() => c.CallAsync<int>("cancelled", key).Result == 1, 3000));
        await c.CloseAsync(); // its wait runs on ticks too
    }

    [Fact]
    public async Task The_thread_timer_scheduler_fires_without_ticks()
    {
        // The control: the assertion above tells the two apart (today's client fails it).
        var c = await VolleyClient.ConnectAsync(_server.Url, Pumped(o => o.Scheduler = TimerScheduler.Instance));
        var call = c.CallAsync<string>("sleep", new object[] { 5000 }, TimeSpan.FromMilliseconds(300));
        await Task.Delay(1200);
        Assert.True(call.IsFaulted);
        await c.CloseAsync();
    }

    [Fact]
    public async Task A_dropped_connection_reconnects_and_resumes_only_through_ticks()
    {
        var c = await VolleyClient.ConnectAsync(_server.Url, Pumped());
        using var frames = new FrameLoop(c);
        var sid = c.SessionId;
        var resumed = 0;
        c.SessionOpened += r => { if (r) Interlocked.Increment(ref resumed); };
        var call = c.CallAsync<string>("sleep", new object[] { 600 }, TimeSpan.FromSeconds(20));
        await Task.Delay(100);
        c.Drop();
        // Backoff is 50-500 ms: with no tick in 1.2 s, no reconnect may have been dialled.
        await Task.Delay(1200);
        Assert.Equal(ConnectionState.Reconnecting, c.State);
        Assert.False(call.IsCompleted);
        frames.Run();
        Assert.Equal("slept", await call.WaitAsync(TimeSpan.FromSeconds(5)));
        Assert.Equal(ConnectionState.Open, c.State);
        Assert.Equal(sid, c.SessionId);
        Assert.True(await T.Until(() => Volatile.Read(ref resumed) == 1, 3000)); // events run on ticks
        Assert.Equal(4, await c.CallAsync<int>("add", 2, 2));
        await c.CloseAsync(); // its wait runs on ticks too
    }

    [Fact]
    public async Task Heartbeats_sent_on_ticks_keep_a_quiet_connection_alive()
    {
        // The server drops a client that keeps heartbeats and then is silent 2.5 x 500 ms; the
        // client's own judge is lenient (3 s) so that only the server's decides here. A 200 ms
        // client heartbeat leaves ~1 s of slack for a loaded CI machine (300 ms, leaving 550 ms,
        // flaked once in CI).
        await using var server = await NodeServer.StartOwnAsync("--heartbeat 500");
        var c = await VolleyClient.ConnectAsync(server.Url, Pumped(o =>
        {
            o.Heartbeat = TimeSpan.FromMilliseconds(200);
            o.HeartbeatTimeout = TimeSpan.FromSeconds(3);
        }));
        using var frames = new FrameLoop(c);
        var sid = c.SessionId;
        var closed = 0;
        c.SocketClosed += _ => Interlocked.Increment(ref closed);
        frames.Run();
        await Task.Delay(3000); // quiet, more than twice the server's 1.25 s: only $ping/$pong
        Assert.Equal(ConnectionState.Open, c.State);
        Assert.Equal(0, Volatile.Read(ref closed));
        Assert.Null(c.LastClose);
        // The control: without ticks no $ping goes out and the server drops the link.
        frames.Pause();
        Assert.True(await T.Until(() => c.State != ConnectionState.Open, 5000), "the link outlived its heartbeats");
        frames.Run();
        Assert.True(await T.Until(() => c.State == ConnectionState.Open, 5000));
        Assert.Equal(sid, c.SessionId);
        Assert.Equal(3, await c.CallAsync<int>("add", 1, 2));
        await c.CloseAsync(); // its wait runs on ticks too
    }
}
