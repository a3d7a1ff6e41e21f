// The default transport: System.Net.WebSockets.ClientWebSocket (.NET, Mono, IL2CPP players
// other than WebGL). Reads in 64 KiB chunks and assembles a message only up to the limit.

#nullable enable
using System;
using System.Net.WebSockets;
using System.Threading;
using System.Threading.Tasks;

namespace Volley.Transport
{
    public sealed class ClientWebSocketTransport : IVolleyTransport
    {
        /// <summary>How long the answer to the server's close frame may take before the socket is cut.</summary>
        static readonly TimeSpan CloseAnswerTimeout = TimeSpan.FromSeconds(1);

        readonly ClientWebSocket _ws = new ClientWebSocket();
        readonly IVolleyScheduler _scheduler;
        int _maxMessageBytes = int.MaxValue;
        int _closed;

        /// <param name="configure">Last chance to set proxy, certificates, extra headers (VolleyClientOptions.ConfigureSocket).</param>
        /// <param name="scheduler">Where its timeout runs (the client passes its own, VolleyClientOptions.Scheduler); default <see cref="TimerScheduler"/>.</param>
        public ClientWebSocketTransport(Action<ClientWebSocketOptions>? configure = null, IVolleyScheduler? scheduler = null)
        {
            _scheduler = scheduler ?? TimerScheduler.Instance;
            configure?.Invoke(_ws.Options);
        }

        public bool ReadsHttpStatus => true;
        public event Action<ArraySegment<byte>>? Message;
        public event Action<TransportClosed>? Closed;

        public async Task ConnectAsync(Uri url, TransportConnectOptions options, CancellationToken cancellationToken)
        {
            foreach (var p in options.Subprotocols) _ws.Options.AddSubProtocol(p);
            foreach (var h in options.Headers) _ws.Options.SetRequestHeader(h.Key, h.Value);
            _maxMessageBytes = options.MaxMessageBytes;
            await _ws.ConnectAsync(url, cancellationToken).ConfigureAwait(false);
            _ = ReceiveLoopAsync();
        }

        public Task SendAsync(ArraySegment<byte> message, CancellationToken cancellationToken) =>
            _ws.SendAsync(message, WebSocketMessageType.Binary, true, cancellationToken);

        public Task CloseAsync(int code, string reason, CancellationToken cancellationToken) =>
            _ws.CloseOutputAsync((WebSocketCloseStatus)code, reason, cancellationToken);

        public void Abort() => _ws.Abort();

        public void Dispose() => _ws.Dispose();

        void End(TransportClosed c)
        {
            if (Interlocked.Exchange(ref _closed, 1) == 0) Closed?.Invoke(c);
        }

        async Task ReceiveLoopAsync()
        {
            var chunk = new byte[64 * 1024];
            var msg = new byte[64 * 1024];
            var len = 0;
            try
            {
                while (true)
                {
                    // The Memory overload: a ValueTask and a struct result, nothing allocated per read.
                    var r = await _ws.ReceiveAsync(chunk.AsMemory(), CancellationToken.None).ConfigureAwait(false);
                    if (r.MessageType == WebSocketMessageType.Close)
                    {
                        var code = (int?)_ws.CloseStatus ?? 1005;
                        var reason = _ws.CloseStatusDescription ?? "";
                        try
                        {
                            // The client's scheduler times the answer, as all of its time (a
                            // FrameScheduler only in Tick): a stalled send can't hold the socket.
                            using var giveUp = new CancellationTokenSource();
                            using (_scheduler.Schedule(CloseAnswerTimeout, giveUp.Cancel))
                                if (_ws.State == WebSocketState.CloseReceived) await _ws.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "", giveUp.Token).ConfigureAwait(false);
                        }
                        catch (Exception) { }
                        End(new TransportClosed(code, reason));
                        return;
                    }
                    if (len + r.Count > _maxMessageBytes)
                    {
                        End(new TransportClosed(CloseCodes.MessageTooBig, "", violation: $"message over {_maxMessageBytes} bytes"));
                        return;
                    }
                    if (len + r.Count > msg.Length) Array.Resize(ref msg, Math.Max(msg.Length * 2, len + r.Count));
                    Buffer.BlockCopy(chunk, 0, msg, len, r.Count);
                    len += r.Count;
                    if (!r.EndOfMessage) continue;
                    if (r.MessageType == WebSocketMessageType.Text)
                    {
                        End(new TransportClosed(CloseCodes.ProtocolError, "", violation: "text frames are not part of the protocol"));
                        return;
                    }
                    var n = len;
                    len = 0;
                    if (Volatile.Read(ref _closed) != 0) return;
                    Message?.Invoke(new ArraySegment<byte>(msg, 0, n));
                }
            }
            catch (Exception e)
            {
                End(new TransportClosed(CloseCodes.Abnormal, e.Message, e));
            }
        }
    }
}
