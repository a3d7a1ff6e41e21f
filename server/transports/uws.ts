// The native uWebSockets.js transport: the fast path, and the one file in Volley that
// loads uWebSockets.js.
//
// Never through a package's main file: the build Volley used to depend on silently falls
// back to a pure-JS shim when its binary does not match the Node ABI, and that shim
// answers plain HTTP and never completes a WebSocket handshake (every client hangs). So
// the exact `.node` binary for this platform, arch and ABI is loaded directly, or none.

import { createRequire } from 'node:module';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type * as UWS from 'uws-native-compat';
import { upgradeRequest, offersVolley, VOLLEY_PROTOCOL, type UpgradeRequest } from '../upgradeRequest.ts';
import {
  AnswerOnce,
  statusLine,
  type HttpHandler,
  type HttpReply,
  type HttpRequestInfo,
  type HttpRoutes,
  type TlsOptions,
  type Transport,
  type TransportEvents,
  type TransportOptions,
  type TransportSocket,
} from './transport.ts';

export type Uws = typeof UWS;

const require = createRequire(import.meta.url);

/**
 * Where to look, in order: an official build the user installed under its own name
 * (`npm i uNetworking/uWebSockets.js#v20.x`), then the two registry republishes under the
 * names the README's opt-in commands install them as (README, "Transports").
 */
export const UWS_PACKAGES = ['uWebSockets.js', 'uws-native-modern', 'uws-native-compat'] as const;

export interface NativeUws {
  uws: Uws;
  /** Package the binary came from. */
  from: string;
  /** Path of the loaded `.node` file. */
  binary: string;
}

let loaded: { native: NativeUws | undefined; why: string } | undefined;

/** The native binary if one loads here (memoised), and why not otherwise. */
export function loadNativeUws(): { native: NativeUws | undefined; why: string } {
  if (loaded) return loaded;
  const file = `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`;
  const reasons: string[] = [];
  for (const pkg of UWS_PACKAGES) {
    let main: string;
    try {
      main = require.resolve(pkg); // resolves the path only: the main file is not run
    } catch {
      reasons.push(`${pkg}: not installed`);
      continue;
    }
    const dir = dirname(main);
    // Official builds keep binaries next to uws.js; the compat republish in binaries/.
    for (const candidate of [join(dir, file), join(dir, 'binaries', file), join(dir, '..', 'binaries', file)]) {
      try {
        const uws = require(candidate) as Uws;
        if (typeof uws.App !== 'function') throw new Error('not a uWebSockets.js binary');
        return (loaded = { native: { uws, from: pkg, binary: candidate }, why: '' });
      } catch (err) {
        const msg = (err as Error).message.split('\n')[0]!;
        if (!/Cannot find module/.test(msg)) reasons.push(`${pkg}: ${msg}`);
      }
    }
    if (!reasons.some((r) => r.startsWith(`${pkg}:`))) reasons.push(`${pkg}: no ${file}`);
  }
  const none = reasons.every((r) => r.endsWith(': not installed'));
  return (loaded = { native: undefined, why: `${reasons.join('; ')}${none ? `. ${nativeHint()}` : ''}` });
}

/** The README's opt-in commands (README, "Transports"): one build per platform family. */
export const NATIVE_INSTALL = {
  modern: 'npm install uws-native-modern@npm:@btc-vision/uwebsockets.js@20.57.0',
  compat: 'npm install uws-native-compat@npm:@trufflesuite/uws-js-unofficial@20.30.0-unofficial.0',
} as const;

/**
 * Which opt-in would load here, said when none is installed: the modern build for Node 20–25
 * on glibc ≥ 2.38, macOS and Windows; the compat build for Node 20 on an older glibc; none
 * for musl. Read once, at the first server's start.
 */
function nativeHint(): string {
  const to = 'for the native engine';
  if (process.platform !== 'linux') return `${NATIVE_INSTALL.modern} ${to}`;
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
  const glibc = header?.glibcVersionRuntime;
  if (glibc === undefined) return 'no uWebSockets.js build for musl (Alpine): the ws transport it is';
  const [major = 0, minor = 0] = glibc.split('.').map(Number);
  if (major > 2 || (major === 2 && minor >= 38)) return `${NATIVE_INSTALL.modern} ${to}`;
  if (process.versions.modules === '115') return `${NATIVE_INSTALL.compat} ${to} (glibc ${glibc})`;
  return `no uWebSockets.js build for Node ${process.versions.node} on glibc ${glibc} (Node 20, or glibc 2.38+, has one)`;
}

type Socket<Data> = UWS.WebSocket<Data> & TransportSocket<Data>;
/** listen(host, port, options, cb): the binary takes it; the typings only list it without host. */
type ListenWithHost = (host: string, port: number, options: number, cb: (socket: UWS.us_listen_socket | false) => void) => void;

/** One upgrade on uWebSockets.js: answered on its HttpResponse, which stays valid until then. */
class UwsUpgrade<Data> extends AnswerOnce<Data> {
  constructor(
    request: UpgradeRequest,
    readonly res: UWS.HttpResponse,
    readonly key: string,
    readonly protocol: string,
    readonly extensions: string,
    readonly context: UWS.us_socket_context_t,
  ) {
    super(request);
  }
  protected answerAccept(data: Data): void {
    this.res.cork(() => this.res.upgrade<Data>(data, this.key, this.protocol, this.extensions, this.context));
  }
  protected answerRefuse(status: number, body: string): void {
    this.res.cork(() => this.res.writeStatus(statusLine(status)).writeHeader('connection', 'close').end(body));
  }
}

export function uwsTransport<Data>(native: Uws, opts: TransportOptions, events: TransportEvents<Data>): Transport<Data> {
  const app = opts.tls ? sslApp(native, opts.tls) : native.App();
  let listenSocket: UWS.us_listen_socket | undefined;

  app.ws<Data>(opts.path, {
    maxPayloadLength: opts.maxPayloadLength,
    idleTimeout: opts.idleTimeoutSec,
    sendPingsAutomatically: true,
    // uWebSockets.js drops sends past maxBackpressure; a dropped reply would hang a
    // caller, so a reader that far behind is disconnected instead.
    maxBackpressure: opts.maxBackpressure,
    closeOnBackpressureLimit: 1,
    upgrade: (res, req, context) => {
      // Everything from req must be read now: it is invalid once this callback returns.
      const headers: Record<string, string> = Object.create(null);
      req.forEach((k, v) => {
        headers[k] = headers[k] === undefined ? v : `${headers[k]}, ${v}`;
      });
      const key = req.getHeader('sec-websocket-key');
      const extensions = req.getHeader('sec-websocket-extensions');
      const request = upgradeRequest(
        req.getUrl(),
        req.getQuery() ?? '',
        headers,
        Buffer.from(res.getRemoteAddressAsText()).toString(),
        opts.trustProxy,
      );
      const protocol = offersVolley(headers) ? VOLLEY_PROTOCOL : '';
      const pending = new UwsUpgrade<Data>(request, res, key, protocol, extensions, context);
      res.onAborted(() => pending.abort());
      events.upgrade(pending);
    },
    open: (ws) => events.open(ws as Socket<Data>),
    message: (ws, data, isBinary) => events.message(ws as Socket<Data>, data, isBinary),
    close: (ws, code, reason) => events.close(ws as Socket<Data>, code, Buffer.from(reason).toString()),
  });

  const route = (method: 'get' | 'post') => (path: string, handler: HttpHandler) => {
    app[method](path, (res, req) => {
      const headers: Record<string, string> = Object.create(null);
      req.forEach((k, v) => (headers[k] = v));
      const info = { method: method.toUpperCase(), url: req.getUrl(), query: new URLSearchParams(req.getQuery() ?? ''), headers };
      const reply = new RouteReply(res);
      res.onAborted(() => (reply.aborted = true));
      // Run and answer on a later turn, never inside this callback: uWebSockets.js parses a
      // socket's pipelined requests back to back while each is answered at once, and
      // closes the socket when one arrives while a reply is pending. So a socket has one
      // request at a time, and a pipelining one is closed before its requests cost a thing.
      setImmediate(runRoute, handler, info, reply);
    });
  };
  const routes: HttpRoutes = { get: route('get'), post: route('post') };

  return {
    name: 'uws',
    routes,
    listen(port, host) {
      return new Promise((resolve, reject) => {
        const done = (socket: UWS.us_listen_socket | false) => {
          if (!socket) return void listenError(port, host).then(reject);
          listenSocket = socket;
          resolve(native.us_socket_local_port(socket as never));
        };
        // uSockets sets SO_REUSEPORT unless asked for an exclusive port.
        const exclusive = opts.reusePort ? 0 : 1; // LIBUS_LISTEN_DEFAULT / LIBUS_LISTEN_EXCLUSIVE_PORT
        if (host) (app as unknown as { listen: ListenWithHost }).listen(host, port, exclusive, done);
        else app.listen(port, exclusive, done);
      });
    },
    stopListening() {
      if (listenSocket) native.us_listen_socket_close(listenSocket);
      listenSocket = undefined;
    },
    publish(topic, frame) {
      app.publish(topic, frame, true);
    },
  };
}

/**
 * uWebSockets.js says only that listen failed; the error a user can act on (EADDRINUSE,
 * EACCES, EADDRNOTAVAIL) comes from trying the same bind once with node:net, as the ws
 * transport's listen would have reported it. Paid only on a failed listen.
 */
function listenError(port: number, host: string | undefined): Promise<Error> {
  return new Promise((resolve) => {
    const probe = createNetServer();
    probe.once('error', (err: NodeJS.ErrnoException) => resolve(err)); // "listen EADDRINUSE: address already in use …", code EADDRINUSE
    probe.listen({ port, host, exclusive: true }, () => probe.close(() => resolve(new Error(`could not listen on ${host ?? '*'}:${port}`))));
  });
}

const INTERNAL_ERROR: HttpReply = { status: 500, body: 'internal error' };
const NO_BODY = new Uint8Array(0);

async function runRoute(handler: HttpHandler, info: HttpRequestInfo, reply: RouteReply): Promise<void> {
  if (reply.aborted) return;
  let out: HttpReply;
  try {
    out = await handler(info);
  } catch {
    out = INTERNAL_ERROR;
  }
  try {
    reply.send(out);
  } catch {
    if (!reply.aborted) reply.res.close(); // a reply uWebSockets.js refused (a header it cannot write)
  }
}

/**
 * One route's reply, written as the socket takes it (tryEnd, the rest from onWritable): until
 * it is all written it is pending, so a client that does not read holds one reply here, not
 * one per request it sends (end() would copy each whole reply into the socket's buffer).
 */
class RouteReply {
  aborted = false;
  #body: Uint8Array = NO_BODY;
  /** The response's write offset where the body starts. */
  #start = 0;

  constructor(readonly res: UWS.HttpResponse) {}

  send(reply: HttpReply): void {
    if (this.aborted) return;
    const body = reply.body === undefined ? NO_BODY : typeof reply.body === 'string' ? Buffer.from(reply.body) : reply.body;
    const res = this.res;
    res.cork(() => {
      res.writeStatus(statusLine(reply.status ?? 200));
      for (const [k, v] of Object.entries(reply.headers ?? {})) res.writeHeader(k, v);
      this.#start = res.getWriteOffset();
      const [ok, done] = res.tryEnd(body, body.byteLength);
      if (ok || done) return;
      this.#body = body;
      res.onWritable((offset) => this.#more(offset));
    });
  }

  #more(offset: number): boolean {
    if (this.aborted) return true;
    const [ok, done] = this.res.tryEnd(this.#body.subarray(offset - this.#start), this.#body.byteLength);
    if (done) this.#body = NO_BODY;
    return ok;
  }
}

/**
 * uWebSockets.js reads TLS key and certificate from files only. Volley takes PEM text
 * (what secret stores hand out), so it writes them to a private temporary directory for
 * the moment SSLApp reads them, and removes it at once.
 */
function sslApp(native: Uws, tls: TlsOptions): UWS.TemplatedApp {
  const dir = mkdtempSync(join(tmpdir(), 'volley-tls-'));
  try {
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    writeFileSync(key, tls.key, { mode: 0o600 });
    writeFileSync(cert, tls.cert, { mode: 0o600 });
    const options: UWS.AppOptions = { key_file_name: key, cert_file_name: cert };
    if (tls.passphrase !== undefined) options.passphrase = tls.passphrase;
    return native.SSLApp(options);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
