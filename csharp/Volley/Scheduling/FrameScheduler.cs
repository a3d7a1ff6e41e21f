// A scheduler pumped by the game's frame loop (as Nakama and Colyseus clients are): nothing
// runs until Update() (VolleyClient.Tick()), which runs the posted work and the timers that
// fell due, on the calling thread. The default on Unity WebGL players, where
// System.Threading.Timer never fires and there are no thread-pool threads.

#nullable enable
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Runtime.ExceptionServices;
using System.Threading;

namespace Volley
{
    /// <summary>
    /// Runs timers and posted work only inside <see cref="Update"/>, on the thread that calls it
    /// (call it every frame, e.g. through <see cref="VolleyClient.Tick"/> in a MonoBehaviour's
    /// Update). Timers may be armed from any thread. Timing is as fine as the frame rate.
    /// </summary>
    public sealed class FrameScheduler : IVolleyScheduler
    {
        readonly object _lock = new object();
        readonly HashSet<FrameTimer> _armed = new HashSet<FrameTimer>();
        List<Action> _posted = new List<Action>();
        List<Action> _running = new List<Action>();
        readonly List<FrameTimer> _due = new List<FrameTimer>();
        bool _updating;

        public IVolleyTimer CreateTimer(Action callback) => new FrameTimer(this, callback);

        public void Post(Action work)
        {
            lock (_lock) _posted.Add(work);
        }

        /// <summary>Armed timers (for tests and diagnostics).</summary>
        public int PendingTimers
        {
            get { lock (_lock) return _armed.Count; }
        }

        /// <summary>Run the posted work and the timers due by now. Not re-entrant (a nested call returns at once).</summary>
        public void Update()
        {
            ExceptionDispatchInfo? first = null;
            lock (_lock)
            {
                if (_updating) return;
                _updating = true;
                (_posted, _running) = (_running, _posted);
                var now = Stopwatch.GetTimestamp();
                foreach (var t in _armed)
                    if (t.DueAt <= now) _due.Add(t);
                foreach (var t in _due)
                {
                    _armed.Remove(t);
                    t.DueAt = long.MaxValue;
                }
            }
            try
            {
                // Callbacks run outside the lock; one that throws does not stop the others.
                foreach (var w in _running) Run(w, ref first);
                foreach (var t in _due)
                    if (!t.Disposed) Run(t.Callback, ref first);
            }
            finally
            {
                _running.Clear();
                lock (_lock)
                {
                    _due.Clear();
                    _updating = false;
                }
            }
            first?.Throw();
        }

        static void Run(Action a, ref ExceptionDispatchInfo? first)
        {
            try { a(); }
            catch (Exception e) { first ??= ExceptionDispatchInfo.Capture(e); }
        }

        void Arm(FrameTimer t, TimeSpan due)
        {
            lock (_lock)
            {
                if (t.Disposed || due == Timeout.InfiniteTimeSpan)
                {
                    t.DueAt = long.MaxValue;
                    _armed.Remove(t);
                    return;
                }
                var ticks = (long)(Math.Max(0, due.TotalSeconds) * Stopwatch.Frequency);
                t.DueAt = Stopwatch.GetTimestamp() + ticks;
                _armed.Add(t);
            }
        }

        sealed class FrameTimer : IVolleyTimer
        {
            readonly FrameScheduler _owner;
            public readonly Action Callback;
            public long DueAt = long.MaxValue;
            public bool Disposed;

            public FrameTimer(FrameScheduler owner, Action callback)
            {
                _owner = owner;
                Callback = callback;
            }

            public void Change(TimeSpan due) => _owner.Arm(this, due);

            public void Dispose()
            {
                lock (_owner._lock) Disposed = true;
                _owner.Arm(this, Timeout.InfiniteTimeSpan);
            }
        }
    }
}
