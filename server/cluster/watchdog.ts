// The stalled-Redis watchdog: while calls wait on other nodes (or Redis was found stalled),
// one PING at a time; one unanswered for STALL_MS of this node's own running time means
// Redis hangs (SIGSTOP, a partition with sockets open), and the calls waiting on it fail
// now instead of at their deadlines. A blocked event loop (a long GC, a starved CPU) is not
// taken for a stalled Redis: each tick counts one interval at most, the verdict waits until
// I/O has been polled, and a PING that timed out is sent again rather than judged.

/** A Redis that has not answered a probe for this long fails the calls waiting on other nodes. */
export const STALL_MS = 600;
/** How often the watchdog probes Redis while calls wait on other nodes. */
const PROBE_MS = 200;

export interface WatchdogLink {
  /** Redis is connected (the watchdog says nothing while it is not). */
  up(): boolean;
  /** Calls wait on other nodes, or run here for them. */
  busy(): boolean;
  ping(): Promise<unknown>;
  /** Redis stopped answering. */
  stalled(): void;
  /** It answers again. */
  recovered(): void;
}

export class Watchdog {
  #timer: ReturnType<typeof setInterval>;
  /** When the unanswered PING was sent (0: none out). */
  #since = 0;
  /** How long it has waited in this loop's running time. */
  #waited = 0;
  #lastTick = 0;
  #stalled = false;
  #stopped = false;

  constructor(readonly link: WatchdogLink) {
    this.#timer = setInterval(() => this.#tick(), PROBE_MS);
    this.#timer.unref?.();
  }

  /** Redis found stalled: remote calls fail at once until a PING comes back. */
  get stalled(): boolean {
    return this.#stalled;
  }

  stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
  }

  #tick(): void {
    if (this.#stopped || !this.link.up()) return;
    const now = Date.now();
    const elapsed = Math.min(now - this.#lastTick, PROBE_MS);
    this.#lastTick = now;
    if (this.#since) {
      this.#waited += elapsed;
      if (!this.#stalled && this.#waited >= STALL_MS) {
        // Timers run before the loop reads its sockets: the answer may be waiting unread.
        const since = this.#since;
        setImmediate(() => {
          if (this.#stopped || this.#stalled || this.#since !== since) return;
          this.#stalled = true;
          this.link.stalled();
        });
      }
      return;
    }
    if (!this.#stalled && !this.link.busy()) return;
    this.#waited = 0;
    this.#ping();
  }

  #ping(): void {
    const since = (this.#since = Date.now());
    this.link.ping().then(
      () => {
        if (this.#since !== since) return;
        this.#since = 0;
        if (this.#stalled) {
          this.#stalled = false;
          this.link.recovered();
        }
      },
      () => {
        if (this.#since !== since) return;
        if (!this.#stopped && this.link.up()) this.#ping();
        else this.#since = 0;
      },
    );
  }
}
