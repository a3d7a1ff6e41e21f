// Exactly-once by sequence (DECISIONS B): each side numbers the reliable messages it sends
// (requests and responses) 1, 2, 3… across sockets and keeps each one until the peer's
// `$ack [n]` says it has n of them. On a resumed socket the kept ones past n are re-sent in
// order, so nothing is lost and (the peer counting what it processed) nothing repeats.

#nullable enable
using System.Collections.Generic;

namespace Volley
{
    internal sealed class KeptMessage
    {
        public long Seq;
        public byte[] Bytes = System.Array.Empty<byte>();
        /// <summary>The call this request started (null for a response): if given up, a $cancel follows the re-send.</summary>
        public PendingCall? Call;
    }

    /// <summary>Sent reliable messages not yet acknowledged. Not thread-safe: the client's lock guards it.</summary>
    internal sealed class KeptMessages
    {
        readonly LinkedList<KeptMessage> _list = new LinkedList<KeptMessage>();

        /// <summary>Reliable messages numbered so far in this session (the last seq used).</summary>
        public long Sent { get; private set; }
        /// <summary>The highest count the peer acknowledged.</summary>
        public long Acked { get; private set; }
        public long Bytes { get; private set; }
        public int Count => _list.Count;

        public KeptMessage Add(byte[] bytes, PendingCall? call)
        {
            var m = new KeptMessage { Seq = ++Sent, Bytes = bytes, Call = call };
            _list.AddLast(m);
            Bytes += bytes.Length;
            return m;
        }

        /// <summary>Peer has the first n. Returns false if n is more than was ever sent (a broken peer).</summary>
        public bool Ack(long n)
        {
            if (n > Sent) return false;
            if (n <= Acked) return true; // acks never decrease; an old one changes nothing
            Acked = n;
            while (_list.First != null && _list.First.Value.Seq <= n)
            {
                Bytes -= _list.First.Value.Bytes.Length;
                _list.RemoveFirst();
            }
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
