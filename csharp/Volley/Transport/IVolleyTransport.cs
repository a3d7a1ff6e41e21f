// The socket under VolleyClient, as small as the client needs it: connect with sub-protocols
// (and headers where the platform can send them), send one binary message, close with a code,
// and two events, message and closed. ClientWebSocketTransport is the default; on Unity WebGL
// the default is WebGLTransport (the page's WebSocket through a .jslib). A game may pass its
// own through VolleyClientOptions.Transport.

#nullable enable
using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;

namespace Volley.Transport
{
    /// <summary>One WebSocket connection carrying binary messages. Used by one client for one socket, then disposed.</summary>
    public interface IVolleyTransport : IDisposable
    {
        /// <summary>
        /// False where the platform cannot read the HTTP status of a refused upgrade nor send
        /// headers (browsers): the client then offers the <c>volley</c> sub-protocol, so refusals
        /// arrive as close codes 4401/4409/4503, and sends a header token as a sub-protocol.
        /// </summary>
        bool ReadsHttpStatus { get; }

        /// <summary>A whole binary message arrived. The bytes are only valid during the call (offset 0). Raised one at a time.</summary>
        event Action<ArraySegment<byte>>? Message;

        /// <summary>The connection ended after it opened (raised once, after the last <see cref="Message"/>).</summary>
        event Action<TransportClosed>? Closed;

        /// <summary>Opens the socket; faults if it can't (the exception's message may carry the HTTP status).</summary>
        Task ConnectAsync(Uri url, TransportConnectOptions options, CancellationToken cancellationToken);

        /// <summary>Sends one binary message; the bytes may be reused once the task completes. One send at a time.</summary>
        Task SendAsync(ArraySegment<byte> message, CancellationToken cancellationToken);

        /// <summary>Sends the close frame (the peer's answer, or a timeout, ends the socket with <see cref="Closed"/>).</summary>
        Task CloseAsync(int code, string reason, CancellationToken cancellationToken);

        /// <summary>Cuts the connection without a close handshake.</summary>
        void Abort();
    }

    /// <summary>What a socket is opened with.</summary>
    public sealed class TransportConnectOptions
    {
        public IReadOnlyList<string> Subprotocols = Array.Empty<string>();
        /// <summary>Request headers (never set when <see cref="IVolleyTransport.ReadsHttpStatus"/> is false).</summary>
        public IReadOnlyDictionary<string, string> Headers = new Dictionary<string, string>();
        /// <summary>A message longer than this ends the socket with a violation (1009) instead of being assembled.</summary>
        public int MaxMessageBytes = int.MaxValue;
    }

    /// <summary>How a socket ended.</summary>
    public readonly struct TransportClosed
    {
        public TransportClosed(int code, string reason, Exception? error = null, string? violation = null)
        {
            Code = code;
            Reason = reason;
            Error = error;
            Violation = violation;
        }

        /// <summary>The close code (1005 when the frame had none, 1006 when there was no close frame).</summary>
        public int Code { get; }
        public string Reason { get; }
        /// <summary>The failure that ended it, if it did not end with a close frame.</summary>
        public Exception? Error { get; }
        /// <summary>
        /// Set when the transport saw the peer break the protocol (a text message, a message over
        /// <see cref="TransportConnectOptions.MaxMessageBytes"/>); <see cref="Code"/> is the close code
        /// to answer with. The socket is still open: the client closes it.
        /// </summary>
        public string? Violation { get; }
    }
}
