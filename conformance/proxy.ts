// The kit's front door: an HTTP server whose WebSocket upgrades are passed byte for byte
// to an inner Volley server, while every frame is recorded both ways. Because it sits on
// the wire, the kit can judge what a client put there (bytes, batching, `$ack`, `$cancel`,
// close codes), cut a socket abruptly, stop the downlink (a stalled or slow reader), and
// slip a frame of its own in between two of the server's — for a client in any language,
// without a proxy of the client's own.

import http from 'node:http';
import net from 'node:net';
import { Packr, Unpackr } from 'msgpackr';
import { splitValues } from './msgpackWalk.ts';
import { FrameParser, closeCode, serverFrame, type Frame } from './wsFrames.ts';

/** Payloads larger than this are recorded by their first bytes only. */
const RECORD_MAX_BYTES = 64 * 1024;
/** Most frames kept per socket (a flood case must not fill the heap). */
const RECORD_MAX_FRAMES = 20_000;

export interface Recorded {
  /** Order across both directions and all sockets of the kit. */
  seq: number;
  /** up: client → server; down: server → client (as forwarded to the client). */
  dir: 'up' | 'down';
  opcode: number;
  payload: Buffer;
  truncated: boolean;
  injected: boolean;
  /** Date.now() when forwarded. */
  at: number;
}

/**
 * What the proxy does to the server → client stream on a path (kit.ts, PROXY_MODES): the
 * kit's own server modes, for clients of any language.
 */
export interface DownMode {
  /** Hold the server's `$session` this long after the 101 (the client must wait for it). */
  holdSessionMs?: number;
  /** Then hold the server's first `$ack` and everything after it this much longer. */
  holdAckMs?: number;
  /** Rewrite the `$session` info (fields and features a client does not know). */
  session?: (info: Record<string, unknown>) => Record<string, unknown>;
}

const packr = new Packr({ useRecords: false, moreTypes: false } as never);
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' } as never);

/** One proxied WebSocket connection. */
export interface Wire {
  id: number;
  uid: string;
  path: string;
  query: URLSearchParams;
  /** HTTP status the inner server answered the upgrade with (101 when it opened). */
  status: number;
  records: Recorded[];
  /** Close codes seen in close frames, per direction. */
  clientClose?: number;
  serverClose?: number;
  ended: boolean;
  /** Date.now() when the socket ended (0 while open). */
  endedAt: number;
  stalled: boolean;
  /** Client → server frames held back while the uplink is stalled (lost if the socket is cut). */
  heldUp: { frame: Frame }[] | undefined;
  /** A fragmented message being put together, per direction. */
  partial: { up?: { opcode: number; parts: Buffer[] }; down?: { opcode: number; parts: Buffer[] } };
  /** Server → client frames held back (DownMode), in order, each with the time it may go. */
  heldDown: { frame: Frame; at: number }[];
  /** Until then every server → client frame is held (DownMode.holdAckMs). */
  holdDownUntil: number;
  /** The server's `$session` has gone by (DownMode applies to the first one). */
  sessionSeen: boolean;
  /** The timer that forwards held frames, while one is set. */
  pump: ReturnType<typeof setTimeout> | undefined;
  client: net.Socket;
  upstream: net.Socket;
}

let seq = 0;
export const nextSeq = () => ++seq;

/** The uid a request authenticates as: its token (header, query, or sub-protocol). */
export function tokenOf(req: http.IncomingMessage, query: URLSearchParams): string | undefined {
  const auth = req.headers.authorization;
  if (auth && /^bearer /i.test(auth)) return auth.slice(7).trim();
  const q = query.get('token');
  if (q) return q;
  for (const p of String(req.headers['sec-websocket-protocol'] ?? '').split(',')) {
    const t = p.trim();
    if (t.startsWith('volley.token.')) return t.slice('volley.token.'.length);
  }
  return undefined;
}

export class RecordingProxy {
  readonly http: http.Server;
  #wires = new Map<string, Wire[]>();
  #refused = new Map<string, number>();
  /** Per uid: responses (by id) the server sends that reach the client as other bytes. */
  #rewrites = new Map<string, Map<number, Uint8Array>>();
  #nextId = 0;
  readonly #modeOf: (path: string) => DownMode | undefined;
  readonly #onRequest: http.RequestListener;

  /**
   * `route` maps a request path to the port of the inner server that serves it; `modeOf`
   * says what to do to the server's stream on that path; `onRequest` answers plain HTTP.
   */
  constructor(route: (path: string) => number, onRequest: http.RequestListener, modeOf: (path: string) => DownMode | undefined = () => undefined) {
    this.#modeOf = modeOf;
    this.#onRequest = onRequest;
    this.http = http.createServer(onRequest);
    this.http.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
      // Only a WebSocket upgrade is one. Anything else offered (h2c, Java's HttpClient
      // default on http:) is a plain HTTP/1.1 request whose offer a server may ignore
      // (RFC 9110 §7.8): Node hands it here, taken out of its parser, and it was never answered.
      if (/^websocket$/i.test(String(req.headers.upgrade ?? '').trim())) this.#upgrade(req, socket, head, route);
      else this.#plainHttp(req, socket);
    });
  }

  /** Answer a request that offered an upgrade other than WebSocket as plain HTTP/1.1, then close. */
  #plainHttp(req: http.IncomingMessage, socket: net.Socket): void {
    const res = new http.ServerResponse(req);
    res.shouldKeepAlive = false;
    res.assignSocket(socket);
    res.on('finish', () => {
      res.detachSocket(socket);
      socket.end();
    });
    socket.on('error', () => socket.destroy());
    this.#onRequest(req, res);
  }

  /**
   * The next response to request `id` the server sends uid reaches the client as `bytes`
   * instead (a response the client must refuse, SPEC §2): recorded as what was forwarded.
   */
  rewriteResponse(uid: string, id: number, bytes: Uint8Array): void {
    let m = this.#rewrites.get(uid);
    if (!m) this.#rewrites.set(uid, (m = new Map()));
    m.set(id, bytes);
  }

  /** Every socket uid has had, oldest first. */
  wiresOf(uid: string): Wire[] {
    return this.#wires.get(uid) ?? [];
  }

  live(uid: string): Wire[] {
    return this.wiresOf(uid).filter((w) => !w.ended && w.status === 101);
  }

  /** Cut uid's sockets abruptly (no close frame: both sides see 1006); refuse it for refuseMs. */
  drop(uid: string, refuseMs = 0, code = 0): number {
    if (refuseMs > 0) this.#refused.set(uid, Date.now() + refuseMs);
    const live = this.live(uid);
    for (const w of live) {
      // With a code: the client gets a close frame with it (1001: a server draining for a
      // deploy), the inner server only the cut (1006), so it keeps the session to resume.
      if (code > 0 && !w.ended) {
        const payload = Buffer.alloc(2 + 8);
        payload.writeUInt16BE(code, 0);
        payload.write('draining', 2);
        w.client.write(serverFrame(payload, 0x8));
        w.serverClose ??= code;
      }
      this.#end(w);
    }
    return live.length;
  }

  /**
   * Stop forwarding on uid's sockets: `down` (server → client: the inner server's writes
   * pile up, a stalled or slow reader) or `up` (client → server: the client's frames are
   * held here, as if in flight, and lost if the socket is cut). For `ms` > 0 forwarding
   * resumes after that long.
   */
  stall(uid: string, ms = 0, dir: 'up' | 'down' = 'down'): number {
    const live = this.live(uid);
    for (const w of live) {
      if (dir === 'up') w.heldUp ??= [];
      else {
        w.stalled = true;
        w.upstream.pause();
      }
      if (ms > 0)
        setTimeout(() => {
          if (dir === 'up') {
            const held = w.heldUp ?? [];
            w.heldUp = undefined;
            for (const h of held) this.#forwardUp(w, h.frame);
          } else {
            w.stalled = false;
            if (!w.ended) w.upstream.resume();
          }
        }, ms).unref();
    }
    return live.length;
  }

  /** Send a frame of the kit's own to uid's client, between two of the server's frames. */
  inject(uid: string, payload: Uint8Array, opcode = 0x2): number {
    const live = this.live(uid);
    for (const w of live) {
      this.#record(w, 'down', { fin: true, opcode, payload: Buffer.from(payload), raw: Buffer.alloc(0) }, true);
      w.client.write(serverFrame(payload, opcode));
    }
    return live.length;
  }

  close(): void {
    for (const wires of this.#wires.values()) for (const w of wires) this.#end(w);
    this.http.close();
  }

  #end(w: Wire): void {
    if (!w.ended) w.endedAt = Date.now();
    w.ended = true;
    w.client.destroy();
    w.upstream.destroy();
  }

  #upgrade(req: http.IncomingMessage, client: net.Socket, head: Buffer, route: (path: string) => number): void {
    const url = new URL(req.url ?? '/', 'http://kit');
    const uid = tokenOf(req, url.searchParams) ?? '';
    const until = this.#refused.get(uid);
    if (until !== undefined && Date.now() < until) {
      client.destroy(); // the network is "down" for this uid
      return;
    }
    client.setNoDelay(true);
    const upstream = net.connect(route(url.pathname), '127.0.0.1');
    upstream.setNoDelay(true);
    const wire: Wire = {
      id: ++this.#nextId, uid, path: url.pathname, query: url.searchParams, status: 0, records: [],
      ended: false, endedAt: 0, stalled: false, heldUp: undefined, partial: {}, client, upstream,
      heldDown: [], holdDownUntil: 0, sessionSeen: false, pump: undefined,
    };
    const mode = this.#modeOf(url.pathname);
    let list = this.#wires.get(uid);
    if (!list) this.#wires.set(uid, (list = []));
    list.push(wire);
    const closeBoth = () => {
      if (!wire.ended) wire.endedAt = Date.now();
      wire.ended = true;
      client.destroy();
      upstream.destroy();
    };
    // One side closed: the other still gets what was written to it, then its end. Destroying
    // it at once dropped that tail: uWebSockets.js closes its socket right after its close
    // frame, so a server's last replies and its 4029 were lost and the client saw 1006.
    // The client's end waits for server frames a mode still holds (they were sent first).
    const endClient = (): void => {
      if (wire.heldDown.length && !client.destroyed) setTimeout(endClient, 10).unref();
      else client.end();
    };
    const closedFrom = (other: net.Socket) => () => {
      if (!wire.ended) wire.endedAt = Date.now();
      wire.ended = true;
      if (other === client) endClient();
      else other.end();
      setTimeout(() => other.destroy(), 1000).unref();
    };
    client.on('error', closeBoth).on('close', closedFrom(upstream));
    upstream.on('error', closeBoth).on('close', closedFrom(client));
    // Half-closes pass through: a WebSocket client ends its side after the close
    // handshake and waits for the server to close (the HTTP server's sockets allow
    // half-open, so nothing would close on its own).
    client.on('end', () => upstream.end());
    upstream.on('end', endClient);

    // The request as it came (headers in their order and case), then any early bytes.
    let text = `${req.method} ${req.url} HTTP/${req.httpVersion}\r\n`;
    for (let i = 0; i < req.rawHeaders.length; i += 2) text += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
    upstream.write(text + '\r\n');
    const up = new FrameParser();
    const forwardUp = (chunk: Buffer) => {
      for (const f of up.feed(chunk)) {
        if (wire.heldUp && f.opcode < 0x8) wire.heldUp.push({ frame: f });
        else this.#forwardUp(wire, f);
      }
    };
    if (head.length) forwardUp(head);
    client.on('data', forwardUp);

    // Downlink: the HTTP response head passes as it is; after a 101, frame by frame.
    let pending: Buffer | undefined = Buffer.alloc(0);
    const down = new FrameParser();
    upstream.on('data', (chunk: Buffer) => {
      if (pending !== undefined) {
        pending = Buffer.concat([pending, chunk]);
        const end = pending.indexOf('\r\n\r\n');
        if (end < 0) return;
        const headText = pending.subarray(0, end + 4);
        wire.status = Number(/^HTTP\/1\.1 (\d+)/.exec(headText.toString('latin1'))?.[1] ?? 0);
        client.write(headText);
        chunk = pending.subarray(end + 4);
        pending = undefined;
        if (wire.status !== 101) {
          if (chunk.length) client.write(chunk);
          upstream.on('data', (c: Buffer) => client.write(c));
          return;
        }
      }
      if (wire.status !== 101) return;
      for (const f of down.feed(chunk)) this.#down(wire, f, mode);
    });
  }

  /**
   * Server → client, one frame: rewritten where the kit says so (the `$session` of a mode,
   * a response to rewrite), held where the mode says so (order kept), then recorded as
   * forwarded. The Volley server never fragments, so a data frame is a whole message.
   */
  #down(w: Wire, f: Frame, mode: DownMode | undefined): void {
    const now = Date.now();
    let out: { frame: Frame; at: number }[] = [{ frame: f, at: w.holdDownUntil }];
    const rewrites = this.#rewrites.get(w.uid);
    if (f.opcode === 0x2 && f.fin && (rewrites?.size || (mode && !w.sessionSeen))) {
      let parts: Uint8Array[];
      try {
        parts = splitValues(f.payload);
      } catch {
        parts = [];
      }
      let changed = false;
      let sessionAt = -1;
      parts = parts.map((bytes, i) => {
        const m = decode(bytes);
        if (m?.[0] === 1 && rewrites?.has(m[1] as number)) {
          const to = rewrites.get(m[1] as number)!;
          rewrites.delete(m[1] as number);
          changed = true;
          return to;
        }
        if (mode && !w.sessionSeen && m?.[0] === 2 && m[1] === '$session') {
          w.sessionSeen = true;
          sessionAt = i;
          if (mode.session) {
            changed = true;
            return packr.pack([2, '$session', [mode.session({ ...((m[2] as unknown[])[0] as Record<string, unknown>) })]]);
          }
        }
        return bytes;
      });
      const frameOf = (list: Uint8Array[]): Frame => {
        const payload = Buffer.concat(list);
        return { fin: true, opcode: 0x2, payload, raw: serverFrame(payload) };
      };
      if (sessionAt >= 0 && (mode?.holdSessionMs || mode?.holdAckMs)) {
        // `$session` alone after its hold, then the rest of the frame (the server's `$ack`)
        // and everything after it once the second hold has passed too.
        const sessionGoes = now + (mode.holdSessionMs ?? 0);
        w.holdDownUntil = sessionGoes + (mode.holdAckMs ?? 0);
        out = [{ frame: frameOf(parts.slice(0, sessionAt + 1)), at: sessionGoes }];
        if (parts.length > sessionAt + 1) out.push({ frame: frameOf(parts.slice(sessionAt + 1)), at: w.holdDownUntil });
      } else if (changed) out = [{ frame: frameOf(parts), at: w.holdDownUntil }];
    }
    w.heldDown.push(...out);
    if (w.pump === undefined) this.#pumpDown(w);
  }

  /** Forward held server → client frames whose time has come, in order. */
  #pumpDown(w: Wire): void {
    w.pump = undefined;
    const now = Date.now();
    while (w.heldDown.length && w.heldDown[0]!.at <= now) {
      const { frame } = w.heldDown.shift()!;
      if (w.client.destroyed || w.client.writableEnded) continue;
      this.#record(w, 'down', frame, false);
      w.client.write(frame.raw);
    }
    if (w.heldDown.length) w.pump = setTimeout(() => this.#pumpDown(w), w.heldDown[0]!.at - now);
  }

  /** Client → server: recorded as the server receives it. */
  #forwardUp(w: Wire, f: Frame): void {
    this.#record(w, 'up', f, false);
    if (!w.ended) w.upstream.write(f.raw);
  }

  #record(w: Wire, dir: 'up' | 'down', f: Frame, injected: boolean): void {
    if (f.opcode === 0x8) {
      if (dir === 'up') w.clientClose ??= closeCode(f.payload);
      else w.serverClose ??= closeCode(f.payload);
    }
    // Record messages, not frames: a client may fragment (continuation frames).
    if (f.opcode < 0x8 && (!f.fin || f.opcode === 0x0)) {
      const part = w.partial[dir];
      if (f.opcode !== 0x0) w.partial[dir] = { opcode: f.opcode, parts: [f.payload] };
      else if (part) part.parts.push(f.payload);
      if (!f.fin || !w.partial[dir]) return;
      const whole = w.partial[dir]!;
      w.partial[dir] = undefined;
      f = { fin: true, opcode: whole.opcode, payload: Buffer.concat(whole.parts), raw: f.raw };
    }
    if (w.records.length >= RECORD_MAX_FRAMES) return;
    const truncated = f.payload.length > RECORD_MAX_BYTES;
    w.records.push({
      seq: nextSeq(), dir, opcode: f.opcode, injected, truncated, at: Date.now(),
      payload: truncated ? Buffer.from(f.payload.subarray(0, 64)) : f.payload,
    });
  }
}

function decode(bytes: Uint8Array): unknown[] | undefined {
  try {
    const v = unpackr.unpack(bytes as never);
    return Array.isArray(v) ? v : undefined;
  } catch {
    return undefined;
  }
}
