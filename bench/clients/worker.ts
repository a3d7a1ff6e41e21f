// A client process: holds many connections of one system and drives client-side load.
// The orchestrator forks several of these; each reports its own CPU time, call count and
// latency histogram for the measured window.

import { serve } from '../lib/ipc.ts';
import { encodeHistogram, newHistogram } from '../lib/histogram.ts';
import { nowUs, objectPayload } from '../lib/payload.ts';
import { GAME } from '../lib/game.ts';
import { pump, STREAMS, watchWindows, type Item } from '../lib/streams.ts';
import { openBare, openClient, type Bare, type Conn, type SystemName } from './systems.ts';

/** Bounds on every client loop, besides its time limit. */
const MAX_CALLS = 50_000_000;

let conns: Conn[] = [];
let bares: Bare[] = [];
let hist = newHistogram();
let count = 0;
let errors = 0;
let firstError: string | undefined;
let cpuMark = process.cpuUsage();
let stopAt = 0;
let inFlight = 0;
let issued = 0;
let gameTimer: ReturnType<typeof setInterval> | undefined;
let windowTimer: ReturnType<typeof setInterval> | undefined;
/** game-tick, since the last mark: states received per tick number, `act` calls completed. */
let states = new Map<number, number>();
let acts = 0;

const hooks = {
  tick(t: number) {
    hist.recordValue(Math.max(1, nowUs() - t));
    count++;
  },
  answered() {
    count++;
  },
  state(t: number, tick: number) {
    hist.recordValue(Math.max(1, nowUs() - t));
    states.set(tick, (states.get(tick) ?? 0) + 1);
  },
  item(it: Item) {
    hist.recordValue(Math.max(1, nowUs() - it.t));
    count++;
  },
};

function noteError(err: unknown): void {
  errors++;
  firstError ??= err instanceof Error ? err.message : String(err);
}

/** Run `fn` over 0..n-1 with at most `concurrency` at once. */
async function pool(n: number, concurrency: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(n, concurrency) }, async () => {
    while (next < n) await fn(next++);
  });
  await Promise.all(lanes);
}

function startLoad(method: string, args: unknown[], inflight: number): void {
  const loop = (conn: Conn): void => {
    if (Date.now() >= stopAt || issued >= MAX_CALLS) return;
    issued++;
    inFlight++;
    const t0 = nowUs();
    conn.call(method, args).then(
      () => {
        inFlight--;
        hist.recordValue(Math.max(1, nowUs() - t0));
        count++;
        loop(conn);
      },
      (err) => {
        inFlight--;
        noteError(err);
        loop(conn);
      },
    );
  };
  for (const conn of conns) for (let k = 0; k < inflight; k++) loop(conn);
}

const going = (): boolean => Date.now() < stopAt;

/** stream-down, stream-up: on every connection, one stream after another until the stop. */
function startStreams(one: (conn: Conn) => Promise<void>): void {
  for (const conn of conns)
    void (async () => {
      for (let k = 0; k < MAX_CALLS && going(); k++) {
        inFlight++;
        try {
          await one(conn);
        } catch (err) {
          noteError(err);
        } finally {
          inFlight--;
        }
      }
    })();
}

/** notify-up: on every connection, items as notifications, flat out within its window. */
function startNotifyUp(): void {
  for (const conn of conns) if (conn.window) void pump(conn.window, (it) => conn.notify('item', [it]), going, MAX_CALLS);
  windowTimer = watchWindows(() => conns.map((c) => c.window));
}

/**
 * game-tick, the players' side: each player sends GAME.inputsPerSec input notifications and
 * makes GAME.callsPerSec calls a second, spread evenly (round robin over this process'
 * players, paced by the clock; after a stall it catches up at most a second's worth).
 */
function startGame(): void {
  const m = conns.length;
  if (m === 0) return;
  const start = Date.now();
  let inputs = 0;
  let calls = 0;
  let seq = 0;
  const inputRate = (m * GAME.inputsPerSec) / 1000;
  const callRate = (m * GAME.callsPerSec) / 1000;
  gameTimer = setInterval(() => {
    const now = Date.now();
    if (now >= stopAt) return void clearInterval(gameTimer);
    const el = now - start;
    const dueInputs = Math.min(Math.floor(el * inputRate) - inputs, m * GAME.inputsPerSec);
    for (let k = 0; k < dueInputs; k++) conns[inputs++ % m]!.notify('input', [seq++, 1, -1]);
    const dueCalls = Math.min(Math.floor(el * callRate) - calls, m * GAME.callsPerSec);
    for (let k = 0; k < dueCalls; k++) {
      const conn = conns[calls++ % m]!;
      inFlight++;
      conn.call('act', [1, 10.5, -3.25]).then(
        () => {
          inFlight--;
          acts++;
        },
        (err) => {
          inFlight--;
          noteError(err);
        },
      );
    }
  }, 10);
}

serve(async (req) => {
  switch (req.cmd) {
    case 'connect': {
      const { system, port, from, count: n, bare, concurrency } = req as unknown as {
        system: SystemName;
        port: number;
        from: number;
        count: number;
        bare: boolean;
        concurrency: number;
      };
      let failed = 0;
      await pool(n, concurrency, async (i) => {
        const uid = `u${from + i}`;
        try {
          if (bare) bares.push(await openBare(system, port, uid));
          else conns.push(await openClient(system, port, uid, hooks));
        } catch (err) {
          failed++;
          noteError(err);
        }
      });
      return { connected: bare ? bares.length : conns.length, failed, firstError };
    }
    case 'load': {
      const { scenario, inflight, payloadBytes, maxMs } = req as unknown as {
        scenario: string;
        inflight: number;
        payloadBytes: number;
        maxMs: number;
      };
      stopAt = Date.now() + maxMs;
      if (scenario.startsWith('call-small')) startLoad('add', [1, 2], inflight);
      else if (scenario === 'call-1kb') startLoad('echo', [objectPayload(payloadBytes)], inflight);
      else if (scenario === 'game-tick') startGame();
      else if (scenario === 'stream-down') startStreams((c) => c.stream!(STREAMS.itemsPerStream, hooks.item));
      else if (scenario === 'stream-up') {
        startStreams((c) => c.upload!(STREAMS.itemsPerStream, going));
        windowTimer = watchWindows(() => conns.map((c) => c.window)); // SignalR's uploads go through the window
      }
      else if (scenario === 'notify-up') startNotifyUp();
      // other scenarios are server-driven: this process only answers and counts
      return {};
    }
    case 'mark':
      hist = newHistogram();
      count = 0;
      errors = 0;
      states = new Map();
      acts = 0;
      cpuMark = process.cpuUsage();
      return {};
    case 'stop': {
      const cpu = process.cpuUsage(cpuMark);
      // game-tick: the states of the ticks the server sent in its window, wherever they
      // fell in this process' window (counted by tick, not by arrival time).
      const { ticks } = req as unknown as { ticks?: [number, number] };
      let inTicks = 0;
      if (ticks) for (const [tick, n] of states) if (tick > ticks[0] && tick <= ticks[1]) inTicks += n;
      // Windows whose acks went missing (bench/lib/streams.ts).
      const stalls = conns.reduce((k, c) => k + (c.window?.stalls ?? 0), 0);
      if (stalls) noteError(new Error(`${stalls} windows stalled: acks lost (a rate limit?)`));
      const measured = { hist: encodeHistogram(hist), count, errors, cpuUs: cpu.user + cpu.system, firstError, states: inTicks, acts };
      stopAt = 0;
      if (gameTimer) clearInterval(gameTimer);
      clearInterval(windowTimer);
      for (const c of conns) c.window?.reset(); // a sender waiting for an ack sees the stop
      const end = Date.now() + 3000;
      while (inFlight > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
      return { ...measured, unfinished: inFlight };
    }
    case 'storm': {
      // Open and close connections as fast as the server takes them: each one completes
      // the system's handshake, then closes normally.
      const { system, port, from, count: n, concurrency, maxMs } = req as unknown as {
        system: SystemName;
        port: number;
        from: number;
        count: number;
        concurrency: number;
        maxMs: number;
      };
      const h = newHistogram();
      const deadline = Date.now() + maxMs;
      let opened = 0;
      let failed = 0;
      const t0 = Date.now();
      await pool(n, concurrency, async (i) => {
        if (Date.now() > deadline) return;
        const c0 = nowUs();
        try {
          const b = await openBare(system, port, `s${from + i}`);
          h.recordValue(Math.max(1, nowUs() - c0));
          opened++;
          b.close();
        } catch (err) {
          failed++;
          noteError(err);
        }
      });
      return { opened, failed, ms: Date.now() - t0, hist: encodeHistogram(h), firstError };
    }
    case 'exit':
      for (const c of conns) c.close();
      for (const b of bares) b.close();
      conns = [];
      bares = [];
      setTimeout(() => process.exit(0), 50);
      return {};
    default:
      throw new Error(`unknown command ${req.cmd}`);
  }
});
