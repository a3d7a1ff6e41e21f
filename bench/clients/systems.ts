// How a virtual client of each system connects, calls and answers. Full clients run the
// call scenarios; bare ones (only the handshake, kept alive) run idle and storm scenarios,
// so the client side stays light enough to hold thousands of sockets per process.

import WebSocket from 'ws';
import { io as ioClient } from 'socket.io-client';
import { createBirpc } from 'birpc';
import { HubConnectionBuilder, HttpTransportType, LogLevel, Subject } from '@microsoft/signalr';
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack';
import { Packr, Unpackr, pack, unpack } from 'msgpackr';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { VolleyClient } from '../../client/index.ts';
import type { RoomState } from '../lib/game.ts';
import { acksAt, item, pump, SendWindow, type Item } from '../lib/streams.ts';

// volley-ws: Volley's server on its portable transport (the ws package), same clients.
// volley-base: another Volley checkout's compiled server and client (`--baseline DIR`, its
// dist/ built), to measure a change against the code before it in the same interleaved run.
// signalr: ASP.NET Core SignalR (bench/signalr/, MessagePack), skipped where dotnet is missing.
export type SystemName = 'volley' | 'volley-ws' | 'raw' | 'socketio' | 'socketio-uws' | 'birpc' | 'signalr' | 'volley-base';
export const SYSTEMS: SystemName[] = ['volley', 'volley-ws', 'raw', 'socketio', 'socketio-uws', 'birpc', 'signalr', 'volley-base'];
/** What runs when --systems is not given: volley-base only with --baseline. */
export const DEFAULT_SYSTEMS: SystemName[] = SYSTEMS.filter((s) => s !== 'volley-base');

// Volley's client runs compiled, as installed (like its server, servers/volley.ts): from
// the sources through tsx, esbuild's __name() wrappers made it dearer, and a slower client
// changes how replies bunch up at the server, so the server's figure moved with it.
// BENCH_VOLLEY_SRC=1 runs the sources; volley-base runs the baseline checkout's dist/.
const clients = new Map<string, Promise<typeof VolleyClient>>();
function volleyClient(system: 'volley' | 'volley-base'): Promise<typeof VolleyClient> {
  if (system === 'volley' && process.env.BENCH_VOLLEY_SRC === '1') return Promise.resolve(VolleyClient);
  const dir = system === 'volley' ? path.join(import.meta.dirname, '../..') : process.env.BENCH_BASELINE;
  if (!dir) return Promise.reject(new Error('volley-base needs --baseline DIR'));
  let loaded = clients.get(dir);
  if (!loaded) clients.set(dir, (loaded = import(pathToFileURL(path.join(dir, 'dist/client/index.js')).href).then((m) => m.VolleyClient)));
  return loaded;
}

export interface Conn {
  call(method: string, args: unknown[]): Promise<unknown>;
  /** Fire and forget (game-tick's inputs, notify-up's items). */
  notify(method: string, args: unknown[]): void;
  close(): void;
  /** stream-down: read one stream of `n` items from the server (`feed`), each to `onItem`. Systems with streams only. */
  stream?(n: number, onItem: (it: Item) => void): Promise<void>;
  /**
   * stream-up: call the server's `upload` with a stream of `n` items as its param (fewer once
   * `go()` is false), read by the handler as it arrives. Volley: an async generator as the
   * param; SignalR: a Subject for a hub method taking IAsyncEnumerable<StreamItem>.
   */
  upload?(n: number, go: () => boolean): Promise<void>;
  /** notify-up (and SignalR's upload): the items sent and acknowledged (`ack(n)` from the server). Systems with streams only. */
  readonly window?: SendWindow;
}

/** What a client answers when the server calls it. */
export interface ClientHooks {
  /** A room broadcast arrived; `t` is its send time (µs, monotonic). */
  tick(t: number): void;
  /** A server → client call was answered. */
  answered(): void;
  /** game-tick: a room state of `tick` arrived; `t` is its send time (µs, monotonic). */
  state(t: number, tick: number): void;
  /** stream-down, notify-down: an item arrived. */
  item(it: Item): void;
}

const OPEN_TIMEOUT_MS = 15_000;

function withTimeout<T>(p: Promise<T>, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: no handshake within ${OPEN_TIMEOUT_MS} ms`)), OPEN_TIMEOUT_MS);
    p.then(
      (v) => (clearTimeout(timer), resolve(v)),
      (e) => (clearTimeout(timer), reject(e)),
    );
  });
}

export function openClient(system: SystemName, port: number, uid: string, hooks: ClientHooks): Promise<Conn> {
  const answer = {
    add: (a: number, b: number) => (hooks.answered(), a + b),
    echo: (x: unknown) => (hooks.answered(), x),
    ready: (_tick: number) => (hooks.answered(), true),
  };
  switch (system) {
    case 'volley':
    case 'volley-ws':
    case 'volley-base':
      return withTimeout(volleyClient(system === 'volley-base' ? system : 'volley').then((Client) => openVolley(Client, port, uid, hooks, answer)), system);
    case 'raw':
      return withTimeout(openRaw(port, hooks, answer), system);
    case 'socketio':
    case 'socketio-uws':
      return withTimeout(openSocketIo(port, hooks, answer), system);
    case 'birpc':
      return withTimeout(openBirpc(port, hooks, answer), system);
    case 'signalr':
      return withTimeout(openSignalr(port, uid, hooks, answer), system);
  }
}

/** What the server may call on a bench client. */
interface ClientApi {
  add(a: number, b: number): number;
  echo(x: unknown): unknown;
  tick(t: number): void;
  state(s: RoomState): void;
  ready(tick: number): boolean;
  item(it: Item): void;
  ack(n: number): void;
}

type Answer = { add(a: number, b: number): number; echo(x: unknown): unknown; ready(tick: number): boolean };

async function openVolley(Client: typeof VolleyClient, port: number, uid: string, hooks: ClientHooks, answer: Answer): Promise<Conn> {
  const window = new SendWindow();
  const client: VolleyClient<any, ClientApi> = new Client<any, ClientApi>(`ws://127.0.0.1:${port}/`, {
    token: uid,
    WebSocket: WebSocket as never,
    reconnect: false,
    handlers: {
      add: (_ctx, a, b) => answer.add(a, b),
      echo: (_ctx, x) => answer.echo(x),
      tick: (_ctx, t) => hooks.tick(t),
      state: (_ctx, s) => hooks.state(s.t, s.tick),
      ready: (_ctx, tick) => answer.ready(tick),
      item: (_ctx, it) => {
        hooks.item(it);
        if (acksAt(it.seq)) client.notify('ack', it.seq + 1);
      },
      ack: (_ctx, n) => window.ack(n),
    },
  });
  await client.opened;
  // The typed proxy, as an application calls it.
  const server = client.server as Record<string, (...args: unknown[]) => Promise<unknown>>;
  return {
    call: (method, args) => server[method]!(...args),
    notify: (method, args) => client.notify(method, ...args),
    close: () => client.close(),
    stream: async (n, onItem) => {
      for await (const it of client.stream('feed', [n]) as AsyncIterable<Item>) onItem(it);
    },
    // Credit-paced by the library: the generator runs as the server's handler reads.
    upload: async (n, go) => {
      await server.upload!(
        (async function* () {
          for (let i = 0; i < n && go(); i++) yield item(i);
        })(),
      );
    },
    window,
  };
}

const packr = new Packr({ useRecords: false, moreTypes: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

/** The bare baseline client: ws + msgpackr, a Map of pending calls, nothing else. */
function openRaw(port: number, hooks: ClientHooks, answer: Answer): Promise<Conn> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: false });
  const pending = new Map<number, { resolve(v: unknown): void; reject(e: unknown): void }>();
  let nextId = 0;
  ws.on('message', (data: Buffer) => {
    const msg = unpackr.unpack(data) as unknown[];
    if (msg[0] === 1) {
      const p = pending.get(msg[1] as number);
      pending.delete(msg[1] as number);
      if (msg[2] == null) p?.resolve(msg[3]);
      else p?.reject(msg[2]);
    } else if (msg[0] === 0) {
      const params = msg[3] as unknown[];
      const result =
        msg[2] === 'add' ? answer.add(params[0] as number, params[1] as number) : msg[2] === 'ready' ? answer.ready(params[0] as number) : answer.echo(params[0]);
      ws.send(packr.pack([1, msg[1], null, result]));
    } else if (msg[0] === 2) {
      if (msg[1] === 'state') {
        const s = (msg[2] as RoomState[])[0]!;
        hooks.state(s.t, s.tick);
      }
      else hooks.tick((msg[2] as number[])[0]!);
    }
  });
  return new Promise((resolve, reject) => {
    ws.once('error', reject);
    ws.once('open', () =>
      resolve({
        call: (method, args) =>
          new Promise((res, rej) => {
            const id = nextId++ >>> 0;
            pending.set(id, { resolve: res, reject: rej });
            ws.send(packr.pack([0, id, method, args]));
          }),
        notify: (method, args) => ws.send(packr.pack([2, method, args])),
        close: () => ws.close(),
      }),
    );
  });
}

function openSocketIo(port: number, hooks: ClientHooks, answer: Answer): Promise<Conn> {
  const socket = ioClient(`http://127.0.0.1:${port}`, { transports: ['websocket'], forceNew: true, reconnection: false });
  socket.on('add', (a: number, b: number, ack: (r: number) => void) => ack(answer.add(a, b)));
  socket.on('echo', (x: unknown, ack: (r: unknown) => void) => ack(answer.echo(x)));
  socket.on('tick', (t: number) => hooks.tick(t));
  socket.on('state', (s: RoomState) => hooks.state(s.t, s.tick));
  socket.on('ready', (tick: number, ack: (r: boolean) => void) => ack(answer.ready(tick)));
  return new Promise((resolve, reject) => {
    socket.once('connect_error', reject);
    socket.once('connect', () =>
      resolve({
        call: (method, args) => socket.emitWithAck(method, ...args),
        notify: (method, args) => void socket.emit(method, ...args),
        close: () => socket.close(),
      }),
    );
  });
}

function openBirpc(port: number, hooks: ClientHooks, answer: Answer): Promise<Conn> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: false });
  const rpc = createBirpc<Record<string, (...a: unknown[]) => unknown>>(
    { add: answer.add, echo: answer.echo, ready: answer.ready, tick: (t: number) => hooks.tick(t) },
    {
      post: (data) => ws.send(data),
      on: (fn) => ws.on('message', (data) => fn(data)),
      serialize: (v) => pack(v),
      deserialize: (v) => unpack(v as Buffer),
      timeout: 10_000,
    },
  );
  return new Promise((resolve, reject) => {
    ws.once('error', reject);
    ws.once('open', () =>
      resolve({
        call: (method, args) => (rpc.$call as (m: string, ...a: unknown[]) => Promise<unknown>)(method, ...args),
        notify: (method, args) => void (rpc.$callEvent as (m: string, ...a: unknown[]) => Promise<void>)(method, ...args),
        close: () => ws.close(),
      }),
    );
  });
}

/** @microsoft/signalr over WebSocket (no negotiate round trip), MessagePack; client results answer the server's calls. */
async function openSignalr(port: number, uid: string, hooks: ClientHooks, answer: Answer): Promise<Conn> {
  const connection = new HubConnectionBuilder()
    .withUrl(`http://127.0.0.1:${port}/hub?uid=${encodeURIComponent(uid)}`, { transport: HttpTransportType.WebSockets, skipNegotiation: true })
    .withHubProtocol(new MessagePackHubProtocol())
    .configureLogging(LogLevel.None)
    .build();
  connection.on('add', (a: number, b: number) => answer.add(a, b));
  connection.on('echo', (x: unknown) => answer.echo(x));
  connection.on('ready', (tick: number) => answer.ready(tick));
  connection.on('tick', (t: number) => hooks.tick(t));
  connection.on('state', (s: RoomState) => hooks.state(s.t, s.tick));
  const window = new SendWindow();
  connection.on('item', (it: Item) => {
    hooks.item(it);
    if (acksAt(it.seq)) void connection.send('ack', it.seq + 1).catch(() => {});
  });
  connection.on('ack', (n: number) => window.ack(n));
  await connection.start();
  return {
    call: (method, args) => connection.invoke(method, ...args),
    notify: (method, args) => void connection.send(method, ...args).catch(() => {}),
    close: () => void connection.stop(),
    // A server → client stream: the hub method returns IAsyncEnumerable<StreamItem>.
    stream: (n, onItem) =>
      new Promise<void>((resolve, reject) => {
        connection.stream<Item>('feed', n).subscribe({ next: onItem, complete: resolve, error: reject });
      }),
    // A client → server stream: the hub method takes IAsyncEnumerable<StreamItem>, fed by a
    // Subject; SignalR has no flow control on it, so the hub acks as the notifications do.
    upload: async (n, go) => {
      const subject = new Subject<Item>();
      window.reset();
      const done = connection.invoke('upload', subject);
      await pump(window, (it) => subject.next(it), go, n);
      subject.complete();
      await done;
    },
    window,
  };
}

/** SignalR's handshake (JSON, record separator) asking for MessagePack, and its ping frame in MessagePack. */
const SIGNALR_HANDSHAKE = '{"protocol":"messagepack","version":1}\u001e';
const SIGNALR_PING = Buffer.from([0x02, 0x91, 0x06]);
/** Under the server's 30 s client timeout: a bare SignalR connection pings as a client does. */
const SIGNALR_PING_MS = 15_000;

// ---- bare connections (idle, storm) ---------------------------------------------------

export interface Bare {
  close(): void;
}

/**
 * Open one connection and complete the system's own handshake (Volley: the `$session`
 * message; socket.io: engine.io open + namespace connect), then stay silent. socket.io's
 * engine pings are answered, so its server keeps the socket.
 */
export function openBare(system: SystemName, port: number, uid: string): Promise<Bare> {
  const sio = system === 'socketio' || system === 'socketio-uws';
  const url = sio
    ? `ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket`
    : system === 'signalr'
      ? `ws://127.0.0.1:${port}/hub?uid=${encodeURIComponent(uid)}`
      : `ws://127.0.0.1:${port}/${system.startsWith('volley') ? `?token=${encodeURIComponent(uid)}` : ''}`;
  const ws = new WebSocket(url, { perMessageDeflate: false });
  let pinger: ReturnType<typeof setInterval> | undefined;
  // A normal close (1000): Volley ends the session at once instead of keeping it to resume.
  const bare: Bare = {
    close: () => {
      clearInterval(pinger);
      ws.close(1000);
    },
  };
  return withTimeout(
    new Promise<Bare>((resolve, reject) => {
      ws.once('error', reject);
      ws.once('close', (code) => reject(new Error(`closed ${code} during handshake`)));
      if (system.startsWith('volley')) ws.once('message', () => resolve(bare)); // $session
      else if (system === 'signalr') {
        ws.once('open', () => ws.send(SIGNALR_HANDSHAKE));
        ws.once('message', () => {
          // the handshake's answer ({} and a record separator)
          pinger = setInterval(() => ws.readyState === WebSocket.OPEN && ws.send(SIGNALR_PING), SIGNALR_PING_MS);
          pinger.unref();
          resolve(bare);
        });
      }
      else if (!sio) ws.once('open', () => resolve(bare));
      else
        ws.on('message', (data: Buffer) => {
          const text = data.toString();
          if (text[0] === '0') ws.send('40'); // engine.io open → join the default namespace
          else if (text.startsWith('40')) resolve(bare);
          else if (text === '2') ws.send('3'); // engine.io ping → pong
        });
    }),
    system,
  );
}
