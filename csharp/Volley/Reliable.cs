// Exactly-once by sequence (DECISIONS B): each side numbers the reliable messages it sends
// (requests and responses) 1, 2, 3… across sockets and keeps each one until the peer's
// `$ack [n]` says it has n of them. On a resumed socket the kept ones past n are re-sent in
// order, so nothing is lost and (the peer counting what it processed) nothing repeats.

#nullable enable
using System.Collections.Generic;

namespace Volley
{
    internal struct KeptMessage
    {
        public long Seq;
        public byte[] Bytes;
        /// <summary>The call this request started (null for a response): if given up, a $cancel follows the re-send.</summary>
        public PendingCall? Call;
    }

    /// <summary>Sent reliable messages not yet acknowledged. Not thread-safe: the client's lock guards it.</summary>
    internal sealed class KeptMessages
    {
        // A queue of structs: nothing allocated per message once it has grown to the window.
        readonly Queue<KeptMessage> _list = new Queue<KeptMessage>();

        /// <summary>Reliable messages numbered so far in this session (the last seq used).</summary>
        public long Sent { get; private set; }
        /// <summary>The highest count the peer acknowledged.</summary>
        public long Acked { get; private set; }
        public long Bytes { get; private set; }
        public int Count => _list.Count;

        public KeptMessage Add(byte[] bytes, PendingCall? call)
        {
            var m = new KeptMessage { Seq = ++Sent, Bytes = bytes, Call = call };
            _list.Enqueue(m);
            Bytes += bytes.Length;
            return m;
        }

        /// <summary>Peer has the first n. Returns false if n is more than was ever sent (a broken peer).</summary>
        public bool Ack(long n)
        {
            if (n > Sent) return false;
            if (n <= Acked) return true; // acks never decrease; an old one changes nothing
            Acked = n;
            while (_list.Count > 0 && _list.Peek().Seq <= n) Bytes -= _list.Dequeue().Bytes.Length;
            return true;
        }

        public IEnumerable<KeptMessage> Unacked => _list;

        /// <summary>A new session: numbering starts again at 1.</summary>
        public void Reset()
        {
            _list.Clear();
            Sent = 0;
            Acked = 0;
            Bytes = 0;
        }
    }
}
