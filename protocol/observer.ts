// What the call engine reports for observability (metrics, traces), and nothing else:
// the engine stays free of I/O and of any metrics library. A peer without an observer
// pays one undefined check per hook.

/** Hooks the call engine calls for metrics and traces (the server's `observe`); each is optional. */
export interface PeerObserver<C> {
  /**
   * A request from the other side got its answer: `code` null for a result, else the
   * error code sent (or CANCELLED / DISCONNECTED when no answer will be sent). `ctx` is
   * undefined when the request was refused before a handler context existed.
   */
  served(method: string, code: string | null, ctx: C | undefined): void;
  /** An outgoing notification was dropped (transport congested or detached). */
  dropped(): void;
  /**
   * One item of a stream (SPEC §12) was sent (`sent`) or taken by its reader. `served`: the
   * stream belongs to a call of the peer's to `method` here (a handler's result, an upload its
   * handler reads), and `ctx` is that call (its span notes `count`, the items so far); else
   * to a call this side made to `method` (a stream it reads, an upload it sends).
   */
  streamItem?(method: string, served: boolean, sent: boolean, ctx: C | undefined, count: number): void;
}
