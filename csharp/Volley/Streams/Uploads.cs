// Uploads (SPEC §12, "Uploads"): the caller's record of one call's uploads (what it passed,
// who reads them), and the callee's readers: what a handler finds in an upload's place. The
// logic lives in VolleyClient.Uploads.cs.

#nullable enable
using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;

namespace Volley.Streams
{
    /// <summary>The caller's side of one call's uploads, until the call settles.</summary>
    internal sealed class Uploads
    {
        public readonly PendingCall Call;
        public readonly string Method;
        /// <summary>By param index; each removed when it is read (an upload is read once).</summary>
        public readonly Dictionary<int, IItemSource> Sources;
        /// <summary>The <c>$upload</c> calls being answered (their producers).</summary>
        public readonly List<VolleyCall> Serving = new List<VolleyCall>();

        public Uploads(PendingCall call, string method, Dictionary<int, IItemSource> sources)
        {
            Call = call;
            Method = method;
            Sources = sources;
        }
    }

    /// <summary>The uploads one call's handler may read, and the reads it opened: given up when the call ends.</summary>
    internal sealed class UploadReads
    {
        readonly object _gate = new object();
        readonly VolleyClient _client;
        readonly VolleyCall _call;
        readonly List<int> _opened = new List<int>();
        readonly List<StreamCall> _open = new List<StreamCall>();
        bool _closed;

        public UploadReads(VolleyClient client, VolleyCall call)
        {
            _client = client;
            _call = call;
        }

        public IAsyncEnumerator<T> Open<T>(int index, CancellationToken cancellationToken)
        {
            lock (_gate)
            {
                if (_closed) return new Failing<T>(Ended());
                if (_opened.Contains(index))
                    return new Failing<T>(new VolleyRpcException(ErrorCodes.InvalidParams, "an upload is read once"));
                _opened.Add(index);
            }
            // Read as a stream of the caller's: $upload [callId, index]. The call's token ($cancel,
            // the session's end, the handler deadline) stops it.
            var reader = new StreamReader<T>(_client, VolleyClient.UploadMethod, new object?[] { (long)_call.Id, (long)index },
                Timeout.InfiniteTimeSpan, _call.CancellationToken, cancellationToken);
            bool closed;
            lock (_gate)
            {
                closed = _closed;
                if (!closed) _open.Add(reader.Call);
            }
            if (closed) _client.StopStream(reader.Call, Ended());
            return reader;
        }

        VolleyRpcException Ended() => new VolleyRpcException(ErrorCodes.Cancelled, $"{_call.Method} has ended, its uploads with it");

        /// <summary>The call ended: the reads still open are given up (<c>$cancel</c>: the caller's producer stops).</summary>
        public void Close()
        {
            StreamCall[] open;
            lock (_gate)
            {
                if (_closed) return;
                _closed = true;
                open = _open.ToArray();
                _open.Clear();
            }
            foreach (var s in open) _client.StopStream(s, Ended());
        }
    }

    /// <summary>
    /// What a handler finds in an upload's place (SPEC §12): read it with <c>await foreach</c>,
    /// once, before the handler returns. It is an <c>IAsyncEnumerable</c> of object (items as
    /// decoded), long, int, double, bool, string and byte[]; <see cref="Items{T}"/> (or
    /// <see cref="VolleyCall.Upload{T}(int)"/>) converts each item to any other type.
    /// </summary>
    public sealed class UploadReader : IAsyncEnumerable<object?>, IAsyncEnumerable<long>, IAsyncEnumerable<int>, IAsyncEnumerable<double>,
        IAsyncEnumerable<bool>, IAsyncEnumerable<string>, IAsyncEnumerable<byte[]>
    {
        readonly UploadReads _reads;
        readonly int _index;

        internal UploadReader(UploadReads reads, int index)
        {
            _reads = reads;
            _index = index;
        }

        /// <summary>The upload's items, each converted to <typeparamref name="T"/> (a value that does not convert fails the read INTERNAL).</summary>
        public IAsyncEnumerable<T> Items<T>() => new Of<T>(this);

        IAsyncEnumerator<object?> IAsyncEnumerable<object?>.GetAsyncEnumerator(CancellationToken ct) => _reads.Open<object?>(_index, ct);
        IAsyncEnumerator<long> IAsyncEnumerable<long>.GetAsyncEnumerator(CancellationToken ct) => _reads.Open<long>(_index, ct);
        IAsyncEnumerator<int> IAsyncEnumerable<int>.GetAsyncEnumerator(CancellationToken ct) => _reads.Open<int>(_index, ct);
        IAsyncEnumerator<double> IAsyncEnumerable<double>.GetAsyncEnumerator(CancellationToken ct) => _reads.Open<double>(_index, ct);
        IAsyncEnumerator<bool> IAsyncEnumerable<bool>.GetAsyncEnumerator(CancellationToken ct) => _reads.Open<bool>(_index, ct);
        IAsyncEnumerator<string> IAsyncEnumerable<string>.GetAsyncEnumerator(CancellationToken ct) => _reads.Open<string>(_index, ct);
        IAsyncEnumerator<byte[]> IAsyncEnumerable<byte[]>.GetAsyncEnumerator(CancellationToken ct) => _reads.Open<byte[]>(_index, ct);

        sealed class Of<T> : IAsyncEnumerable<T>
        {
            readonly UploadReader _r;
            public Of(UploadReader r) => _r = r;
            public IAsyncEnumerator<T> GetAsyncEnumerator(CancellationToken ct) => _r._reads.Open<T>(_r._index, ct);
        }
    }

    /// <summary>A read refused before it began (its call ended, or it was read already).</summary>
    internal sealed class Failing<T> : IAsyncEnumerator<T>
    {
        readonly VolleyRpcException _error;
        public Failing(VolleyRpcException error) => _error = error;
        public T Current => default!;
        public ValueTask<bool> MoveNextAsync() => new ValueTask<bool>(Task.FromException<bool>(_error));
        public ValueTask DisposeAsync() => default;
    }

    /// <summary>A handler's stream that reads uploads while it produces: they end when it does.</summary>
    internal sealed class ClosingSource : IItemSource
    {
        readonly IItemSource _source;
        readonly UploadReads _reads;

        public ClosingSource(IItemSource source, UploadReads reads)
        {
            _source = source;
            _reads = reads;
        }

        public IAsyncEnumerator<object?> Open(CancellationToken cancellationToken) => new Enumerator(_source.Open(cancellationToken), _reads);

        sealed class Enumerator : IAsyncEnumerator<object?>
        {
            readonly IAsyncEnumerator<object?> _e;
            readonly UploadReads _reads;

            public Enumerator(IAsyncEnumerator<object?> e, UploadReads reads)
            {
                _e = e;
                _reads = reads;
            }

            public object? Current => _e.Current;
            public ValueTask<bool> MoveNextAsync() => _e.MoveNextAsync();

            public async ValueTask DisposeAsync()
            {
                _reads.Close();
                await _e.DisposeAsync();
            }
        }
    }
}
