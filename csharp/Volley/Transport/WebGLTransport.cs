// The WebGL transport's C# half: Unity WebGL players have no sockets and no threads, so the
// socket is the page's WebSocket (Plugins/WebGL/VolleyWebSocket.jslib), called through
// DllImport("__Internal"), answering through static callbacks (IL2CPP needs them static and
// marked MonoPInvokeCallback). Everything runs on the page's (the player's) main thread.
// Compiled only for WebGL players; the JavaScript half is tested in Chromium against a real
// server (test/webgl-transport.test.ts), this half only compiled (scripts/check-upm.ts).

#nullable enable
#if UNITY_WEBGL && !UNITY_EDITOR
using System;
using System.Collections.Generic;
using System.Runtime.InteropServices;
using System.Threading;
using System.Threading.Tasks;

namespace AOT
{
    /// <summary>IL2CPP recognises this attribute by name: the method is called from native (here JavaScript) code.</summary>
    [AttributeUsage(AttributeTargets.Method)]
    internal sealed class MonoPInvokeCallbackAttribute : Attribute
    {
        public MonoPInvokeCallbackAttribute(Type type) { }
    }
}

namespace Volley.Transport
{
    public sealed class WebGLTransport : IVolleyTransport
    {
        delegate void OpenCallback(int id);
        delegate void MessageCallback(int id, IntPtr data, int length, int isText);
        delegate void CloseCallback(int id, int code, IntPtr reason);

        [DllImport("__Internal")] static extern void VolleyWs_Init(OpenCallback onOpen, MessageCallback onMessage, CloseCallback onClose);
        [DllImport("__Internal")] static extern int VolleyWs_Connect(string url, string protocols);
        [DllImport("__Internal")] static extern int VolleyWs_Send(int id, IntPtr data, int length);
        [DllImport("__Internal")] static extern void VolleyWs_Close(int id, int code, string reason);
        [DllImport("__Internal")] static extern void VolleyWs_Abort(int id);

        static readonly Dictionary<int, WebGLTransport> Live = new Dictionary<int, WebGLTransport>();
        static bool _initialized;

        int _id;
        int _maxMessageBytes = int.MaxValue;
        /// <summary>The page's socket exists (until its onClose).</summary>
        bool _jsLive;
        bool _open;
        /// <summary>Closed was raised (or the connect failed): nothing more is delivered.</summary>
        bool _raised;
        byte[] _buffer = new byte[64 * 1024];
        TaskCompletionSource<bool>? _connecting;

        public bool ReadsHttpStatus => false;
        public event Action<ArraySegment<byte>>? Message;
        public event Action<TransportClosed>? Closed;

        public Task ConnectAsync(Uri url, TransportConnectOptions options, CancellationToken cancellationToken)
        {
            if (!_initialized)
            {
                VolleyWs_Init(OnOpen, OnMessage, OnClose);
                _initialized = true;
            }
            _maxMessageBytes = options.MaxMessageBytes;
            _connecting = new TaskCompletionSource<bool>();
            _id = VolleyWs_Connect(url.AbsoluteUri, string.Join(" ", options.Subprotocols));
            _jsLive = true;
            Live[_id] = this;
            if (cancellationToken.CanBeCanceled)
                cancellationToken.Register(() => { if (!_open) Abort(); });
            return _connecting.Task;
        }

        public Task SendAsync(ArraySegment<byte> message, CancellationToken cancellationToken)
        {
            var handle = GCHandle.Alloc(message.Array, GCHandleType.Pinned);
            int r;
            try
            {
                r = VolleyWs_Send(_id, IntPtr.Add(handle.AddrOfPinnedObject(), message.Offset), message.Count);
            }
            finally
            {
                handle.Free();
            }
            return r == 0 ? Task.CompletedTask : Task.FromException(new InvalidOperationException("the WebSocket is not open"));
        }

        public Task CloseAsync(int code, string reason, CancellationToken cancellationToken)
        {
            if (_jsLive) VolleyWs_Close(_id, code, reason);
            return Task.CompletedTask;
        }

        /// <summary>Cuts the page's socket; its onClose (1006) follows synchronously.</summary>
        public void Abort()
        {
            if (_jsLive) VolleyWs_Abort(_id);
        }

        public void Dispose() => Abort();

        [AOT.MonoPInvokeCallback(typeof(OpenCallback))]
        static void OnOpen(int id)
        {
            if (!Live.TryGetValue(id, out var t)) return;
            t._open = true;
            t._connecting?.TrySetResult(true);
        }

        [AOT.MonoPInvokeCallback(typeof(MessageCallback))]
        static void OnMessage(int id, IntPtr data, int length, int isText)
        {
            if (!Live.TryGetValue(id, out var t) || t._raised) return;
            if (isText != 0)
            {
                t.Raise(new TransportClosed(CloseCodes.ProtocolError, "", violation: "text frames are not part of the protocol"));
                return;
            }
            if (length > t._maxMessageBytes)
            {
                t.Raise(new TransportClosed(CloseCodes.MessageTooBig, "", violation: $"message over {t._maxMessageBytes} bytes"));
                return;
            }
            if (length > t._buffer.Length) t._buffer = new byte[Math.Max(length, t._buffer.Length * 2)];
            Marshal.Copy(data, t._buffer, 0, length);
            try
            {
                t.Message?.Invoke(new ArraySegment<byte>(t._buffer, 0, length));
            }
            catch (Exception e)
            {
                // Nothing may escape into the browser's event loop: end the socket as a failure.
                t.Raise(new TransportClosed(CloseCodes.Abnormal, e.Message, e));
                t.Abort();
            }
        }

        [AOT.MonoPInvokeCallback(typeof(CloseCallback))]
        static void OnClose(int id, int code, IntPtr reasonPtr)
        {
            if (!Live.TryGetValue(id, out var t)) return;
            Live.Remove(id);
            t._jsLive = false;
            var reason = Utf8(reasonPtr);
            if (!t._open)
            {
                // Browsers show a refused or failed upgrade only as 1006 before open.
                t._raised = true;
                t._connecting?.TrySetException(new InvalidOperationException($"WebSocket connection failed (close {code}{(reason.Length > 0 ? ": " + reason : "")})"));
                return;
            }
            t.Raise(new TransportClosed(code, reason, code == CloseCodes.Abnormal ? new InvalidOperationException("the WebSocket closed abnormally: " + reason) : null));
        }

        void Raise(TransportClosed c)
        {
            if (_raised) return;
            _raised = true;
            Closed?.Invoke(c);
        }

        static string Utf8(IntPtr p)
        {
            if (p == IntPtr.Zero) return "";
            var n = 0;
            while (Marshal.ReadByte(p, n) != 0) n++;
            var bytes = new byte[n];
            Marshal.Copy(p, bytes, 0, n);
            return System.Text.Encoding.UTF8.GetString(bytes);
        }
    }
}
#endif
