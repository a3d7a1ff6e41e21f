// What observability costs the server, per call, in the call-small shape (one small call in
// flight per connection). Two measurements:
//
//  1. engine: a server-side RpcPeer fed pre-encoded request frames in a loop, no sockets:
//     the JS work of one call (decode, dispatch, handler, encode, reply) with observe off,
//     metrics on, metrics + tracing (API only, no SDK). The worst case for the ratio, since
//     the socket work that dominates a real call is left out.
//  2. sockets: a real server in this process, clients in a child process; server CPU
//     (process.cpuUsage) per call served, modes alternated round by round, medians kept.
//
//   npx tsx bench/observe-overhead.ts [--rounds 5] [--seconds 3] [--conns 50]

import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as otel from '@opentelemetry/api';
import { Registry } from 'prom-client';
import { encode, REQUEST, RpcPeer, InboundCall } from '../protocol/index.ts';
import { createServer } from '../server/index.ts';
import { ServerObserver, type ObserveOptions } from '../server/observe/index.ts';

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const ROUNDS = arg('rounds', 5);
const SECONDS = arg('seconds', 3);
const CONNS = arg('conns', 50);

type Mode = 'off' | 'metrics' | 'metrics+tracing';
const MODES: Mode[] = ['off', 'metrics', 'metrics+tracing'];
const observeFor = (mode: Mode): ObserveOptions | undefined =>
  mode === 'off' ? undefined : mode === 'metrics' ? { registry: new Registry() } : { registry: new Registry(), tracing: otel };

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const add = (_ctx: unknown, a: number, b: number) => a + b;

// ---- 1. engine loop ------------------------------------------------------------------

async function engineNsPerCall(mode: Mode, calls: number): Promise<number> {
  const opts = observeFor(mode);
  const obs = opts ? new ServerObserver(opts, ['add']) : undefined;
  const handlers = obs ? obs.wrapHandlers(new Map([['add', add]])) : new Map([['add', add]]);
  let sent = 0;
  const peer = new RpcPeer({
    send: () => void sent++,
    handlers,
    observer: obs,
    createContext: obs ? (id, method) => obs.began(new InboundCall(id, method)) : (id, method) => new InboundCall(id, method),
  });
  const frames = Array.from({ length: 1024 }, (_, i) => encode([REQUEST, i, 'add', [i, 2]]));
  // CPU time, not wall time: on a shared machine the wall clock counts other processes too.
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < calls; i++) {
    obs?.frameIn(frames[i & 1023]!.byteLength); // what the server's message handler reports
    peer.receive(frames[i & 1023]!); // answers a synchronous handler before it returns
    // Let the engine's queued flush microtasks run, as they do after each socket callback.
    if ((i & 63) === 63) await null;
  }
  const cpu = process.cpuUsage(cpu0);
  const ns = ((cpu.user + cpu.system) * 1000) / calls;
  if (sent < calls) throw new Error('replies missing');
  return ns;
}

// ---- 2. sockets ----------------------------------------------------------------------

async function socketRound(mode: Mode): Promise<number> {
  let served = 0;
  const server = createServer({
    authenticate: (req) => req.token ?? null,
    handlers: { add: (_ctx: unknown, a: number, b: number) => (served++, a + b) },
    observe: observeFor(mode),
    rateLimit: false,
  });
  const port = await server.listen(0, '127.0.0.1');
  const child = fork(fileURLToPath(import.meta.url), ['--client', String(port), String(CONNS), String(SECONDS + 1)], {
    execArgv: ['--import', 'tsx'],
  });
  await new Promise<void>((r) => child.once('message', () => r())); // clients connected and running
  await new Promise((r) => setTimeout(r, 500)); // warm-up
  const cpu0 = process.cpuUsage();
  const calls0 = served;
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  const cpu = process.cpuUsage(cpu0);
  const calls = served - calls0;
  await new Promise<void>((r) => child.once('exit', () => r()));
  await server.close({ graceMs: 0 });
  return (cpu.user + cpu.system) / calls;
}

async function clientMain(port: number, conns: number, seconds: number): Promise<void> {
  const { connect } = await import('../client/index.ts');
  const { default: WebSocket } = await import('ws');
  const clients = await Promise.all(Array.from({ length: conns }, (_, i) => connect(`ws://127.0.0.1:${port}/`, { token: `c${i}`, WebSocket: WebSocket as never })));
  const end = Date.now() + seconds * 1000;
  process.send!('ready');
  await Promise.all(
    clients.map(async (c) => {
      while (Date.now() < end) await c.call('add', [1, 2] as never);
    }),
  );
  for (const c of clients) c.close();
  setTimeout(() => process.exit(0), 100);
}

if (process.argv[2] === '--client') {
  await clientMain(Number(process.argv[3]), Number(process.argv[4]), Number(process.argv[5]));
} else {
  const engine: Record<Mode, number[]> = { off: [], metrics: [], 'metrics+tracing': [] };
  if (!process.argv.includes('--sockets-only')) {
  for (const m of MODES) await engineNsPerCall(m, 200_000); // warm up every path
  for (let r = 0; r < ROUNDS * 3; r++) for (const m of MODES) engine[m].push(await engineNsPerCall(m, 300_000));
  console.log('engine loop, CPU ns per call (median of %d):', ROUNDS * 3);
  for (const m of MODES) console.log(`  ${m.padEnd(16)} ${median(engine[m]).toFixed(0)} ns  (+${(median(engine[m]) - median(engine.off)).toFixed(0)} ns, ${((median(engine[m]) / median(engine.off) - 1) * 100).toFixed(1)}%)`);
  }
  if (process.argv.includes('--engine-only')) process.exit(0);

  const sockets: Record<Mode, number[]> = { off: [], metrics: [], 'metrics+tracing': [] };
  for (let r = 0; r < ROUNDS; r++)
    for (const m of MODES) {
      const us = await socketRound(m);
      sockets[m].push(us);
      console.log(`  round ${r + 1} ${m}: ${us.toFixed(2)} µs/call`);
    }
  console.log('sockets, server CPU µs per call (median of %d, %d conns, call-small):', ROUNDS, CONNS);
  for (const m of MODES) console.log(`  ${m.padEnd(16)} ${median(sockets[m]).toFixed(2)} µs  (${((median(sockets[m]) / median(sockets.off) - 1) * 100).toFixed(1)}%)`);
}
