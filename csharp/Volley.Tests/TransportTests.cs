// The client over a transport other than the default, against a real server: one that
// behaves as WebGLTransport does (it can read no HTTP status and send no header), wrapping
// ClientWebSocketTransport. So the client side of the WebGL path runs here: the `volley`
// sub-protocol offer, refusals as close codes, the header token as a sub-protocol, a
// transport per attempt through a reconnect.

using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using Volley.Transport;
using Xunit;

namespace Volley.Tests;

public class TransportTests : IClassFixture<OwnServerFixture>
{
    readonly NodeServer _server;
    public TransportTests(OwnServerFixture f) => _server = f.Server;

    sealed class BrowserLike : IVolleyTransport
    {
        readonly ClientWebSocketTransport _inner = new ClientWebSocketTransport();
        public readonly List<string> Offered = new List<string>();
        public int Messages;

        public BrowserLike() => _inner.Message += _ => Interlocked.Increment(ref Messages);
        public bool ReadsHttpStatus => false;
        public event Action<ArraySegment<byte>>? Message { add => _inner.Message += value; remove => _inner.Message -= value; }
        public event Action<TransportClosed>? Closed { add => _inner.Closed += value; remove => _inner.Closed -= value; }

        public Task ConnectAsync(Uri url, TransportConnectOptions options, CancellationToken cancellationToken)
        {
            if (options.Headers.Count > 0) throw new InvalidOperationException("a browser cannot send headers");
            Offered.AddRange(options.Subprotocols);
            return _inner.ConnectAsync(url, options, cancellationToken);
        }

        public Task SendAsync(ArraySegment<byte> message, CancellationToken cancellationToken) => _inner.SendAsync(message, cancellationToken);
        public Task CloseAsync(int code, string reason, CancellationToken cancellationToken) => _inner.CloseAsync(code, reason, cancellationToken);
        public void Abort() => _inner.Abort();
        public void Dispose() => _inner.Dispose();
    }

    [Fact]
    public async Task Where_no_HTTP_status_can_be_read_a_refused_login_is_REFUSED_with_close_4401()
    {
        var made = new List<BrowserLike>();
        var e = await Assert.ThrowsAsync<VolleyRpcException>(() => VolleyClient.ConnectAsync(_server.Url,
            T.Opts("bad token!", o => o.Transport = () => { var t = new BrowserLike(); made.Add(t); return t; })));
        Assert.Equal(ErrorCodes.Refused, e.Code);
        Assert.Equal(4401L, ((Dictionary<string, object?>)e.ErrorData!)["closeCode"]);
        Assert.Equal(new[] { "volley" }, Assert.Single(made).Offered);
    }

    [Fact]
    public async Task A_header_token_goes_as_the_volley_token_subprotocol_and_calls_flow_through_the_transport()
    {
        var uid = T.Uid();
        var made = new List<BrowserLike>();
        var c = await VolleyClient.ConnectAsync(_server.Url, T.Opts(uid, o =>
        {
            o.TokenIn = TokenTransport.Header;
            o.Transport = () => { var t = new BrowserLike(); lock (made) made.Add(t); return t; };
        }));
        try
        {
            Assert.Equal(uid, (await c.CallAsync<Dictionary<string, object?>>("whoami"))["uid"]);
            Assert.Equal(new[] { "volley", "volley.token." + uid }, made[0].Offered);
            var big = new string('x', 300_000);
            Assert.Equal(big, await c.CallAsync<string>("echo", big));
            Assert.True(made[0].Messages >= 3, $"{made[0].Messages} messages through the transport");

            // A cut: the client resumes on a new transport from the same factory.
            var resumed = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            c.SessionOpened += r => { if (r) resumed.TrySetResult(true); };
            c.Drop();
            Assert.Same(resumed.Task, await Task.WhenAny(resumed.Task, Task.Delay(10_000)));
            Assert.Equal(2, made.Count);
            Assert.Equal(42L, await c.CallAsync<long>("add", 40, 2));
        }
        finally
        {
            await c.CloseAsync();
        }
    }

    /// <summary>
    /// A WebSocket peer on a raw TCP socket that reads nothing after the upgrade (so the
    /// client's big send stalls) and then sends a close frame: the client's close answer
    /// queues behind the stalled send, and only the close-answer timeout ends the socket.
    /// </summary>
    static async Task<(ClientWebSocketTransport t, TaskCompletionSource<long> closedAtMs, Stopwatch sw, TcpClient peer, TcpListener l)> StalledClose(IVolleyScheduler scheduler)
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Server.ReceiveBufferSize = 4096; // inherited by the accepted socket: the send stalls sooner
        l.Start();
        var accepted = l.AcceptTcpClientAsync();
        var t = new ClientWebSocketTransport(null, scheduler);
        var sw = new Stopwatch();
        var closedAtMs = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
        t.Closed += _ => closedAtMs.TrySetResult(sw.ElapsedMilliseconds);
        var connecting = t.ConnectAsync(new Uri($"ws://127.0.0.1:{((IPEndPoint)l.LocalEndpoint).Port}/"), new TransportConnectOptions(), CancellationToken.None);
        var peer = await accepted;
        var stream = peer.GetStream();
        var request = new StringBuilder();
        var buf = new byte[1];
        while (!request.ToString().EndsWith("\r\n\r\n") && await stream.ReadAsync(buf) == 1) request.Append((char)buf[0]);
        var key = System.Text.RegularExpressions.Regex.Match(request.ToString(), @"Sec-WebSocket-Key: *(\S+)", System.Text.RegularExpressions.RegexOptions.IgnoreCase).Groups[1].Value;
        var accept = Convert.ToBase64String(SHA1.HashData(Encoding.ASCII.GetBytes(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")));
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"));
        await connecting;
        var send = t.SendAsync(new ArraySegment<byte>(new byte[64 * 1024 * 1024]), CancellationToken.None);
        await Task.Delay(300);
        Assert.False(send.IsCompleted, "the 64 MB send did not stall");
        _ = send.ContinueWith(_ => { }, TaskScheduler.Default); // it fails when the socket goes
        sw.Start();
        await stream.WriteAsync(new byte[] { 0x88, 0x02, 0x03, 0xE8 }); // close 1000
        return (t, closedAtMs, sw, peer, l);
    }

    [Fact]
    public async Task The_wait_for_the_close_answer_runs_on_the_clients_scheduler()
    {
        // On a FrameScheduler no tick means no time: the socket stays until the game ticks.
        var frames = new FrameScheduler();
        var (t, closedAt, sw, peer, l) = await StalledClose(frames);
        using (peer) using (t)
        {
            var early = await Task.WhenAny(closedAt.Task, Task.Delay(2500));
            Assert.True(early != closedAt.Task, $"closed {(early == closedAt.Task ? closedAt.Task.Result : 0)} ms after the close frame without a tick");
            frames.Update();
            Assert.Same(closedAt.Task, await Task.WhenAny(closedAt.Task, Task.Delay(5000)));
            // Past the 2.5 s waited without a tick (not the 1 s the timers would give); Task.Delay
            // may end a millisecond before the stopwatch says 2,500 (2,499 seen in CI).
            Assert.InRange(closedAt.Task.Result, 2000, 8000);
        }
        l.Stop();

        // On the default TimerScheduler it gives up after about a second, as it always did.
        var (t2, closedAt2, _, peer2, l2) = await StalledClose(TimerScheduler.Instance);
        using (peer2) using (t2)
        {
            Assert.Same(closedAt2.Task, await Task.WhenAny(closedAt2.Task, Task.Delay(10_000)));
            Assert.InRange(closedAt2.Task.Result, 900, 10_000);
        }
        l2.Stop();
    }
}
