// Streams from a player on another node (SPEC §12 across the cluster): `server.stream(uid, …)`
// where uid is held elsewhere. The holder reads the player's stream as a local reader and
// forwards each item (ITEM); the caller's node hands them to its reader and returns a
// credit for each one taken (CREDIT), so at most STREAM_WINDOW items are between the nodes
// and a slow reader slows the player; END closes it (or carries its error); CANCEL (the
// reader stopped) stops the player's generator through the holder's `$cancel`.

import { ErrorCode, RpcError, STREAM_WINDOW, type CallOptions, type WireError } from '../../protocol/index.ts';
import type { LocalNode } from '../adapter.ts';
import { STREAM_CANCEL, STREAM_CREDIT, STREAM_END, STREAM_ITEM, STREAM_OPEN, pack } from './wire.ts';

export interface StreamLink {
  readonly nodeId: string;
  /** To a node, in order with everything else to it; `delivered` learns how many received it (0: gone). */
  send(node: string, message: Buffer, delivered?: (receivers: number) => void): void;
  /** The node Redis says holds uid ('' when none). */
  locate(uid: string): Promise<string>;
}

/** The caller's side of one stream. */
interface Reader {
  node: string;
  items: unknown[];
  ended: boolean;
  error: RpcError | undefined;
  wake: (() => void) | undefined;
}

/** The holder's side: the player's stream being read for another node. */
interface Serving {
  credits: number;
  stopped: boolean;
  wake: (() => void) | undefined;
  stop: (() => void) | undefined;
}

const unavailable = (msg: string) => new RpcError(ErrorCode.UNAVAILABLE, msg);

export class RemoteStreams {
  #next = 0;
  #reading = new Map<number, Reader>();
  #serving = new Map<string, Serving>();

  constructor(
    readonly link: StreamLink,
    readonly local: LocalNode,
  ) {}

  /** Streams this node reads from players elsewhere / serves for other nodes (tests). */
  get size(): { reading: number; serving: number } {
    return { reading: this.#reading.size, serving: this.#serving.size };
  }

  // ---- the caller's node ------------------------------------------------------------

  open(uid: string, method: string, params: unknown[], opts?: CallOptions): AsyncIterable<unknown> {
    return {
      [Symbol.asyncIterator]: () => {
        const id = ++this.#next;
        const r: Reader = { node: '', items: [], ended: false, error: undefined, wake: undefined };
        this.#reading.set(id, r);
        const end = (error?: RpcError) => {
          if (r.ended) return;
          r.ended = true;
          r.error = error;
          this.#reading.delete(id);
          r.wake?.();
        };
        const timer = opts?.timeoutMs !== undefined && opts.timeoutMs < Infinity ? setTimeout(() => stop(new RpcError(ErrorCode.TIMEOUT, `${method} timed out`)), opts.timeoutMs) : undefined;
        const stop = (error?: RpcError) => {
          if (timer) clearTimeout(timer);
          if (!r.ended && r.node) this.link.send(r.node, pack([STREAM_CANCEL, this.link.nodeId, id]));
          end(error);
        };
        let message: Buffer;
        try {
          message = pack([STREAM_OPEN, this.link.nodeId, id, uid, method, params]);
        } catch {
          end(new RpcError(ErrorCode.INVALID_PARAMS, 'params could not be encoded'));
          message = Buffer.alloc(0);
        }
        if (!r.ended)
          this.link.locate(uid).then(
            (node) => {
              if (r.ended) return;
              if (!node || node === this.link.nodeId) return end(unavailable(`${uid} is not connected`));
              r.node = node;
              this.link.send(node, message, (receivers) => {
                if (receivers <= 0) end(unavailable(`${uid} is not reachable: node ${node} is gone`));
              });
            },
            () => end(unavailable(`${uid} is not reachable: the cluster lookup failed`)),
          );
        return {
          next: async (): Promise<IteratorResult<unknown>> => {
            for (;;) {
              if (r.items.length > 0) {
                this.link.send(r.node, pack([STREAM_CREDIT, this.link.nodeId, id])); // one more may come
                return { value: r.items.shift(), done: false };
              }
              if (r.ended) {
                if (timer) clearTimeout(timer);
                if (r.error) throw r.error;
                return { value: undefined, done: true };
              }
              await new Promise<void>((w) => (r.wake = w));
              r.wake = undefined;
            }
          },
          return: async (): Promise<IteratorResult<unknown>> => {
            stop();
            return { value: undefined, done: true };
          },
        };
      },
    };
  }

  /** Nodes this node reads streams from (the liveness sweep checks them). */
  targets(): Set<string> {
    const nodes = new Set<string>();
    for (const r of this.#reading.values()) if (r.node) nodes.add(r.node);
    return nodes;
  }

  /** A node died (or the link is gone: node undefined): its streams fail now. */
  failNode(node: string | undefined, err: RpcError): void {
    for (const r of [...this.#reading.values()])
      if (node === undefined || r.node === node) {
        r.ended = true;
        r.error = err;
        r.wake?.();
      }
    if (node === undefined) this.#reading.clear();
    else for (const [id, r] of this.#reading) if (r.ended) this.#reading.delete(id);
  }

  // ---- the holder's node ------------------------------------------------------------

  #serve(from: string, id: number, uid: string, method: string, params: unknown[]): void {
    const key = `${from} ${id}`;
    if (this.#serving.has(key)) return;
    const endWith = (error: WireError | null) => this.link.send(from, pack([STREAM_END, id, error]));
    if (!this.local.has(uid) || !this.local.streamLocal) return endWith({ code: ErrorCode.UNAVAILABLE, message: `${uid} is not connected` });
    const s: Serving = { credits: STREAM_WINDOW, stopped: false, wake: undefined, stop: undefined };
    this.#serving.set(key, s);
    void (async () => {
      let it: AsyncIterator<unknown> | undefined;
      try {
        it = this.local.streamLocal!(uid, method, params)[Symbol.asyncIterator]();
        s.stop = () => void it?.return?.();
        for (;;) {
          const r = await it.next();
          if (r.done || s.stopped) break;
          while (s.credits === 0 && !s.stopped) await new Promise<void>((w) => (s.wake = w));
          if (s.stopped) break;
          s.credits--;
          this.link.send(from, pack([STREAM_ITEM, id, r.value === undefined ? null : r.value]));
        }
        if (!s.stopped) endWith(null);
      } catch (err) {
        if (!s.stopped) endWith((err instanceof RpcError ? err : new RpcError(ErrorCode.INTERNAL, 'Internal error')).toWire());
      } finally {
        this.#serving.delete(key);
        if (s.stopped) await Promise.resolve(it?.return?.()).catch(() => {});
      }
    })();
  }

  /** The link is gone or the node closes: stop every stream served here (no reader could get it). */
  stopServing(): void {
    for (const s of this.#serving.values()) {
      s.stopped = true;
      s.wake?.();
      s.stop?.();
    }
    this.#serving.clear();
  }

  receive(m: unknown[]): void {
    switch (m[0]) {
      case STREAM_OPEN: {
        const [, from, id, uid, method, params] = m as [number, string, number, string, string, unknown[]];
        if (typeof method === 'string' && Array.isArray(params) && typeof id === 'number') this.#serve(String(from), id, String(uid), method, params);
        return;
      }
      case STREAM_ITEM: {
        const id = Number(m[1]);
        const r = this.#reading.get(id);
        if (!r || r.ended) return;
        // The holder sends only what credits allow: past a window unread, it is broken or hostile.
        if (r.items.length >= STREAM_WINDOW) {
          if (r.node) this.link.send(r.node, pack([STREAM_CANCEL, this.link.nodeId, id]));
          r.ended = true;
          r.items.length = 0;
          r.error = new RpcError(ErrorCode.PROTOCOL_ERROR, 'the node holding the player sent past the stream window');
          this.#reading.delete(id);
          r.wake?.();
          return;
        }
        r.items.push(m[2]);
        r.wake?.();
        return;
      }
      case STREAM_END: {
        const r = this.#reading.get(Number(m[1]));
        if (!r) return;
        const e = m[2] as WireError | null;
        r.ended = true;
        r.error = e && typeof e === 'object' && typeof e.code === 'string' ? RpcError.fromWire(e) : undefined;
        this.#reading.delete(Number(m[1]));
        r.wake?.();
        return;
      }
      case STREAM_CREDIT: {
        const s = this.#serving.get(`${m[1]} ${m[2]}`);
        if (!s) return;
        s.credits = Math.min(STREAM_WINDOW, s.credits + 1);
        s.wake?.();
        return;
      }
      case STREAM_CANCEL: {
        const s = this.#serving.get(`${m[1]} ${m[2]}`);
        if (!s) return;
        s.stopped = true;
        s.wake?.();
        s.stop?.();
        return;
      }
    }
  }
}
