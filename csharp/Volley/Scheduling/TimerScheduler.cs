// The default scheduler everywhere but Unity WebGL players: System.Threading.Timer and the
// thread pool, as the client always used them.

#nullable enable
using System;
using System.Threading;

namespace Volley
{
    /// <summary>Timers on System.Threading.Timer, work on the thread pool. Stateless: one instance serves every client.</summary>
    public sealed class TimerScheduler : IVolleyScheduler
    {
        public static readonly TimerScheduler Instance = new TimerScheduler();

        public IVolleyTimer CreateTimer(Action callback) => new ThreadingTimer(callback);

        public void Post(Action work) => ThreadPool.QueueUserWorkItem(RunWork, work);

        static readonly WaitCallback RunWork = o => ((Action)o!)();

        sealed class ThreadingTimer : IVolleyTimer
        {
            static readonly TimerCallback Fire = o => ((Action)o!)();
            readonly Timer _timer;

            public ThreadingTimer(Action callback) => _timer = new Timer(Fire, callback, Timeout.Infinite, Timeout.Infinite);

            public void Change(TimeSpan due)
            {
                try
                {
                    if (due == Timeout.InfiniteTimeSpan) _timer.Change(Timeout.Infinite, Timeout.Infinite);
                    else _timer.Change((long)Math.Max(1, Math.Min(Math.Ceiling(due.TotalMilliseconds), uint.MaxValue - 2)), Timeout.Infinite);
                }
                catch (ObjectDisposedException) { }
            }

            public void Dispose() => _timer.Dispose();
        }
    }
}
