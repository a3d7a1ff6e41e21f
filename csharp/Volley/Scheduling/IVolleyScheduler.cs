// Where the client's time runs: call deadlines, handler deadlines, the connect timeout,
// heartbeats, reconnect backoff, the resume window and the waits of the close paths all go
// through one IVolleyScheduler. The default is System.Threading.Timer (TimerScheduler); Unity
// WebGL players have no timers that fire and no thread-pool threads, so there the default is
// a FrameScheduler that runs what is due when the game calls VolleyClient.Tick() each frame.

#nullable enable
using System;
using System.Threading;
using System.Threading.Tasks;

namespace Volley
{
    /// <summary>Makes timers and runs short work items for a client (see <see cref="VolleyClientOptions.Scheduler"/>).</summary>
    public interface IVolleyScheduler
    {
        /// <summary>A timer that runs <paramref name="callback"/> once each time it is armed and falls due. Made disarmed.</summary>
        IVolleyTimer CreateTimer(Action callback);

        /// <summary>Run <paramref name="work"/> soon, not on the caller's stack.</summary>
        void Post(Action work);
    }

    /// <summary>A one-shot, re-armable timer. Dispose disarms it for good.</summary>
    public interface IVolleyTimer : IDisposable
    {
        /// <summary>Fire once after <paramref name="due"/> (re-arming replaces the previous due time); <see cref="Timeout.InfiniteTimeSpan"/> disarms.</summary>
        void Change(TimeSpan due);
    }

    internal static class SchedulerExtensions
    {
        /// <summary>Run <paramref name="callback"/> once after <paramref name="due"/>; dispose the result to cancel.</summary>
        public static IVolleyTimer Schedule(this IVolleyScheduler s, TimeSpan due, Action callback)
        {
            var t = s.CreateTimer(callback);
            t.Change(due);
            return t;
        }

        /// <summary>Task.WhenAny(task, Task.Delay(due)) on this scheduler (Task.Delay never completes on WebGL); the timer is disarmed when the task wins.</summary>
        public static async Task WithTimeout(this IVolleyScheduler s, Task task, TimeSpan due)
        {
            var expired = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            using (s.Schedule(due, () => expired.TrySetResult(true)))
                await Task.WhenAny(task, expired.Task).ConfigureAwait(false);
        }
    }
}
