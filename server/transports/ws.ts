// The portable transport: Node's `ws` package on node:http (or node:https). Runs on every
// Node ≥ 20 and every libc, where no native uWebSockets.js binary loads. It gives the
// server what uWebSockets.js gives it natively: topics fanned out with one encoded
// buffer, a buffered-amount figure for backpressure, pings and an idle timeout, and
// plain HTTP routes next to the WebSocket path, with the connection limits uWebSockets.js
// has before an upgrade (nodeHttp.ts).

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import * as wsPackage from 'ws';
import { WebSocketServer, WebSocket } from 'ws';
import { upgradeRequest, offersVolley, VOLLEY_PROTOCOL, type UpgradeRequest } from '../upgradeRequest.ts';
import {
  pathMatches,
  AnswerOnce,
  statusLine,
  type HttpHandler,
  type HttpRoutes,
  type Transport,
  type TransportEvents,
  type TransportOptions,
  type TransportSocket,
} from './transport.ts';
import { nodeHttpServer } from './nodeHttp.ts';

/** One upgrade on the ws transport: its answers are the transport's own closures. */
class WsUpgrade<Data> extends AnswerOnce<Data> {
  constructor(
    request: UpgradeRequest,
    readonly answer: { accept(data: Data): void; refuse(status: number, body: string): void },
  ) {
    super(request);
  }
  protected answerAccept(data: Data): void {
    this.answer.accept(data);
  }
  protected answerRefuse(status: number, body: string): void {
    this.answer.refuse(status, body);
  }
}

/** A `ws` socket dressed as the transport socket (uWebSockets.js' method names). */
class WsSocket<Data> implements TransportSocket<Data> {
  /** Topics this socket is in (for unsubscribe on close). */
  topics: Set<string> | undefined;
  /** Cleared by each ping round, set by any pong or message: two silent rounds = dead. */
  alive = true;
  /** Set when the server closed it: the close event reports this, as uWebSockets.js does. */
  ended: { code: number; reason: string } | undefined;

  constructor(
    readonly ws: WebSocket,
    readonly data: Data,
    readonly hub: Hub<Data>,
  ) {}

  send(frame: Uint8Array): void {
    // ws writes the caller's bytes to the socket without copying them, and the kernel may
    // not take them at once; the server's frames are views into msgpackr's reused buffer,
    // which the next encode overwrites. So each frame is copied once here, into the
    // WebSocket frame that goes out whole (wsFrame).
    this.hub.write(this, wsFrame(frame));
  }
  getBufferedAmount(): number {
    return this.ws.bufferedAmount;
  }
  cork(fn: () => void): void {
    // The engine already batches a tick's messages into one frame: nothing to gather.
    fn();
  }
  end(code?: number, reason?: string): void {
    if (this.ws.readyState > WebSocket.OPEN) return;
    this.ended = { code: code ?? 1000, reason: reason ?? '' };
    try {
      this.ws.close(code, reason === undefined ? undefined : closeReason(reason));
    } catch {
      this.ws.terminate(); // a code ws refuses to send (1005, 1006, out of range)
      return;
    }
    // ws waits up to 30 s for the peer's close frame; a client that stopped reading (the
    // usual reason the server closes it) never sends one. uWebSockets.js closes at once.
    setTimeout(() => this.ws.terminate(), END_GRACE_MS).unref?.();
  }
  close(): void {
    this.ws.terminate();
  }
  subscribe(topic: string): void {
    this.hub.subscribe(this, topic);
  }
  unsubscribe(topic: string): void {
    this.hub.unsubscribe(this, topic);
  }
  getUserData(): Data {
    return this.data;
  }
}

const [MAJOR, MINOR] = process.versions.node.split('.').map(Number) as [number, number];
/** net.Server listen({ reusePort }) exists from Node 22.12 / 23.1 (SO_REUSEPORT, Linux and BSDs). */
export const CAN_REUSE_PORT = MAJOR > 23 || (MAJOR === 23 && MINOR >= 1) || (MAJOR === 22 && MINOR >= 12);

/** How long a closed socket may take to finish the close handshake before it is cut. */
const END_GRACE_MS = 1000;

/** Close reasons are at most 123 bytes of UTF-8 (ws throws past that). */
function closeReason(reason: string): string {
  let r = reason;
  while (Buffer.byteLength(r) > 123) r = r.slice(0, -1);
  return r;
}

/** Sockets, topics and the ping round. */
class Hub<Data> {
  readonly sockets = new Set<WsSocket<Data>>();
  readonly topics = new Map<string, Set<WsSocket<Data>>>();
  #ping: ReturnType<typeof setInterval> | undefined;
  stopped = false;

  constructor(
    readonly maxBackpressure: number,
    readonly idleTimeoutSec: number,
  ) {}

  add(s: WsSocket<Data>): void {
    this.sockets.add(s);
    // uWebSockets.js' idleTimeout: a socket silent for it is closed, after a ping. Here a
    // round every half timeout pings; a socket that answered nothing since the last
    // round is cut, so the dead are gone between 1 and 1.5 × the timeout.
    if (!this.#ping && this.idleTimeoutSec > 0) {
      this.#ping = setInterval(() => this.#round(), (this.idleTimeoutSec * 1000) / 2);
      this.#ping.unref?.();
    }
  }

  remove(s: WsSocket<Data>): void {
    this.sockets.delete(s);
    if (s.topics) for (const t of s.topics) this.unsubscribe(s, t);
    if (this.sockets.size === 0 && this.stopped) this.#stopPing();
  }

  stop(): void {
    this.stopped = true;
    if (this.sockets.size === 0) this.#stopPing();
  }

  #stopPing(): void {
    if (this.#ping) clearInterval(this.#ping);
    this.#ping = undefined;
  }

  #round(): void {
    for (const s of this.sockets) {
      if (!s.alive) {
        s.ws.terminate();
        continue;
      }
      s.alive = false;
      if (s.ws.readyState === WebSocket.OPEN) s.ws.ping();
    }
  }

  /** Send a whole frame (wsFrame), or cut a reader so far behind that uWebSockets.js would have cut it too. */
  write(s: WsSocket<Data>, frame: WsFrame): void {
    const ws = s.ws;
    if (ws.readyState !== WebSocket.OPEN) return;
    if (ws.bufferedAmount > this.maxBackpressure) {
      ws.terminate();
      return;
    }
    if (Array.isArray(frame)) (ws as unknown as { _sender: Framed })._sender.sendFrame(frame);
    else ws.send(frame, { binary: true });
  }

  subscribe(s: WsSocket<Data>, topic: string): void {
    let set = this.topics.get(topic);
    if (!set) this.topics.set(topic, (set = new Set()));
    set.add(s);
    (s.topics ??= new Set()).add(topic);
  }

  unsubscribe(s: WsSocket<Data>, topic: string): void {
    const set = this.topics.get(topic);
    if (set?.delete(s) && set.size === 0) this.topics.delete(topic);
    s.topics?.delete(topic);
  }

  publish(topic: string, frame: Uint8Array): void {
    const set = this.topics.get(topic);
    if (!set || set.size === 0) return;
    // Encoded once by the server, framed once here, the same bytes to every member.
    const whole = wsFrame(frame);
    for (const s of set) this.write(s, whole);
  }
}

/** What ws' Sender does with a frame it has built: write it to the socket (no compression, no queue). */
interface Framed {
  sendFrame(list: Buffer[]): void;
}

/** A whole frame for Sender.sendFrame ([bytes]), or the payload for ws.send where ws lacks it. */
type WsFrame = [Buffer] | Buffer;

// ws.send builds each frame's header apart from its payload and writes the two with a
// cork, a writev of two chunks, besides an options object or two per send: on this
// transport, with nothing compressed, that was a good part of a small send's cost. A
// frame built here in one buffer goes out as one write through the Sender's own
// sendFrame (what ws.send ends in without compression; perMessageDeflate is off). ws
// keeps sendFrame internal; engine.io writes broadcast frames the same way. Checked once:
// without it, frames go through ws.send.
const RAW_FRAMES = typeof (wsPackage as unknown as { Sender?: { prototype?: Partial<Framed> } }).Sender?.prototype?.sendFrame === 'function';

/** One binary frame, server to client (FIN, opcode 2, unmasked), header and a copy of `payload` in one buffer. */
export function wsFrame(payload: Uint8Array): WsFrame {
  if (!RAW_FRAMES) return Buffer.from(payload);
  const n = payload.byteLength;
  const head = n < 126 ? 2 : n < 0x10000 ? 4 : 10;
  const buf = Buffer.allocUnsafe(head + n);
  buf[0] = 0x82;
  if (n < 126) buf[1] = n;
  else if (n < 0x10000) {
    buf[1] = 126;
    buf.writeUInt16BE(n, 2);
  } else {
    buf[1] = 127;
    buf.writeUInt32BE(Math.floor(n / 0x100000000), 2);
    buf.writeUInt32BE(n >>> 0, 6);
  }
  buf.set(payload, head);
  return [buf];
}

function plainHeaders(raw: IncomingMessage['headers']): Record<string, string> {
  const out: Record<string, string> = Object.create(null);
  for (const [k, v] of Object.entries(raw)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

/** node:http gives IPv4 peers of a dual-stack socket as ::ffff:a.b.c.d. */
function plainAddress(addr: string | undefined): string {
  if (!addr) return '';
  return addr.startsWith('::ffff:') && addr.includes('.') ? addr.slice(7) : addr;
}

function splitUrl(url: string | undefined): [string, string] {
  const u = url ?? '/';
  const q = u.indexOf('?');
  return q < 0 ? [u, ''] : [u.slice(0, q), u.slice(q + 1)];
}

/** A plain HTTP answer on a socket that asked to upgrade (ws is not involved yet). */
function writeRaw(socket: Duplex, status: number, body: string): void {
  if (socket.destroyed) return;
  const bytes = Buffer.from(body);
  socket.end(
    `HTTP/1.1 ${statusLine(status)}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n` +
      `Content-Length: ${bytes.byteLength}\r\n\r\n${body}`,
  );
}

export function wsTransport<Data>(opts: TransportOptions, events: TransportEvents<Data>): Transport<Data> {
  const hub = new Hub<Data>(opts.maxBackpressure, opts.idleTimeoutSec);
  const routes = new Map<string, HttpHandler>(); // "GET /path" or "GET /prefix/*"
  // Timeouts before the upgrade, and routes answered one request at a time per socket.
  const http = nodeHttpServer(opts.http, opts.tls, (req, res) => serveRoute(routes, req, res));
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: opts.maxPayloadLength,
    perMessageDeflate: false,
    clientTracking: false,
    handleProtocols: (offered) => (offered.has(VOLLEY_PROTOCOL) ? VOLLEY_PROTOCOL : false),
  });

  http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    // Until ws owns it, a reset socket must not throw an unhandled 'error'.
    const onError = () => socket.destroy();
    socket.on('error', onError);
    const [url, query] = splitUrl(req.url);
    if (!pathMatches(opts.path, url)) return writeRaw(socket, 404, 'not found');
    if (req.headers['sec-websocket-version'] !== '13' || !req.headers['sec-websocket-key'] || req.method !== 'GET')
      return writeRaw(socket, 400, 'bad websocket upgrade');
    const headers = plainHeaders(req.headers);
    const request = upgradeRequest(url, query, headers, plainAddress(req.socket.remoteAddress), opts.trustProxy);
    const pending = new WsUpgrade<Data>(request, {
      accept: (data) => {
        socket.off('close', abort);
        wss.handleUpgrade(req, socket, head, (ws) => {
          socket.off('error', onError);
          const s = new WsSocket<Data>(ws, data, hub);
          hub.add(s);
          // A protocol error (e.g. a frame over maxPayload): ws closes with its code (1009…)
          // and a close event follows; report that code, not the 1006 of the cut.
          ws.on('error', (err: Error & { [k: symbol]: unknown }) => {
            const key = Object.getOwnPropertySymbols(err).find((k) => k.description === 'status-code');
            const code = key ? err[key] : undefined;
            s.ended ??= { code: typeof code === 'number' ? code : 1006, reason: err.message };
          });
          ws.on('pong', () => (s.alive = true));
          ws.on('message', (msg: Buffer, isBinary: boolean) => {
            s.alive = true;
            // A plain Uint8Array view, as uWebSockets.js hands over: msgpackr copies bin values
            // as the type of its source, so a Buffer made them Buffers here and Uint8Arrays
            // on the other transport (and in frames decoded from a copy).
            events.message(s, new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength), isBinary);
          });
          ws.on('close', (code: number, reason: Buffer) => {
            hub.remove(s);
            events.close(s, s.ended?.code ?? code, s.ended?.reason ?? reason.toString());
          });
          events.open(s);
        });
      },
      refuse: (status, body) => {
        socket.off('close', abort);
        writeRaw(socket, status, body);
      },
    });
    const abort = () => pending.abort();
    socket.once('close', abort);
    events.upgrade(pending);
  });

  const add = (method: string) => (path: string, handler: HttpHandler) => void routes.set(`${method} ${path}`, handler);
  const httpRoutes: HttpRoutes = { get: add('GET'), post: add('POST') };

  return {
    name: 'ws',
    routes: httpRoutes,
    listen(port, host) {
      return new Promise((resolve, reject) => {
        // Several processes on one port, the kernel spreading connections (demo/cluster.ts).
        if (opts.reusePort && !CAN_REUSE_PORT)
          return reject(new Error(`reusePort needs Node 22.12+ on the ws transport (this is ${process.versions.node})`));
        http.once('error', reject);
        const options = { port, host, ...(opts.reusePort ? { reusePort: true } : {}) };
        http.listen(options, () => {
          http.off('error', reject);
          const addr = http.address();
          resolve(typeof addr === 'object' && addr ? addr.port : port);
        });
      });
    },
    stopListening() {
      hub.stop();
      if (http.listening) http.close();
      http.closeIdleConnections();
    },
    publish(topic, frame) {
      hub.publish(topic, frame);
    },
  };
}

function serveRoute(routes: Map<string, HttpHandler>, req: IncomingMessage, res: ServerResponse): void {
  const [url, query] = splitUrl(req.url);
  const method = req.method ?? 'GET';
  let handler = routes.get(`${method} ${url}`);
  if (!handler) {
    for (const [key, h] of routes) {
      const [m, pattern] = key.split(' ') as [string, string];
      if (m === method && pattern.endsWith('/*') && pathMatches(pattern, url)) {
        handler = h;
        break;
      }
    }
  }
  if (!handler) {
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found');
    return;
  }
  const info = { method, url, query: new URLSearchParams(query), headers: plainHeaders(req.headers) };
  const failed = () => {
    if (!res.headersSent) res.writeHead(500).end('internal error');
  };
  const write = (reply: { status?: number; headers?: Record<string, string>; body?: string | Uint8Array }) => {
    if (res.destroyed) return;
    res.writeHead(reply.status ?? 200, reply.headers ?? {}).end(reply.body ?? '');
  };
  try {
    const out = handler(info);
    if (out instanceof Promise) out.then(write, failed);
    else write(out);
  } catch {
    failed();
  }
}
