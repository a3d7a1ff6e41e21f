// This node's sessions, by uid: how each begins (fresh, resumed on a new socket, replacing
// another login, or moved here from another node), what its socket's messages and close
// do to it, when it ends, and the one heartbeat sweep over them all. VolleyServer is the
// public face over it; the session's engine is its Connection's RpcPeer.

import { CloseCode, ErrorCode, NOTIFICATION, encode, importSession, SUPPORTED_FEATURES, type RpcPeer, type SessionImage, type announcedLimits } from '../protocol/index.ts';
import type { ClusterAdapter, TakenSession } from './adapter.ts';
import { Connection, type ConnectionShared } from './connection.ts';
import type { EndReason, ServerObserver } from './observe/index.ts';
import type { ServerOptions } from './options.ts';
import { quietError } from './quietError.ts';
import { roomTopic, type Rooms } from './rooms.ts';
import { SESSION, newSessionId, type SessionInfo } from './session.ts';
import type { TransportSocket } from './transports/index.ts';
import type { UpgradeData } from './upgrade.ts';

type Socket = TransportSocket<UpgradeData>;

/** What the sessions need from the server that holds them. */
export interface SessionsHost {
  readonly opts: Pick<ServerOptions<any, any>, 'onConnect' | 'onDisconnect' | 'onSessionEnd' | 'duplicateLogin' | 'heartbeatTimeoutMs'>;
  readonly shared: ConnectionShared;
  readonly rooms: Rooms;
  readonly adapter: ClusterAdapter;
  readonly obs: ServerObserver | undefined;
  readonly resumeWindowMs: number;
  readonly heartbeatMs: number;
  readonly maxMessageBytes: number;
  /** The limits every `$session` announces. */
  readonly announced: ReturnType<typeof announcedLimits>;
  /** close() has begun. */
  closing(): boolean;
  /** drain() has begun: a 1001 keeps the session (the player resumes it on another node). */
  draining(): boolean;
  /** Run fn, reporting what it throws or rejects with instead of passing it on. */
  safe(fn: () => unknown): Promise<void>;
}

export class Sessions {
  readonly #conns = new Map<string, Connection>();
  #sweep: ReturnType<typeof setInterval> | undefined;
  #allClosed: (() => void) | undefined;

  constructor(readonly host: SessionsHost) {}

  get size(): number {
    return this.#conns.size;
  }
  get(uid: string): Connection | undefined {
    return this.#conns.get(uid);
  }
  has(uid: string): boolean {
    return this.#conns.has(uid);
  }
  values(): IterableIterator<Connection> {
    return this.#conns.values();
  }
  keys(): IterableIterator<string> {
    return this.#conns.keys();
  }

  /** Resolves once no session is left here (shutdown waits for it). */
  whenAllClosed(): Promise<void> {
    return this.#conns.size === 0 ? Promise.resolve() : new Promise<void>((r) => (this.#allClosed = r));
  }

  // ---- a socket's life ------------------------------------------------------------

  open(ws: Socket): void {
    const h = this.host;
    const data = ws.getUserData();
    if (data.refused) {
      // A refusal for a client that asked for it as a close code (see upgrade.ts).
      ws.end(data.refused.code, data.refused.reason);
      return;
    }
    const uid = data.uid;
    const existing = this.#conns.get(uid);
    if (existing && data.resumeSid === existing.sid && h.resumeWindowMs > 0) {
      // The same session comes back: take over from the old socket (if the server has not
      // noticed yet that it died) and re-send what is pending both ways.
      const old = existing.ws;
      existing.detach();
      if (old) old.end(CloseCode.REPLACED, 'resumed on a newer socket');
      data.conn = existing;
      existing.attach(ws, this.#sessionMessage(existing, true));
      this.#subscribeRooms(uid, ws);
      h.obs?.opened(true);
      h.opts.onConnect?.(uid, { resumed: true });
      return;
    }
    if (existing) {
      if (h.opts.duplicateLogin === 'reject') {
        // Two upgrades for one uid raced past the 409 check; the later one loses.
        ws.end(CloseCode.DUPLICATE_LOGIN, 'this uid is already connected');
        return;
      }
      // Detach first so its close handler leaves the uid's rooms and presence alone.
      this.#conns.delete(uid);
      existing.end(CloseCode.REPLACED, 'replaced by a newer login');
      this.end(existing, 'replaced');
    }
    const sid = newSessionId();
    const conn = new Connection(uid, sid, ws, h.shared);
    data.conn = conn;
    this.#conns.set(uid, conn);
    this.#subscribeRooms(uid, ws);
    conn.peer.attach(this.#sessionMessage(conn, false));
    if (!existing)
      void h.safe(() => h.adapter.register(uid, { sid, resumeSid: data.resumeSid, policy: h.opts.duplicateLogin ?? 'replace' }));
    h.obs?.opened(false);
    h.opts.onConnect?.(uid, { resumed: false });
  }

  #subscribeRooms(uid: string, ws: Socket): void {
    for (const room of this.host.rooms.roomsOf(uid)) ws.subscribe(roomTopic(room));
  }

  /** `$session`: tells the client its session id (to resume with) and the timings to keep. */
  #sessionMessage(conn: Connection, resumed: boolean): Uint8Array {
    const h = this.host;
    const info: SessionInfo = {
      sid: conn.sid,
      resumed,
      resumeWindowMs: h.resumeWindowMs,
      heartbeatMs: h.heartbeatMs,
      maxMessageBytes: h.maxMessageBytes,
      limits: h.announced,
      features: SUPPORTED_FEATURES as string[],
    };
    return encode([NOTIFICATION, SESSION, [info]]);
  }

  message(ws: Socket, data: ArrayBuffer | Uint8Array, isBinary: boolean): void {
    const conn = ws.getUserData().conn;
    // A socket the session has moved away from (resumed elsewhere): its late messages are
    // stale, and the client re-sends on the new socket whatever still needs an answer.
    if (!conn || conn.ws !== ws) return;
    conn.seen = true;
    if (!isBinary) {
      conn.end(CloseCode.PROTOCOL_ERROR, 'text frames are not part of the protocol');
      return;
    }
    conn.receive(data);
  }

  close(ws: Socket, code: number, reason: string): void {
    const h = this.host;
    const conn = ws.getUserData().conn;
    if (!conn || conn.ws !== ws) return; // refused duplicate, or a socket a resume superseded
    conn.detach();
    h.obs?.disconnected(code);
    h.opts.onDisconnect?.(conn.uid, code, reason);
    if (this.#conns.get(conn.uid) !== conn) return; // replaced: the uid lives on
    // A deliberate close (by the client: 1000/1001, or by us) ends the session now; a
    // dropped socket keeps it for the resume window.
    // While draining, the 1001 this node sent keeps the session: the player resumes it on another node.
    const goingAway = code === CloseCode.GOING_AWAY && !h.draining();
    if (conn.ending || code === CloseCode.NORMAL || goingAway || h.resumeWindowMs <= 0 || h.closing()) {
      this.end(conn, h.closing() ? 'shutdown' : conn.ending ? 'server' : 'closed');
    } else {
      conn.expireIn(h.resumeWindowMs, () => this.end(conn, 'expired'));
    }
  }

  /** Session over: pending calls both ways reject DISCONNECTED, rooms and presence go. */
  end(conn: Connection, reason: EndReason): void {
    const h = this.host;
    h.obs?.sessionEnded(reason);
    conn.cancelExpiry();
    conn.dispose();
    conn.peer.close(quietError(ErrorCode.DISCONNECTED, `${conn.uid} disconnected`));
    if (this.#conns.get(conn.uid) === conn) {
      this.#conns.delete(conn.uid);
      h.rooms.leaveAll(conn.uid);
      void h.safe(() => h.adapter.unregister(conn.uid));
    }
    h.opts.onSessionEnd?.(conn.uid);
    if (this.#conns.size === 0) this.#allClosed?.();
  }

  // ---- sessions that move between nodes --------------------------------------------

  /** A session taken over from another node arrived: in place now, as a detached session. */
  install(uid: string, sid: string, taken: TakenSession): boolean {
    const h = this.host;
    // Nowhere to put it: the caller fails the old node's calls in flight and stops its handlers.
    if (this.#conns.has(uid) || h.resumeWindowMs <= 0 || h.closing() || h.draining()) return false;
    const conn = new Connection(uid, sid, undefined, h.shared);
    importSession(conn.peer, taken.image, taken.back);
    this.#conns.set(uid, conn);
    for (const room of taken.rooms) if (h.rooms.join(uid, room)) h.adapter.joined?.(uid, room);
    conn.expireIn(h.resumeWindowMs, () => this.end(conn, 'expired'));
    void h.safe(() => h.adapter.register(uid, { sid, resumeSid: sid, policy: h.opts.duplicateLogin ?? 'replace' }));
    return true;
  }

  /** Another node takes uid's session `sid` over: it leaves this node, its engine stays as a relay. */
  handOver(uid: string, sid: string, exportFrom: (peer: RpcPeer<any>) => SessionImage | undefined) {
    const h = this.host;
    const conn = this.#conns.get(uid);
    if (!conn || conn.sid !== sid) return undefined;
    const image = exportFrom(conn.peer);
    if (!image) return undefined;
    this.#conns.delete(uid);
    conn.cancelExpiry();
    if (conn.ws) conn.end(CloseCode.REPLACED, 'resumed on another node'); // a socket this node has not seen die yet
    conn.dispose();
    const rooms = h.rooms.leaveAll(uid);
    void h.safe(() => h.adapter.unregister(uid));
    h.obs?.sessionEnded('moved');
    if (this.#conns.size === 0) this.#allClosed?.();
    return { image, rooms, peer: conn.peer };
  }

  // ---- heartbeats ------------------------------------------------------------------

  /**
   * One timer for all connections: a socket whose client keeps heartbeats but was silent
   * for heartbeatTimeoutMs is dropped (its session keeps the resume window). Cheaper than
   * a timer per socket, and finer-grained than uWebSockets.js' 4-second idle timeout.
   */
  startSweep(): void {
    const interval = this.host.heartbeatMs;
    if (!(interval > 0) || this.#sweep) return;
    const maxMissed = Math.max(1, Math.ceil((this.host.opts.heartbeatTimeoutMs ?? interval * 2.5) / interval));
    this.#sweep = setInterval(() => {
      for (const conn of this.#conns.values()) {
        if (!conn.online || !conn.heartbeats) continue;
        if (conn.seen) {
          conn.seen = false;
          conn.missedSweeps = 0;
        } else if (++conn.missedSweeps >= maxMissed) {
          conn.ws!.close(); // abrupt: the session stays resumable
        }
      }
    }, interval);
    this.#sweep.unref?.();
  }

  stopSweep(): void {
    if (this.#sweep) clearInterval(this.#sweep);
    this.#sweep = undefined;
  }
}
