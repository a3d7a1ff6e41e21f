// What a game developer meets first (issue 24 item 7): the non-generic CallAsync overloads
// with a deadline or token, ConnectAsync with a token, connecting again after a failed first
// connect, the logging hook, and callbacks on the SynchronizationContext the client was made on
// (a frame-pumped main thread, as Unity's).

using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using Xunit;

namespace Volley.Tests;

public class ErgonomicsTests : IClassFixture<OwnServerFixture>
{
    readonly NodeServer _server;
    public ErgonomicsTests(OwnServerFixture f) => _server = f.Server;

    [Fact]
    public async Task Non_generic_CallAsync_with_a_deadline_or_token_is_not_taken_for_params()
    {
        await using var _ = new Closer(await VolleyClient.ConnectAsync(_server.Url, T.Opts()));
        var c = _.Client;
        Task call = c.CallAsync("add", new object?[] { 1, 2 }, TimeSpan.FromSeconds(5));
        await call; // before: sent add([1, 2], <TimeSpan>): INVALID_PARAMS, a TimeSpan does not cross the wire
        var e = await Assert.ThrowsAsync<VolleyRpcException>(() => c.CallAsync("sleep", new object?[] { 5000 }, TimeSpan.FromMilliseconds(100)));
        Assert.Equal(ErrorCodes.Timeout, e.Code);
        using var cts = new CancellationTokenSource(100);
        e = await Assert.ThrowsAsync<VolleyRpcException>(() => c.CallAsync("sleep", new object?[] { 5000 }, cts.Token));
        Assert.Equal(ErrorCodes.Cancelled, e.Code);
        // Plain params still are params.
        await c.CallAsync("add", 1, 2);
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
    public async Task A_failed_first_connect_can_be_tried_again()
    {
        var port = FreePort();
        var c = new VolleyClient($"ws://127.0.0.1:{port}/", T.Opts());
        c.HandleCall("ping", _ => Task.FromResult<object?>("pong"));
        var e = await Assert.ThrowsAsync<VolleyRpcException>(() => c.ConnectAsync());
        Assert.Equal(ErrorCodes.Disconnected, e.Code);
        Assert.Equal(ConnectionState.Closed, c.State);
        // The server comes up; the same client (handlers registered) connects.
        await using var server = await NodeServer.StartAsync(NodeServer.RepoRoot, "csharp/Volley.Tests/server/test-server.ts", $"--port {port}", null, new System.Text.RegularExpressions.Regex(@"^LISTENING (\d+)"));
        await c.ConnectAsync().WaitAsync(TimeSpan.FromSeconds(10)); // before: the first failure, for good
        Assert.Equal(ConnectionState.Open, c.State);
        Assert.Equal(3, await c.CallAsync<int>("add", 1, 2));
        Assert.Equal("pong", ((Dictionary<string, object?>)(await c.CallAsync<Dictionary<string, object?>>("callMe", "ping", Array.Empty<object>())))["value"]);
        await c.CloseAsync();
        // Closed by the app: stays closed.
        Assert.Equal(ErrorCodes.Disconnected, (await Assert.ThrowsAsync<VolleyRpcException>(() => c.CallAsync("add", 1, 2))).Code);
        await Assert.ThrowsAsync<VolleyRpcException>(() => c.ConnectAsync());
    }

    [Fact]
    public async Task ConnectAsync_gives_up_when_its_token_fires()
    {
        // A server that accepts TCP and never answers the upgrade.
        var silent = new TcpListener(IPAddress.Loopback, 0);
        silent.Start();
        var held = new List<TcpClient>();
        _ = Task.Run(async () => { try { while (true) held.Add(await silent.AcceptTcpClientAsync()); } catch { } });
        try
        {
            var port = ((IPEndPoint)silent.LocalEndpoint).Port;
            var c = new VolleyClient($"ws://127.0.0.1:{port}/", T.Opts(tweak: o => o.ConnectTimeout = TimeSpan.FromSeconds(30)));
            using var cts = new CancellationTokenSource(200);
            var sw = Stopwatch.StartNew();
            var e = await Assert.ThrowsAsync<VolleyRpcException>(() => c.ConnectAsync(cts.Token).WaitAsync(TimeSpan.FromSeconds(10)));
            Assert.Equal(ErrorCodes.Cancelled, e.Code);
            Assert.True(sw.ElapsedMilliseconds < 5000, $"gave up after {sw.ElapsedMilliseconds} ms");
            Assert.Equal(ConnectionState.Closed, c.State);
            // The static form too.
            using var cts2 = new CancellationTokenSource(200);
            e = await Assert.ThrowsAsync<VolleyRpcException>(() => VolleyClient.ConnectAsync($"ws://127.0.0.1:{port}/", T.Opts(), null, cts2.Token).WaitAsync(TimeSpan.FromSeconds(10)));
            Assert.Equal(ErrorCodes.Cancelled, e.Code);
        }
        finally
        {
            silent.Stop();
            foreach (var h in held) h.Dispose();
        }
    }

    [Fact]
    public async Task Handler_errors_go_to_the_log_hook()
    {
        var lines = new ConcurrentQueue<(VolleyLogLevel, string, Exception?)>();
        await using var _ = new Closer(await VolleyClient.ConnectAsync(_server.Url, T.Opts(tweak: o => o.Log = (l, m, e) => lines.Enqueue((l, m, e))),
            c => c.Handle<string>("boom", () => throw new InvalidOperationException("handler broke"))));
        var o = await _.Client.CallAsync<Dictionary<string, object?>>("callMe", "boom", Array.Empty<object>());
        Assert.Equal(ErrorCodes.Internal, o["code"]);
        Assert.True(await T.Until(() => lines.Count > 0), "nothing logged");
        Assert.Contains(lines, x => x.Item1 == VolleyLogLevel.Error && x.Item2.Contains("boom") && x.Item3?.Message == "handler broke");
    }

    /// <summary>A main thread as Unity runs it: posts queue up and run once per frame (16 ms).</summary>
    sealed class FramePump : SynchronizationContext, IDisposable
    {
        readonly ConcurrentQueue<(SendOrPostCallback, object?)> _queue = new();
        readonly Thread _thread;
        volatile bool _stop;
        public int ThreadId => _thread.ManagedThreadId;

        public FramePump()
        {
            _thread = new Thread(() =>
            {
                SetSynchronizationContext(this);
                while (!_stop)
                {
                    var n = _queue.Count; // this frame's work; what it posts runs next frame
                    while (n-- > 0 && _queue.TryDequeue(out var w)) w.Item1(w.Item2);
                    Thread.Sleep(16);
                }
            }) { IsBackground = true, Name = "frame-pump" };
            _thread.Start();
        }

        public override void Post(SendOrPostCallback d, object? state) => _queue.Enqueue((d, state));
        public Task<TR> Run<TR>(Func<TR> f)
        {
            var t = new TaskCompletionSource<TR>(TaskCreationOptions.RunContinuationsAsynchronously);
            Post(_ => { try { t.SetResult(f()); } catch (Exception e) { t.SetException(e); } }, null);
            return t.Task;
        }
        public void Dispose() => _stop = true;
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Callbacks_land_on_the_context_the_client_was_made_on_unless_told_not_to(bool capture)
    {
        using var main = new FramePump();
        var seen = new ConcurrentDictionary<string, int>();
        var noted = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        // Made on the "main thread", as a MonoBehaviour's Start would.
        var c = await main.Run(() =>
        {
            var client = new VolleyClient(_server.Url, T.Opts(tweak: o => o.CaptureContext = capture));
            client.Handle<int, int>("twice", x => { seen["handler"] = Environment.CurrentManagedThreadId; return 2 * x; });
            client.On<string>("note", _ => { seen["note"] = Environment.CurrentManagedThreadId; noted.TrySetResult(true); });
            client.StateChanged += st => { if (st == ConnectionState.Open) seen["event"] = Environment.CurrentManagedThreadId; };
            return client;
        });
        await using var _ = new Closer(c);
        await c.ConnectAsync();
        Assert.Equal(42L, (await c.CallAsync<Dictionary<string, object?>>("callMe", "twice", new object[] { 21 }))["value"]);
        await c.CallAsync<int>("notifyMe", "note", 1, "x");
        await noted.Task.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.True(await T.Until(() => seen.Count == 3), "not every callback ran: " + string.Join(",", seen.Keys));
        foreach (var kv in seen)
        {
            if (capture) Assert.True(kv.Value == main.ThreadId, $"{kv.Key} ran on thread {kv.Value}, not the main thread {main.ThreadId}");
            else Assert.True(kv.Value != main.ThreadId, $"{kv.Key} ran on the main thread with CaptureContext = false");
        }
    }

    /// <summary>A context that runs every Post at once on the thread pool, as xUnit's and ASP.NET's may.</summary>
    sealed class ConcurrentContext : SynchronizationContext
    {
        public override void Post(SendOrPostCallback d, object? state) => ThreadPool.QueueUserWorkItem(_ => d(state));
    }

    [Fact]
    public async Task Notifications_reach_their_handler_in_order_on_a_context_that_runs_posts_concurrently()
    {
        // Before: each callback was posted to the context on its own, and such a context ran
        // them out of order (kit case 4.2 saw note 2 before note 1 under xUnit's context).
        var got = new List<long>();
        var previous = SynchronizationContext.Current;
        SynchronizationContext.SetSynchronizationContext(new ConcurrentContext());
        VolleyClient c;
        try
        {
            c = new VolleyClient(_server.Url, T.Opts());
            c.On("note", args => { var n = (long)args[1]!; Thread.Sleep((int)(n % 3)); lock (got) got.Add(n); });
        }
        finally { SynchronizationContext.SetSynchronizationContext(previous); }
        await using var _ = new Closer(c);
        await c.ConnectAsync();
        Assert.Equal(300, await c.CallAsync<int>("notifyMe", "note", 300, "n"));
        Assert.True(await T.Until(() => { lock (got) return got.Count == 300; }), "not every note arrived");
        lock (got) Assert.Equal(Enumerable.Range(0, 300).Select(i => (long)i), got);
    }
}
