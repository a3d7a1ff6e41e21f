// The limit: uWebSockets.js + msgpackr speaking msgpack-rpc with no framework at all. One
// frame per message, no ids beyond a counter, no checks. Deadlines only where the scenario
// asks for them (game-tick's server calls), as a timer per call.

import type * as UWS from 'uws-native-compat';
import { Packr, Unpackr } from 'msgpackr';
import { loadNativeUws } from '../../server/transports/uws.ts';
import { game, gameRoomSize, handled, host, type Done } from './host.ts';
import { roomOf } from '../lib/game.ts';

// The same native binary Volley's uws transport loads (never the package's JS shim).
const uws = loadNativeUws().native?.uws ?? (() => { throw new Error(`no native uWebSockets.js: ${loadNativeUws().why}`); })();
const packr = new Packr({ useRecords: false, moreTypes: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });
const inRoom = process.env.BENCH_ROOM === '1';

type Sock = UWS.WebSocket<{ n: number }>;
const sockets: Sock[] = [];
const pending = new Map<number, Done>();
let nextId = 0;
let arrivals = 0;

function answer(method: unknown, params: unknown[]): unknown {
  switch (method) {
    case 'add':
      handled.count++;
      return (params[0] as number) + (params[1] as number);
    case 'act':
      game.acts++;
      return { ok: true, tick: game.ticks };
    default:
      handled.count++;
      return params[0];
  }
}

const app = uws.App().ws<{ n: number }>('/*', {
  maxPayloadLength: 1024 * 1024,
  idleTimeout: 60,
  open: (ws) => {
    sockets.push(ws);
    if (inRoom) ws.subscribe('all');
    if (gameRoomSize > 0) ws.subscribe(roomOf(arrivals++, gameRoomSize));
  },
  message: (ws, data) => {
    const msg = unpackr.unpack(new Uint8Array(data)) as unknown[];
    if (msg[0] === 0) {
      ws.send(packr.pack([1, msg[1], null, answer(msg[2], msg[3] as unknown[])]), true);
    } else if (msg[0] === 1) {
      const done = pending.get(msg[1] as number);
      pending.delete(msg[1] as number);
      done?.(msg[2] == null ? undefined : msg[2]);
    } else if (msg[0] === 2 && msg[1] === 'input') {
      game.inputs++;
    }
  },
  close: (ws) => {
    const i = sockets.indexOf(ws);
    if (i >= 0) sockets.splice(i, 1);
  },
});

function send(ws: Sock, method: string, args: unknown[], done: Done): void {
  const id = nextId++ >>> 0;
  pending.set(id, done);
  // Outside uWS callbacks a send is only batched when corked.
  ws.cork(() => ws.send(packr.pack([0, id, method, args]), true));
}

function sendWithDeadline(ws: Sock, method: string, args: unknown[], ms: number, done: Done): void {
  const id = nextId++ >>> 0;
  const timer = setTimeout(() => {
    pending.delete(id);
    done(new Error('timeout'));
  }, ms);
  pending.set(id, (err) => {
    clearTimeout(timer);
    done(err);
  });
  ws.cork(() => ws.send(packr.pack([0, id, method, args]), true));
}

host({
  listen: () =>
    new Promise((resolve, reject) =>
      app.listen('127.0.0.1', 0, (s) => (s ? resolve(uws.us_socket_local_port(s)) : reject(new Error('listen failed')))),
    ),
  clientCount: () => sockets.length,
  call: (i, method, args, done) => send(sockets[i]!, method, args, done),
  callAll: (method, args, done) => {
    // Encoded per socket: every call has its own id.
    let left = sockets.length;
    let failed: unknown;
    for (const ws of sockets)
      send(ws, method, args, (err) => {
        if (err) failed = err;
        if (--left === 0) done(failed);
      });
  },
  broadcast: (t) => app.publish('all', packr.pack([2, 'tick', [t]]), true),
  roomNotify: (name, state) => app.publish(name, packr.pack([2, 'state', [state]]), true),
  callPlayer: (i, tick, ms, done) => sendWithDeadline(sockets[i]!, 'ready', [tick], ms, done),
});
