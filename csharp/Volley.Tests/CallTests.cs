// Calls both ways against a real Volley server (Node, today's server/): results, errors
// with codes, deadlines and cancellation seen by both sides, notifications, threading.

using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;
using Volley.Wire;
using Xunit;

namespace Volley.Tests;

public class CallTests : IClassFixture<OwnServerFixture>
{
    readonly NodeServer _server;
    public CallTests(OwnServerFixture f) => _server = f.Server;

    Task<VolleyClient> Connect(Action<VolleyClient>? register = null, Action<VolleyClientOptions>? tweak = null) =>
        VolleyClient.ConnectAsync(_server.Url, T.Opts(tweak: tweak), register);

    static async Task<VolleyRpcException> Rpc(Func<Task> f) => await Assert.ThrowsAsync<VolleyRpcException>(f);

    [Fact]
    public async Task Values_round_trip_through_the_server()
    {
        await using var _ = new Closer(await Connect());
        var c = _.Client;
        Assert.Equal(5, await c.CallAsync<int>("add", 2, 3));
        Assert.Equal("héllo 🎮", await c.CallAsync<string>("echo", "héllo 🎮"));
        // Integers past 32 bits travel as int64 and come back exact.
        Assert.Equal(1_700_000_000_000L, await c.CallAsync<long>("echo", 1_700_000_000_000L));
        Assert.Equal(-(1L << 53) + 1, await c.CallAsync<long>("echo", -(1L << 53) + 1));
        Assert.Equal(1.5, await c.CallAsync<double>("echo", 1.5));
        Assert.Equal(new byte[] { 1, 2, 3 }, await c.CallAsync<byte[]>("echo", new byte[] { 1, 2, 3 }));
        var when = new DateTime(2021, 1, 1, 0, 0, 0, 123, DateTimeKind.Utc);
        Assert.Equal(when, await c.CallAsync<DateTime>("echo", when));
        var map = await c.CallAsync<Dictionary<string, object?>>("echo", new Dictionary<string, object?> { ["a"] = 1, ["list"] = new object?[] { "x", null, true } });
        Assert.Equal(1L, map["a"]);
        Assert.Equal(new object?[] { "x", null, true }, (object?[])map["list"]!);
        Assert.Null(await c.CallAsync<string?>("echo", new object?[] { null }));
        var who = await c.CallAsync<Dictionary<string, object?>>("whoami");
        Assert.StartsWith("t", (string)who["uid"]!);
    }

    [Fact]
    public async Task Typed_results_through_registered_converters()
    {
        var conv = new ValueConverters().Register<Point>(p => new Dictionary<string, object?> { ["x"] = p.X, ["y"] = p.Y },
            w => { var m = WireMap.Of(w); return new Point(m.Get<int>("x"), m.Get<int>("y")); });
        await using var _ = new Closer(await Connect(tweak: o => o.Converters = conv));
        var p = await _.Client.CallAsync<Point>("echo", new Point(3, -4));
        Assert.Equal(new Point(3, -4), p);
        var ps = await _.Client.CallAsync<Point[]>("echo", new object[] { new[] { new Point(1, 2), new Point(5, 6) } });
        Assert.Equal(new[] { new Point(1, 2), new Point(5, 6) }, ps);
    }

    public readonly record struct Point(int X, int Y);

    [Fact]
    public async Task Server_errors_arrive_with_code_message_and_data()
    {
        await using var _ = new Closer(await Connect());
        var c = _.Client;
        var e = await Rpc(() => c.CallAsync("fail", "APP_NOPE", "not allowed", new Dictionary<string, object?> { ["need"] = new object[] { 1, "two" } }));
        Assert.Equal("APP_NOPE", e.Code);
        Assert.Equal("not allowed", e.Message);
        var data = Assert.IsType<Dictionary<string, object?>>(e.ErrorData);
        Assert.Equal(new object?[] { 1L, "two" }, (object?[])data["need"]!);

        e = await Rpc(() => c.CallAsync("boom"));
        Assert.Equal(ErrorCodes.Internal, e.Code);
        Assert.DoesNotContain("secret", e.Message);

        Assert.Equal(ErrorCodes.MethodNotFound, (await Rpc(() => c.CallAsync("noSuchMethod"))).Code);
        Assert.Equal(ErrorCodes.InvalidParams, (await Rpc(() => c.CallAsync("add", "a", "b"))).Code);
        // A result that does not convert to the asked type is an error, not a silent default.
        Assert.Equal(ErrorCodes.Internal, (await Rpc(() => c.CallAsync<int>("echo", "seven"))).Code);
    }

    [Fact]
    public async Task Arguments_the_wire_refuses_fail_locally_with_INVALID_PARAMS()
    {
        await using var _ = new Closer(await Connect());
        var c = _.Client;
        Assert.Equal(ErrorCodes.InvalidParams, (await Rpc(() => c.CallAsync("echo", 1L << 53))).Code); // past 2^53−1
        Assert.Equal(ErrorCodes.InvalidParams, (await Rpc(() => c.CallAsync("echo", 1.5m))).Code); // decimal
        Assert.Equal(ErrorCodes.InvalidParams, (await Rpc(() => c.CallAsync("echo", new object[33]))).Code); // 33 params > 32
        Assert.Equal(ErrorCodes.InvalidParams, (await Rpc(() => c.CallAsync("echo", new byte[2 * 1024 * 1024]))).Code); // > 1 MiB
        Assert.Equal(ErrorCodes.InvalidParams, (await Rpc(() => c.CallAsync("echo", Nest(40)))).Code); // deeper than 32
        Assert.Equal(ErrorCodes.InvalidParams, (await Rpc(() => c.CallAsync(new string('m', 129)))).Code);
        // The connection is still fine afterwards.
        Assert.Equal(3, await c.CallAsync<int>("add", 1, 2));
    }

    static object Nest(int depth)
    {
        object v = 1;
        for (var i = 0; i < depth; i++) v = new object[] { v };
        return v;
    }

    [Fact]
    public async Task A_deadline_fails_the_call_with_TIMEOUT_and_cancels_the_handler_on_the_server()
    {
        await using var _ = new Closer(await Connect());
        var c = _.Client;
        var key = T.Uid("deadline");
        var e = await Rpc(() => c.CallAsync<string>("sleep", new object[] { 5000, key }, TimeSpan.FromMilliseconds(150)));
        Assert.Equal(ErrorCodes.Timeout, e.Code);
        // The $cancel reached the server: its handler's abort signal fired.
        Assert.True(await T.UntilAsync(async () => await c.CallAsync<int>("cancelled", key) == 1), "the server's handler was not aborted");
    }

    [Fact]
    public async Task A_cancellation_token_fails_the_call_with_CANCELLED_and_cancels_on_the_server()
    {
        await using var _ = new Closer(await Connect());
        var c = _.Client;
        var key = T.Uid("cancel");
        using var cts = new CancellationTokenSource(150);
        var e = await Rpc(() => c.CallAsync<string>("sleep", new object[] { 5000, key }, cts.Token));
        Assert.Equal(ErrorCodes.Cancelled, e.Code);
        Assert.True(await T.UntilAsync(async () => await c.CallAsync<int>("cancelled", key) == 1), "the server's handler was not aborted");
        // Already-cancelled tokens fail before anything is sent.
        Assert.Equal(ErrorCodes.Cancelled, (await Rpc(() => c.CallAsync<string>("sleep", new object[] { 10 }, cts.Token))).Code);
    }

    [Fact]
    public async Task Deadlines_of_many_calls_fire_from_the_one_sweep_soonest_first()
    {
        await using var _ = new Closer(await Connect());
        var c = _.Client;
        var sw = System.Diagnostics.Stopwatch.StartNew();
        // A late deadline first, then sooner ones: the sweep is re-armed for each sooner one.
        var late = c.CallAsync<string>("sleep", new object[] { 10_000 }, TimeSpan.FromMilliseconds(1500));
        var soon = new List<Task<string>>();
        for (var i = 0; i < 50; i++) soon.Add(c.CallAsync<string>("sleep", new object[] { 10_000 }, TimeSpan.FromMilliseconds(100 + i * 4)));
        var none = c.CallAsync<string>("sleep", new object[] { 2500 }, Timeout.InfiniteTimeSpan);
        foreach (var t in soon) Assert.Equal(ErrorCodes.Timeout, (await Rpc(() => t)).Code);
        var soonMs = sw.ElapsedMilliseconds;
        Assert.False(late.IsCompleted, $"the 1500 ms call ended with the short ones ({soonMs} ms)");
        Assert.True(soonMs < 1200, $"the 100…296 ms deadlines fired after {soonMs} ms");
        var e = await Rpc(() => late);
        Assert.Equal(ErrorCodes.Timeout, e.Code);
        Assert.Contains("1500 ms", e.Message);
        Assert.True(sw.ElapsedMilliseconds >= 1450, $"the 1500 ms deadline fired at {sw.ElapsedMilliseconds} ms");
        // No deadline: answered, not swept.
        Assert.Equal("slept", await none);
    }

    [Fact]
    public async Task The_server_calls_typed_handlers_sync_and_async()
    {
        await using var _ = new Closer(await Connect(c =>
        {
            c.Handle<long, long, long>("add", (a, b) => a + b);
            c.Handle<string, string>("shout", async (s, ct) => { await Task.Delay(10, ct); return s.ToUpperInvariant(); });
            c.HandleCall("echo", call => Task.FromResult(call.Args.Length > 0 ? call.Args[0] : null));
        }));
        var c = _.Client;
        Assert.Equal(7L, Value(await c.CallAsync<Dictionary<string, object?>>("callMe", "add", new object[] { 3, 4 })));
        Assert.Equal("HI", Value(await c.CallAsync<Dictionary<string, object?>>("callMe", "shout", new object[] { "hi" })));
        Assert.Equal(1_700_000_000_000L, Value(await c.CallAsync<Dictionary<string, object?>>("callMe", "echo", new object[] { 1_700_000_000_000L })));
    }

    static object? Value(Dictionary<string, object?> outcome)
    {
        Assert.False(outcome.ContainsKey("code"), "server saw an error: " + (outcome.TryGetValue("code", out var c) ? c : null) + " " + (outcome.TryGetValue("message", out var m) ? m : null));
        return outcome["value"];
    }

    static string Code(Dictionary<string, object?> outcome) => (string)outcome["code"]!;

    [Fact]
    public async Task Handler_errors_reach_the_server_with_their_codes()
    {
        var reported = new List<string>();
        await using var _ = new Closer(await Connect(c =>
        {
            c.Handle<string>("nope", () => throw new VolleyRpcException("APP_NOPE", "no way", new Dictionary<string, object?> { ["n"] = 1 }));
            c.Handle<string>("boom", () => throw new InvalidOperationException("secret detail"));
            c.Handle<int, int>("inc", x => x + 1);
        }, o => o.OnHandlerError = (e, m) => { lock (reported) reported.Add(m + ":" + e.Message); }));
        var c = _.Client;
        var o = await c.CallAsync<Dictionary<string, object?>>("callMe", "nope", Array.Empty<object>());
        Assert.Equal("APP_NOPE", Code(o));
        Assert.Equal("no way", o["message"]);
        Assert.Equal(1L, ((Dictionary<string, object?>)o["data"]!)["n"]);
        o = await c.CallAsync<Dictionary<string, object?>>("callMe", "boom", Array.Empty<object>());
        Assert.Equal(ErrorCodes.Internal, Code(o));
        Assert.DoesNotContain("secret", (string)o["message"]!);
        // OnHandlerError runs on the handler's thread after its error reply is sent: the
        // reply can reach the server and come back here first (seen in CI).
        for (var i = 0; i < 200; i++) { lock (reported) if (reported.Contains("boom:secret detail")) break; await Task.Delay(10); }
        lock (reported) Assert.Contains("boom:secret detail", reported);
        Assert.Equal(ErrorCodes.MethodNotFound, Code(await c.CallAsync<Dictionary<string, object?>>("callMe", "missing", Array.Empty<object>())));
        Assert.Equal(ErrorCodes.MethodNotFound, Code(await c.CallAsync<Dictionary<string, object?>>("callMe", "$inc", new object[] { 1 })));
        Assert.Equal(ErrorCodes.InvalidParams, Code(await c.CallAsync<Dictionary<string, object?>>("callMe", "inc", new object[] { "one" })));
    }

    [Fact]
    public async Task The_servers_deadline_and_cancel_fire_the_handlers_token_and_no_reply_is_sent()
    {
        var fired = new List<string>();
        var tcsDeadline = new TaskCompletionSource<bool>();
        var tcsCancel = new TaskCompletionSource<bool>();
        await using var _ = new Closer(await Connect(c =>
        {
            c.Handle<string, string>("slow", async (tag, ct) =>
            {
                using var reg = ct.Register(() => { lock (fired) fired.Add(tag); (tag == "deadline" ? tcsDeadline : tcsCancel).TrySetResult(true); });
                await Task.Delay(10_000, ct);
                return "finished";
            });
        }));
        var c = _.Client;
        // The server's call has a 400 ms deadline: it sends $cancel, our token fires. (Long
        // enough that the handler has started on a loaded machine: a call cancelled before its
        // handler runs never runs it, and has no token to fire.)
        Assert.Equal(ErrorCodes.Timeout, Code(await c.CallAsync<Dictionary<string, object?>>("callMe", "slow", new object[] { "deadline" }, 400)));
        Assert.True(await Task.WhenAny(tcsDeadline.Task, Task.Delay(3000)) == tcsDeadline.Task, "handler token did not fire on the server's deadline");
        Assert.Equal(ErrorCodes.Cancelled, Code(await c.CallAsync<Dictionary<string, object?>>("callMeAndCancel", "slow", new object[] { "cancel" }, 400)));
        Assert.True(await Task.WhenAny(tcsCancel.Task, Task.Delay(3000)) == tcsCancel.Task, "handler token did not fire on the server's cancel");
        // The link still works (no stray reply confused the server).
        Assert.Equal(3, await c.CallAsync<int>("add", 1, 2));
    }

    [Fact]
    public async Task A_local_handler_timeout_fires_the_token_and_answers_TIMEOUT()
    {
        var fired = new TaskCompletionSource<bool>();
        await using var _ = new Closer(await Connect(c =>
            c.Handle<string>("hang", async ct =>
            {
                ct.Register(() => fired.TrySetResult(true));
                await Task.Delay(10_000, ct);
                return "never";
            }), o => o.HandlerTimeout = TimeSpan.FromMilliseconds(100)));
        var o = await _.Client.CallAsync<Dictionary<string, object?>>("callMe", "hang", Array.Empty<object>());
        Assert.Equal(ErrorCodes.Timeout, Code(o));
        Assert.True(await fired.Task.WaitAsync(TimeSpan.FromSeconds(2)));
    }

    [Fact]
    public async Task Notifications_both_ways()
    {
        var got = new List<(string, long)>();
        await using var _ = new Closer(await Connect(c => c.On("note", args => { lock (got) got.Add(((string)args[0]!, (long)args[1]!)); })));
        var c = _.Client;
        Assert.Equal(3, await c.CallAsync<int>("notifyMe", "note", 3, "hey"));
        Assert.True(await T.Until(() => { lock (got) return got.Count == 3; }));
        Assert.Equal(new[] { ("hey", 0L), ("hey", 1L), ("hey", 2L) }, got);
        // Client → server notification: the server ignores unknown ones and keeps the link.
        c.Notify("noSuchNotification", 1, 2);
        Assert.Equal(2, await c.CallAsync<int>("add", 1, 1));
    }

    [Fact]
    public async Task Handlers_and_callbacks_run_on_the_given_SynchronizationContext()
    {
        using var loop = new SingleThreadContext();
        var handlerThread = -1;
        var noteThread = -1;
        var noted = new TaskCompletionSource<bool>();
        await using var _ = new Closer(await Connect(c =>
        {
            c.Handle<int, int>("twice", x => { handlerThread = Environment.CurrentManagedThreadId; return 2 * x; });
            c.On<string>("note", s => { noteThread = Environment.CurrentManagedThreadId; noted.TrySetResult(true); });
        }, o => o.Context = loop));
        var c = _.Client;
        Assert.Equal(42L, Value(await c.CallAsync<Dictionary<string, object?>>("callMe", "twice", new object[] { 21 })));
        await c.CallAsync<int>("notifyMe", "note", 1, "x");
        await noted.Task.WaitAsync(TimeSpan.FromSeconds(3));
        Assert.Equal(loop.ThreadId, handlerThread);
        Assert.Equal(loop.ThreadId, noteThread);
    }

    [Fact]
    public async Task Many_calls_in_flight_both_ways_are_each_answered_once()
    {
        await using var _ = new Closer(await Connect(c => c.Handle<long, long>("id", x => x)));
        var c = _.Client;
        var calls = new List<Task<long>>();
        for (var i = 0; i < 500; i++) calls.Add(c.CallAsync<long>("echo", (long)i));
        var results = await Task.WhenAll(calls);
        for (var i = 0; i < 500; i++) Assert.Equal(i, results[i]);
        // 300 server → client calls: the client's $ack must keep up (every 128).
        var back = new List<Task<Dictionary<string, object?>>>();
        for (var i = 0; i < 300; i++) back.Add(c.CallAsync<Dictionary<string, object?>>("callMe", "id", new object[] { i }));
        var outs = await Task.WhenAll(back);
        for (var i = 0; i < 300; i++) Assert.Equal((long)i, Value(outs[i]));
    }
}

/// <summary>A one-thread SynchronizationContext, standing in for Unity's main thread.</summary>
public sealed class SingleThreadContext : SynchronizationContext, IDisposable
{
    readonly System.Collections.Concurrent.BlockingCollection<(SendOrPostCallback, object?)> _queue = new();
    readonly Thread _thread;
    public int ThreadId => _thread.ManagedThreadId;

    public SingleThreadContext()
    {
        _thread = new Thread(() =>
        {
            SetSynchronizationContext(this);
            foreach (var (cb, state) in _queue.GetConsumingEnumerable()) cb(state);
        }) { IsBackground = true, Name = "fake-main" };
        _thread.Start();
    }

    public override void Post(SendOrPostCallback d, object? state) => _queue.Add((d, state));
    public void Dispose() => _queue.CompleteAdding();
}

/// <summary>Closes a client at the end of a test.</summary>
public sealed class Closer : IAsyncDisposable
{
    public VolleyClient Client { get; }
    public Closer(VolleyClient c) => Client = c;
    public async ValueTask DisposeAsync() => await Client.CloseAsync();
}
