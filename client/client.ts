// VolleyClient: one connection to a Volley server over the standard WebSocket API, with
// a typed proxy to the server's methods and handlers the server may call.
// Runs in browsers and Node (pass the `ws` package's WebSocket on Node 20). No node:* here.

import {
  CloseCode,
  ErrorCode,
  InboundCall,
  RpcError,
  RpcPeer,
  createProxy,
  type ArgsOf,
  type CallOptions,
  type Handlers,
  type Limits,
  type MethodName,
  type ParamsSchema,
  type Remote,
  type ResultOf,
} from '../protocol/index.ts';
import { Emitter } from './emitter.ts';

/** The part of the standard WebSocket constructor Volley uses. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocket;

export interface ClientOptions<ServerApi, ClientApi> {
  /** Sent to the server's authenticate() at the upgrade. */
  token?: string;
  /**
   * How the token travels: 'query' (`?token=`, default) or 'protocol' (a `volley.token.<t>`
   * WebSocket sub-protocol, which keeps it out of URLs and access logs; the token must
   * then be made of sub-protocol-safe characters, e.g. a JWT).
   */
  tokenIn?: 'query' | 'protocol';
  /** Methods the server may call on this client. Each gets a ClientContext first. */
  handlers?: Handlers<ClientApi, ClientContext<ServerApi>>;
  schemas?: { [K in keyof ClientApi]?: ParamsSchema };
  /** WebSocket constructor; default globalThis.WebSocket (browsers, Node 22+). */
  WebSocket?: WebSocketConstructor;
  /** Default deadline of client → server calls, in ms. */
  timeoutMs?: number;
  limits?: Partial<Limits>;
  /** A handler threw a non-RpcError (the server got INTERNAL). Default: console.error. */
  onError?(err: unknown, ctx: ClientContext<ServerApi>): void;
}

export type ConnectionState = 'connecting' | 'open' | 'closed';

export interface CloseInfo {
  code: number;
  reason: string;
}

export interface ClientEvents {
  open: undefined;
  close: CloseInfo;
  /** The transport reported an error (a close event follows). */
  error: Event;
}

export class ClientContext<ServerApi = any> extends InboundCall {
  constructor(
    id: number,
    method: string,
    readonly client: VolleyClient<ServerApi, any>,
  ) {
    super(id, method);
  }

  /** Typed proxy to the server, e.g. to call back while answering. */
  get server(): Remote<ServerApi> {
    return this.client.server;
  }
}

export class VolleyClient<ServerApi = any, ClientApi = any> extends Emitter<ClientEvents> {
  /** Typed proxy to the server: `await client.server.join('lobby')`. Not thenable. */
  readonly server: Remote<ServerApi>;
  readonly peer: RpcPeer<ClientContext<ServerApi>>;
  #ws: WebSocket;
  #state: ConnectionState = 'connecting';
  #opened: Promise<void>;
  #closedInfo: CloseInfo | undefined;

  constructor(url: string, opts: ClientOptions<ServerApi, ClientApi> = {}) {
    super();
    const WS = opts.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!WS)
      throw new TypeError('volley: no global WebSocket here; pass one, e.g. connect(url, { WebSocket }) with the ws package');
    this.peer = new RpcPeer<ClientContext<ServerApi>>({
      send: (frame) => {
        if (this.#ws.readyState === 1 /* OPEN */) this.#ws.send(frame);
      },
      handlers: (opts.handlers ?? {}) as never,
      schemas: opts.schemas as Record<string, ParamsSchema> | undefined,
      timeoutMs: opts.timeoutMs,
      limits: opts.limits,
      createContext: (id, method) => new ClientContext<ServerApi>(id, method, this),
      onViolation: (v) => this.close(CloseCode.PROTOCOL_ERROR, v.message.slice(0, 120)),
      onHandlerError: (err, ctx) => (opts.onError ? opts.onError(err, ctx) : console.error(`[volley] handler ${ctx.method} threw:`, err)),
    });
    this.server = createProxy<Remote<ServerApi>>((method, args) => this.peer.call(method, args));

    const target = new URL(url);
    let protocols: string[] | undefined;
    if (opts.token !== undefined) {
      if (opts.tokenIn === 'protocol') protocols = ['volley', `volley.token.${opts.token}`];
      else target.searchParams.set('token', opts.token);
    }
    const ws = (this.#ws = new WS(target.toString(), protocols));
    ws.binaryType = 'arraybuffer';
    this.#opened = new Promise<void>((resolve, reject) => {
      ws.onopen = () => {
        this.#state = 'open';
        resolve();
        this.emit('open', undefined);
      };
      ws.onerror = (ev) => this.emit('error', ev);
      ws.onclose = (ev) => {
        const info = { code: ev.code, reason: ev.reason };
        const wasOpen = this.#state === 'open';
        this.#state = 'closed';
        this.#closedInfo = info;
        this.peer.close(new RpcError(ErrorCode.DISCONNECTED, `connection closed (${ev.code}${ev.reason ? `: ${ev.reason}` : ''})`));
        // A browser can't see the HTTP status of a refused upgrade (401, 409): only 1006.
        if (!wasOpen) reject(new RpcError(ErrorCode.DISCONNECTED, `could not connect to ${url} (close ${ev.code})`, info));
        this.emit('close', info);
      };
    });
    // Nobody may await `opened` (fire-and-forget use); its rejection is also reported via 'close'.
    this.#opened.catch(() => {});
    ws.onmessage = (ev) => {
      if (typeof ev.data === 'string') this.close(CloseCode.PROTOCOL_ERROR, 'text frames are not part of the protocol');
      else this.peer.receive(ev.data as ArrayBuffer);
    };
  }

  get state(): ConnectionState {
    return this.#state;
  }

  /** Resolves once the socket is open; rejects DISCONNECTED if it closes first (e.g. 401). */
  get opened(): Promise<void> {
    return this.#opened;
  }

  /** Code and reason of the close, once closed. */
  get closeInfo(): CloseInfo | undefined {
    return this.#closedInfo;
  }

  /** Call a server method by name. */
  call<M extends MethodName<ServerApi>>(method: M, args: ArgsOf<ServerApi, M>, opts?: CallOptions): Promise<ResultOf<ServerApi, M>> {
    return this.peer.call(method, args as unknown as unknown[], opts) as Promise<ResultOf<ServerApi, M>>;
  }

  /** A proxy whose calls carry these options: `client.with({ timeoutMs: 500, signal }).move(3)`. */
  with(opts: CallOptions): Remote<ServerApi> {
    return createProxy<Remote<ServerApi>>((method, args) => this.peer.call(method, args, opts));
  }

  /** Fire and forget: no reply, no error if the server has no such method. */
  notify<M extends MethodName<ServerApi>>(method: M, ...args: ArgsOf<ServerApi, M>): void {
    this.peer.notify(method, args);
  }

  /** Close the connection; pending calls reject DISCONNECTED. */
  close(code: number = CloseCode.NORMAL, reason = ''): void {
    this.peer.flush();
    if (this.#ws.readyState <= 1) this.#ws.close(code, reason);
  }
}

/** Connect and wait until the socket is open. Rejects DISCONNECTED if the server refuses. */
export async function connect<ServerApi = any, ClientApi = any>(
  url: string,
  opts: ClientOptions<NoInfer<ServerApi>, NoInfer<ClientApi>> = {},
): Promise<VolleyClient<ServerApi, ClientApi>> {
  const client = new VolleyClient<ServerApi, ClientApi>(url, opts);
  await client.opened;
  return client;
}
