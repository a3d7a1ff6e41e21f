// The producer's side of a stream (SPEC §12): what a HandleStream handler returns, the
// credit count (items sent and not yet answered), the items waiting to go as one `$items`,
// and the item calls whose answers are the credit. The loop lives in VolleyClient.Streams.cs.

#nullable enable
using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;

namespace Volley.Streams
{
    /// <summary>A handler's stream with its item type erased, without reflection (AOT-safe).</summary>
    internal interface IItemSource
    {
        IAsyncEnumerator<object?> Open(CancellationToken cancellationToken);
    }

    internal sealed class ItemSource<T> : IItemSource
    {
        readonly IAsyncEnumerable<T> _items;

        public ItemSource(IAsyncEnumerable<T> items) => _items = items;

        public IAsyncEnumerator<object?> Open(CancellationToken cancellationToken)
        {
            var e = _items.GetAsyncEnumerator(cancellationToken);
            // A reference type's enumerator already is one of object (covariance): no wrapper.
            return e as IAsyncEnumerator<object?> ?? new Boxed(e);
        }

        sealed class Boxed : IAsyncEnumerator<object?>
        {
            readonly IAsyncEnumerator<T> _e;
            public Boxed(IAsyncEnumerator<T> e) => _e = e;
            public object? Current => _e.Current;
            public ValueTask<bool> MoveNextAsync() => _e.MoveNextAsync();
            public ValueTask DisposeAsync() => _e.DisposeAsync();
        }
    }

    /// <summary>One stream's credit: items sent and not yet answered, the first refusal, and the items waiting to go together.</summary>
    internal sealed class ItemProducer
    {
        readonly object _gate = new object();
        int _unanswered;
        TaskCompletionSource<bool>? _waiter;
        volatile VolleyRpcException? _failed;

        /// <summary>
        /// Items yielded without the enumerator suspending, not sent yet: they go as one
        /// <c>$items</c> before the producer awaits anything (only the producer's loop touches it).
        /// </summary>
        public readonly List<object?> Batch = new List<object?>();
        /// <summary>The server took the feature <c>items</c> when the stream began, and no batch of it broke the server's limits.</summary>
        public bool Batching;

        public int Unanswered => Volatile.Read(ref _unanswered);
        /// <summary>The reader refused an item (CANCELLED: it stopped; METHOD_NOT_FOUND: it has no streams), or the session ended: the stream ends with it.</summary>
        public VolleyRpcException? Failed => _failed;

        public void Sent(int items) => Interlocked.Add(ref _unanswered, items);

        public void Answered(Exception? error, int items)
        {
            if (error != null && _failed == null)
                _failed = error as VolleyRpcException ?? new VolleyRpcException(ErrorCodes.Internal, error.Message);
            Interlocked.Add(ref _unanswered, -items);
            Wake();
        }

        /// <summary>A task the next answer (or the call's token) completes: take it, check, then await it.</summary>
        public Task Arm()
        {
            lock (_gate) return (_waiter ??= new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
        }

        public void Wake()
        {
            TaskCompletionSource<bool>? w;
            lock (_gate)
            {
                w = _waiter;
                _waiter = null;
            }
            w?.TrySetResult(true);
        }
    }

    /// <summary>An <c>$item</c> or <c>$items</c> request of ours: its answer (or refusal) is the credit for its items.</summary>
    internal sealed class ItemCall : PendingCall
    {
        readonly ItemProducer _producer;
        readonly int _items;

        public ItemCall(ItemProducer producer, int items)
        {
            _producer = producer;
            _items = items;
        }

        public override Task Task => Task.CompletedTask;
        public override void Resolve(object? wire) => _producer.Answered(null, _items);
        public override void Reject(Exception e) => _producer.Answered(e, _items);
    }
}
