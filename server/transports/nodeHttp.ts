// Plain HTTP on node:http (or node:https): the ws transport's server, and the observability
// routes on a port of their own (observe.routesPort). Node's defaults let a connection that
// never finishes a request live 60–90 s (up to 2 min for a TLS handshake), and run every
// pipelined request of a socket at once. Here, as uWebSockets.js does natively, a connection
// has httpLimits.headersTimeoutMs for its TLS handshake and its request head and may be
// silent for idleTimeoutMs; its requests are answered one at a time, the next not started
// before the previous reply is written, and past maxPipelinedRequests unanswered requests it
// is closed without the rest of its bytes being parsed.

import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { HttpLimits, TlsOptions } from './transport.ts';

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

/** How long a request with a body may take in all (Node's requestTimeout), at least the head's timeout. */
const REQUEST_TIMEOUT_MS = 30_000;

/** A node:http(s) server with `limits`, serving each socket's requests through `handle`, one at a time. */
export function nodeHttpServer(limits: HttpLimits, tls: TlsOptions | undefined, handle: RequestHandler): Server {
  const head = limits.headersTimeoutMs;
  const options = {
    // Enforced by a sweep every connectionsCheckingInterval (30 s by default: a 60 s
    // headersTimeout closed a silent socket at 60–90 s on Node 20.20).
    headersTimeout: head,
    requestTimeout: head === 0 ? 0 : Math.max(REQUEST_TIMEOUT_MS, head),
    connectionsCheckingInterval: head === 0 ? 30_000 : Math.min(1000, Math.max(100, head / 4)),
  };
  const server = tls
    ? createHttpsServer({
        ...options,
        key: tls.key as string,
        cert: tls.cert as string,
        passphrase: tls.passphrase,
        // A hard deadline: the raw bytes of a handshake do not reset it.
        ...(head > 0 ? { handshakeTimeout: head } : {}),
      })
    : createHttpServer(options);
  // server.timeout: a socket silent this long is destroyed (before its first byte, between
  // requests, while a reply waits for a reader that does not read). Its timer is dropped at
  // the upgrade: WebSockets have their own idle timeout.
  server.timeout = limits.idleTimeoutMs;
  server.keepAliveTimeout = limits.idleTimeoutMs;
  const queues = new SocketQueues(limits.maxPipelinedRequests, handle);
  server.on(tls ? 'secureConnection' : 'connection', (socket: Socket) => queues.guard(socket));
  server.on('request', (req: IncomingMessage, res: ServerResponse) => queues.request(req, res));
  return server;
}

/** One socket's requests: parsed, answered (reply written), the one running, the ones waiting. */
class SocketQueue {
  parsed = 0;
  answered = 0;
  running = false;
  readonly waiting: [IncomingMessage, ServerResponse][] = [];
  constructor(readonly guarded: boolean) {}
}

const ORIGINAL = Symbol('onIncoming');
const QUEUES = Symbol('queues');

/** node:http's parser, as far as it is used here (one per connection, pooled). */
interface Parser {
  socket: Socket | null;
  onIncoming: ((req: IncomingMessage, keepAlive: boolean) => number) | null;
  [ORIGINAL]?: (req: IncomingMessage, keepAlive: boolean) => number;
  [QUEUES]?: SocketQueues;
}

/**
 * The parser's onIncoming (it runs for each request head it parses): counts the request,
 * and past the cap returns -1, which stops the parser at that request (Node answers 400
 * and destroys the socket). One function for every connection, no closure per upgrade.
 */
function guardedOnIncoming(this: Parser, req: IncomingMessage, keepAlive: boolean): number {
  const onIncoming = this[ORIGINAL]!;
  const queues = this[QUEUES]!;
  const socket = this.socket!;
  let q = queues.of.get(socket);
  if (q === undefined) {
    // A WebSocket upgrade leaves HTTP at once: no state for it (Node's own test of it).
    const server = (socket as Socket & { server?: Server }).server;
    if ((req as IncomingMessage & { upgrade?: boolean }).upgrade && (req.method === 'CONNECT' || (server?.listenerCount('upgrade') ?? 0) > 0))
      return onIncoming(req, keepAlive);
    queues.of.set(socket, (q = new SocketQueue(true)));
  }
  if (q.parsed - q.answered >= queues.cap) return -1;
  q.parsed++;
  return onIncoming(req, keepAlive);
}

class SocketQueues {
  readonly of = new WeakMap<Socket, SocketQueue>();

  constructor(
    readonly cap: number,
    readonly handle: RequestHandler,
  ) {}

  /**
   * Count requests as the parser finds them, and refuse the one past the cap from inside
   * the parser (guardedOnIncoming), so the rest of a 64 KB read of pipelined requests is
   * never parsed (each costs node:http ~30 µs, and ~50 µs more when aborted). Without that
   * hook (a Node that no longer has it) request() counts, and past the cap destroys the
   * socket: bounded still, but the rest of that read is parsed.
   */
  guard(socket: Socket): void {
    const parser = (socket as Socket & { parser?: Parser | null }).parser;
    if (!parser || typeof parser.onIncoming !== 'function' || parser.socket !== socket) return;
    parser[ORIGINAL] = parser.onIncoming;
    parser[QUEUES] = this;
    parser.onIncoming = guardedOnIncoming;
  }

  request(req: IncomingMessage, res: ServerResponse): void {
    const socket = req.socket;
    let q = this.of.get(socket);
    if (q === undefined) this.of.set(socket, (q = new SocketQueue(false)));
    if (!q.guarded && ++q.parsed - q.answered > this.cap) {
      socket.destroy();
      return;
    }
    if (q.running) q.waiting.push([req, res]);
    else this.#run(q, req, res);
  }

  /** Run one request; its reply written (or the socket gone), the next waiting one. */
  #run(q: SocketQueue, req: IncomingMessage, res: ServerResponse): void {
    q.running = true;
    let done = false;
    const next = () => {
      if (done) return;
      done = true;
      q.answered++;
      q.running = false;
      if (req.socket.destroyed) {
        q.waiting.length = 0;
        return;
      }
      const w = q.waiting.shift();
      if (w) this.#run(q, w[0], w[1]);
    };
    // 'finish': the reply's last bytes went to the kernel; 'close': the socket went first.
    res.once('finish', next);
    res.once('close', next);
    try {
      this.handle(req, res);
    } catch {
      if (!res.headersSent) res.writeHead(500).end('internal error');
      else res.destroy();
    }
  }
}
