// A Volley server in its own process for test/codec-live.test.ts, so the test can read
// this process's heap after a forced GC (run with --expose-gc) while an attacker sends
// decode-amplification calls. Talks to the test over IPC: {ready: port}, {heap} → bytes.

import { RpcError } from '../server/index.ts';
import { startServer } from './helpers.ts';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');

const held: unknown[] = [];
const errors: string[] = [];
let release!: () => void;
const gate = new Promise<void>((r) => (release = r));

function deepCause(n: number): Error {
  let e = new Error('bottom');
  for (let i = 0; i < n; i++) e = new Error(`level ${i}`, { cause: e });
  return e;
}

const h = await startServer({
  resumeWindowMs: 0,
  rateLimit: false,
  onError: (err) => errors.push(String(err)),
  handlers: {
    add: (_c: unknown, a: number, b: number) => {
      if (typeof a !== 'number' || typeof b !== 'number') throw new RpcError('NOT_NUMBERS', `${typeof a} + ${typeof b}`);
      return a + b;
    },
    // An ordinary async handler that keeps its params while it runs (issue 9 #1).
    hold: async (_c: unknown, v: unknown) => {
      held.push(v);
      await gate;
      return 'held';
    },
    echo: (_c: unknown, v: unknown) => v,
    undef: () => ({ a: undefined, list: [1, undefined] }),
    // A stored Error with a 40-deep cause, loaded by another player (issue 9 #5).
    load: () => ({ saved: deepCause(40) }),
  },
});

process.on('message', (m: { op: string }) => {
  if (m.op === 'heap') {
    for (let i = 0; i < 3; i++) gc();
    process.send!({ heap: process.memoryUsage().heapUsed, held: held.length, errors });
  } else if (m.op === 'stop') {
    release();
    void h.close().then(() => process.exit(0));
  }
});
process.send!({ ready: h.port });
