// What one idle connection costs in a server's JS heap, by kind of object: opens A then
// A+B bare connections to a system's bench server, takes a heap snapshot at each count and
// prints the difference per connection. Also lists objects whose hidden class (map) is
// their own: a per-connection shape is a sign of per-connection closures or object spread.
//   npx tsx bench/lib/heapDiff.ts [volley|volley-ws|raw|socketio|socketio-uws|birpc] [--first 500] [--more 1000]

import { fork } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from './ipc.ts';
import { openBare, type Bare, type SystemName } from '../clients/systems.ts';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]]; edge_fields: string[]; edge_types: [string[]] } };
  nodes: number[];
  edges: number[];
  strings: string[];
}

/** Per object kind: count and self bytes. Strings, code and internals are grouped. */
function byKind(s: Snapshot): Map<string, { n: number; size: number }> {
  const f = s.snapshot.meta.node_fields;
  const types = s.snapshot.meta.node_types[0];
  const [ti, ni, si] = [f.indexOf('type'), f.indexOf('name'), f.indexOf('self_size')];
  const out = new Map<string, { n: number; size: number }>();
  for (let i = 0; i < s.nodes.length; i += f.length) {
    const type = types[s.nodes[i + ti]!]!;
    const name = s.strings[s.nodes[i + ni]!]!;
    const key = type === 'object' ? name : type === 'closure' ? 'closure' : type.includes('string') ? '(string)' : `(${type}) ${name.slice(0, 40)}`;
    const e = out.get(key) ?? { n: 0, size: 0 };
    e.n++;
    e.size += s.nodes[i + si]!;
    out.set(key, e);
  }
  return out;
}

/** Objects that are the only user of their hidden class, grouped by their property names. */
function ownShapes(s: Snapshot): Map<string, number> {
  const f = s.snapshot.meta.node_fields;
  const ef = s.snapshot.meta.edge_fields;
  const types = s.snapshot.meta.node_types[0];
  const etypes = s.snapshot.meta.edge_types[0];
  const [ti, ni, eci] = [f.indexOf('type'), f.indexOf('name'), f.indexOf('edge_count')];
  const users = new Map<number, number[]>();
  const props = new Map<number, string[]>();
  let e = 0;
  for (let i = 0; i < s.nodes.length; i += f.length) {
    const isObject = types[s.nodes[i + ti]!] === 'object';
    for (let k = 0; k < s.nodes[i + eci]!; k++, e += ef.length) {
      if (!isObject) continue;
      const et = etypes[s.edges[e]!];
      const name = s.strings[s.edges[e + 1]!];
      if (et === 'internal' && name === 'map') (users.get(s.edges[e + 2]!) ?? users.set(s.edges[e + 2]!, []).get(s.edges[e + 2]!)!).push(i);
      else if (et === 'property') (props.get(i) ?? props.set(i, []).get(i)!).push(name!);
    }
  }
  const out = new Map<string, number>();
  for (const list of users.values()) {
    if (list.length !== 1) continue;
    const i = list[0]!;
    const key = `${s.strings[s.nodes[i + ni]!]} {${(props.get(i) ?? []).join(', ').slice(0, 160)}}`;
    out.set(key, (out.get(key) ?? 0) + 1);
  }
  return out;
}

async function main(): Promise<void> {
  const system = (process.argv[2] ?? 'volley') as SystemName;
  const arg = (name: string, d: number) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? Number(process.argv[i + 1]) : d;
  };
  const first = arg('first', 500);
  const more = arg('more', 1000);
  const file = fileURLToPath(new URL(`../servers/${system === 'socketio-uws' ? 'socketio' : system === 'volley-ws' ? 'volley' : system}.ts`, import.meta.url));
  const server = fork(file, [], {
    execArgv: ['--import', import.meta.resolve('tsx'), '--expose-gc'],
    env: { ...process.env, BENCH_ENGINE: system === 'socketio-uws' ? 'uws' : '', VOLLEY_TRANSPORT: system === 'volley-ws' ? 'ws' : '' },
  });
  const conns: Bare[] = [];
  let uid = 0;
  const { port } = await request<{ port: number }>(server, 'listen');
  const open = async (n: number) => {
    for (let done = 0; done < n; done += 50)
      conns.push(...(await Promise.all(Array.from({ length: Math.min(50, n - done) }, () => openBare(system, port, `u${uid++}`)))));
  };
  const snap = async (name: string) => {
    await new Promise((r) => setTimeout(r, 500));
    const p = path.join(os.tmpdir(), `volley-heapdiff-${process.pid}-${name}.heapsnapshot`);
    await request(server, 'heapsnap', { path: p });
    const s = JSON.parse(readFileSync(p, 'utf8')) as Snapshot;
    rmSync(p);
    return s;
  };
  try {
    await open(first);
    const a = await snap('a');
    const before = byKind(a);
    await open(more);
    const b = await snap('b');
    const rows = [...byKind(b)].map(([k, v]) => ({
      k,
      n: (v.n - (before.get(k)?.n ?? 0)) / more,
      bytes: (v.size - (before.get(k)?.size ?? 0)) / more,
    }));
    const total = rows.reduce((s, r) => s + r.bytes, 0);
    console.log(`${system}: ${total.toFixed(0)} bytes of JS heap per connection (${first} → ${first + more} connections)`);
    for (const r of rows.filter((r) => Math.abs(r.bytes) >= 8).sort((x, y) => y.bytes - x.bytes))
      console.log(`${r.bytes.toFixed(0).padStart(7)} B ${r.n.toFixed(2).padStart(6)}/conn  ${r.k}`);
    console.log('objects with a hidden class of their own (count):');
    for (const [k, n] of [...ownShapes(b)].filter(([, n]) => n >= more / 2).sort((x, y) => y[1] - x[1])) console.log(`${String(n).padStart(7)}  ${k}`);
  } finally {
    for (const c of conns) c.close();
    server.kill();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
