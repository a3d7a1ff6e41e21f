// birpc over the ws package, msgpackr on the wire (same bytes class as the others).

import { WebSocketServer, type WebSocket } from 'ws';
import { createBirpc, type BirpcReturn } from 'birpc';
import { pack, unpack } from 'msgpackr';
import { handled, host } from './host.ts';

interface ClientFns {
  add(a: number, b: number): number;
  echo(x: unknown): unknown;
  tick(t: number): void;
}
type Rpc = BirpcReturn<ClientFns>;

const peers: Rpc[] = [];
const functions = {
  add: (a: number, b: number) => {
    handled.count++;
    return a + b;
  },
  echo: (x: unknown) => {
    handled.count++;
    return x;
  },
};

function attach(ws: WebSocket): void {
  const rpc = createBirpc<ClientFns, typeof functions>(functions, {
    post: (data) => ws.send(data),
    on: (fn) => ws.on('message', (data) => fn(data)),
    serialize: (v) => pack(v),
    deserialize: (v) => unpack(v as Buffer),
    timeout: 10_000,
  });
  peers.push(rpc);
  ws.on('close', () => {
    const i = peers.indexOf(rpc);
    if (i >= 0) peers.splice(i, 1);
    rpc.$close();
  });
}

let wss: WebSocketServer;

host({
  listen: () =>
    new Promise((resolve) => {
      wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false }, () =>
        resolve((wss.address() as { port: number }).port),
      );
      wss.on('connection', attach);
    }),
  clientCount: () => peers.length,
  call: (i, method, args, done) => {
    (peers[i]!.$call as (m: string, ...a: unknown[]) => Promise<unknown>)(method, ...args).then(() => done(), done);
  },
  callAll: (method, args, done) => {
    Promise.all(peers.map((p) => (p.$call as (m: string, ...a: unknown[]) => Promise<unknown>)(method, ...args))).then(
      () => done(),
      done,
    );
  },
  broadcast: (t) => {
    for (const p of peers) void p.$callEvent('tick', t);
  },
  // No rooms: game-tick is not run against birpc (bench/schedule.ts).
  roomNotify: () => {
    throw new Error('birpc has no rooms');
  },
  callPlayer: (_i, _tick, _ms, done) => done(new Error('birpc has no game-tick')),
});
