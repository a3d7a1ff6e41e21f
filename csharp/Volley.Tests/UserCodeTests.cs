// Exceptions from the app's own code (result converters, handler result converters, a
// handler token's callbacks) never reach the receive loop: the one call fails, every other
// message of the same frame is still delivered, deadlines still fire, the socket stays.

using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;
using Volley.Wire;
using Xunit;

namespace Volley.Tests;

public class UserCodeTests : IClassFixture<OwnServerFixture>
{
    readonly NodeServer _server;
    public UserCodeTests(OwnServerFixture f) => _server = f.Server;

    sealed class Missing { }
    sealed class WrongCast { }
    sealed class BadOut { }

    static ValueConverters Throwing() => new ValueConverters()
        .Register<Missing>(_ => new Dictionary<string, object?> { ["x"] = 1L },
            w => { var m = (Dictionary<string, object?>)w!; _ = m["missing"]; return new Missing(); }) // KeyNotFoundException
        .Register<WrongCast>(_ => new Dictionary<string, object?> { ["x"] = 1L },
            w => { var m = (Dictionary<string, object?>)w!; _ = (string)m["x"]!; return new WrongCast(); }) // InvalidCastException
        .Register<BadOut>(_ => throw new InvalidOperationException("toWire broke"), _ => new BadOut());

    [Fact]
    public async Task A_result_converter_that_throws_fails_that_call_only()
    {
        var closes = 0;
        await using var _ = new Closer(await VolleyClient.ConnectAsync(_server.Url, T.Opts(tweak: o => o.Converters = Throwing())));
        var c = _.Client;
        c.SocketClosed += _ => Interlocked.Increment(ref closes);
        var map = new Dictionary<string, object?> { ["x"] = 1L };
        for (var round = 0; round < 3; round++)
        {
            // Written in the same instant: one frame up, and the server's replies in one frame down.
            var missing = c.CallAsync<Missing>("echo", new object?[] { map }, TimeSpan.FromSeconds(3));
            var cast = c.CallAsync<WrongCast>("echo", new object?[] { map }, TimeSpan.FromSeconds(3));
            var good = c.CallAsync<long>("echo", new object?[] { 7L }, TimeSpan.FromSeconds(3));
            var all = Task.WhenAll(Settle(missing), Settle(cast), Settle(good));
            Assert.True(await Task.WhenAny(all, Task.Delay(2000)) == all,
                $"round {round}: calls still pending 2 s later: missing {missing.Status}, cast {cast.Status}, good {good.Status}");
            var e1 = Assert.IsType<VolleyRpcException>(missing.Exception!.InnerException);
            Assert.Equal(ErrorCodes.Internal, e1.Code);
            Assert.Contains("KeyNotFoundException", e1.Message);
            Assert.IsType<KeyNotFoundException>(e1.InnerException);
            var e2 = Assert.IsType<VolleyRpcException>(cast.Exception!.InnerException);
            Assert.Equal(ErrorCodes.Internal, e2.Code);
            Assert.IsType<InvalidCastException>(e2.InnerException);
            Assert.Equal(7L, good.Result);
        }
        Assert.Equal(ConnectionState.Open, c.State);
        Assert.Equal(0, closes);
    }

    static async Task Settle(Task t)
    {
        try { await t; } catch { }
    }

    [Fact]
    public async Task A_handler_result_that_does_not_convert_answers_INTERNAL_and_keeps_the_link()
    {
        var reported = new List<string>();
        await using var _ = new Closer(await VolleyClient.ConnectAsync(_server.Url, T.Opts(tweak: o =>
        {
            o.Converters = Throwing();
            o.OnHandlerError = (e, m) => { lock (reported) reported.Add(m + ":" + e.Message); };
        }), c => c.Handle<BadOut>("bad", () => new BadOut())));
        var c = _.Client;
        var o = await c.CallAsync<Dictionary<string, object?>>("callMe", "bad", Array.Empty<object>());
        Assert.Equal(ErrorCodes.Internal, o["code"]);
        Assert.True(await T.Until(() => { lock (reported) return reported.Contains("bad:toWire broke"); }), "the handler error was not reported");
        Assert.Equal(3, await c.CallAsync<int>("add", 1, 2));
        // And a call of ours whose args' converter throws fails INVALID_PARAMS, not an exception from CallAsync.
        var e = await Assert.ThrowsAsync<VolleyRpcException>(() => c.CallAsync<object?>("echo", new BadOut()));
        Assert.Equal(ErrorCodes.InvalidParams, e.Code);
        Assert.Equal(ConnectionState.Open, c.State);
    }

    [Fact]
    public async Task Throwing_event_handlers_and_a_throwing_error_hook_are_logged_not_fatal()
    {
        var lines = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var notes = 0;
        await using var _ = new Closer(await VolleyClient.ConnectAsync(_server.Url, T.Opts(tweak: o =>
        {
            o.CaptureContext = false; // the thread pool: an escaping exception there ends the process
            o.OnHandlerError = (e, m) => throw new InvalidOperationException("the hook broke too");
            o.Log = (l, m, e) => lines.Enqueue($"{l} {m} {e?.Message}");
        }), c =>
        {
            c.StateChanged += _ => throw new InvalidOperationException("event handler broke");
            c.On<string>("note", _ => { Interlocked.Increment(ref notes); throw new InvalidOperationException("note handler broke"); });
        }));
        var c = _.Client;
        Assert.Equal(2, await c.CallAsync<int>("notifyMe", "note", 2, "x"));
        Assert.True(await T.Until(() => Volatile.Read(ref notes) == 2), "notes not delivered");
        c.Drop(); // Reconnecting, Open: two more events that throw
        Assert.True(await T.Until(() => c.State == ConnectionState.Open), "did not reconnect");
        Assert.Equal(3, await c.CallAsync<int>("add", 1, 2));
        Assert.True(await T.Until(() => lines.Count >= 3), "the throwing hook was not logged: " + string.Join(" | ", lines));
        Assert.Contains(lines, l => l.Contains("event handler broke") || l.Contains("the hook broke too"));
    }

    [Fact]
    public async Task A_throwing_callback_on_a_handlers_token_does_not_cut_the_socket()
    {
        var closes = 0;
        var started = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var _ = new Closer(await VolleyClient.ConnectAsync(_server.Url, T.Opts(), c =>
            c.Handle<string>("slow", async ct =>
            {
                ct.Register(() => throw new InvalidOperationException("callback broke"));
                started.TrySetResult(true);
                await Task.Delay(10_000, CancellationToken.None);
                return "late";
            })));
        var c = _.Client;
        c.SocketClosed += _ => Interlocked.Increment(ref closes);
        var o = await c.CallAsync<Dictionary<string, object?>>("callMeAndCancel", "slow", Array.Empty<object>(), 150);
        Assert.Equal(ErrorCodes.Cancelled, o["code"]);
        Assert.Equal(3, await c.CallAsync<int>("add", 1, 2));
        Assert.Equal(ConnectionState.Open, c.State);
        Assert.Equal(0, closes);
    }
}
