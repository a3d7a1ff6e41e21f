// One load-generator process: many bots (Volley clients on the `ws` package) run on the
// plan's schedule; their figures go to the parent every second as a cumulative snapshot.
// Forked by run.ts; speaks JSON over the IPC channel: { cmd: 'start', plan } and
// { cmd: 'stop' } in, { type: 'snap' | 'done' | 'fail', … } out.

import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import WebSocket from 'ws';
import { ErrorCode, VolleyClient, isRpcError, type ClientContext } from '../client/index.ts';
import { createProxy } from '../protocol/proxy.ts';
import type { Bot, BotScript } from './bots.ts';
import { Histogram } from './histogram.ts';
import { connectAt, downAt, endAt, leaveAt, playersOf, type Plan } from './plan.ts';
import { emptySnapshot, HOT_CPU, type Snapshot } from './stats.ts';

type Counts = Record<string, number>;
const bump = (r: Counts, k: string) => void (r[k] = (r[k] ?? 0) + 1);
/**
 * Error codes and close codes come from the server: past MAX_CODES distinct ones in a
 * record, a new one counts as OTHER, so a server sending a new code each time cannot grow
 * the snapshot (sent every second) without bound.
 */
const MAX_CODES = 32;
const bumpCode = (r: Counts, k: string) => bump(r, r[k] !== undefined || Object.keys(r).length < MAX_CODES ? k : 'OTHER');
const codeOf = (err: unknown): string => (isRpcError(err) ? String(err.code).slice(0, 64) : 'SCRIPT_ERROR');

/** What this process records (turned into a Snapshot each second). */
class Recorder {
  connected = 0;
  connectsOk = 0;
  connectErr: Counts = {};
  connect = new Histogram();
  reconnects = 0;
  resumes = 0;
  sessionsLost = 0;
  closes: Counts = {};
  calls = new Map<string, { ok: number; err: Counts; h: Histogram }>();
  served = new Map<string, { ok: number; err: Counts; cancelled: number; h: Histogram }>();
  notifySent: Counts = {};
  notifyRecv: Counts = {};
  arrivals = 0;
  missed = 0;
  abandoned = 0;
  scriptErrors = 0;
  firstScriptError: string | undefined;
  interval = new Histogram();

  call(method: string) {
    let s = this.calls.get(method);
    if (!s) this.calls.set(method, (s = { ok: 0, err: {}, h: new Histogram() }));
    return s;
  }

  serve(method: string) {
    let s = this.served.get(method);
    if (!s) this.served.set(method, (s = { ok: 0, err: {}, cancelled: 0, h: new Histogram() }));
    return s;
  }

  scriptError(err: unknown): void {
    this.scriptErrors++;
    this.firstScriptError ??= err instanceof Error ? (err.stack ?? err.message) : String(err);
  }
}

const rec = new Recorder();

// Bots' sleeps on one timer wheel of WHEEL_MS slots rather than a setTimeout each: 20,000
// paced bots a second would otherwise each insert a timer of its own odd duration (Node
// keeps one list per duration), which cost more than their calls. Sleeps are rounded up
// to the next slot; a stalled loop drains every slot it missed.
const WHEEL_MS = 4;
const wheel = new Map<number, (() => void)[]>();
let wheelNext = Math.floor(performance.now() / WHEEL_MS);
function wakeAt(time: number, fn: () => void): void {
  const slot = Math.max(wheelNext, Math.ceil(time / WHEEL_MS));
  const list = wheel.get(slot);
  if (list) list.push(fn);
  else wheel.set(slot, [fn]);
}
setInterval(() => {
  const now = Math.floor(performance.now() / WHEEL_MS);
  for (; wheelNext <= now; wheelNext++) {
    const list = wheel.get(wheelNext);
    if (!list) continue;
    wheel.delete(wheelNext);
    for (const fn of list) fn();
  }
}, WHEEL_MS).unref();
let script: BotScript;

/** A bot as scripts see it; its server proxy measures every call. */
class BotImpl implements Bot {
  readonly index: number;
  readonly token: string;
  readonly client: VolleyClient<any, any>;
  readonly server: any;
  state: Record<string, unknown> = {};
  stopping = false;
  /** When the next call was due (performance.now() ms): set for open-loop actions. */
  due: number | undefined;
  /** The paced loop's interval while its fn runs (ms): calls then are corrected for it. */
  pacing = 0;
  live = false;
  #wake = new Set<() => void>();
  running: Promise<unknown> | undefined;

  constructor(index: number, url: string) {
    this.index = index;
    this.token = script.token ? script.token(index) : `bot${index}`;
    this.server = createProxy((method, args) => this.call(method, args));
    const handlers = script.handlers ? wrapHandlers(script.handlers(this) as Record<string, Handler>) : {};
    this.client = new VolleyClient<any, any>(url, { ...script.client, token: this.token, handlers, WebSocket: WebSocket as never });
  }

  call(method: string, args: unknown[]): Promise<unknown> {
    const start = this.due ?? performance.now();
    const pacing = this.pacing;
    this.due = undefined;
    const st = rec.call(method);
    const p = this.client.call(method, args);
    // One closure for both outcomes, on a side branch: the caller awaits the client's own
    // promise (this reaction, registered first, runs first). Everything allocated here
    // lives as long as the call, and a generator's calls are many and slow: each object
    // less is garbage-collector work less. A call's result is decoded msgpack, never an
    // Error; a failed call rejects with one.
    const done = (x: unknown) => {
      const us = (performance.now() - start) * 1000;
      // Cut by our own close at the ramp-down: not the server's doing.
      if (this.stopping && isRpcError(x) && x.code === ErrorCode.DISCONNECTED) return void rec.abandoned++;
      if (x instanceof Error) bumpCode(st.err, codeOf(x));
      else st.ok++;
      if (pacing) st.h.recordCorrected(us, pacing * 1000);
      else st.h.record(us);
      rec.interval.record(us);
    };
    p.then(done, done);
    return p;
  }

  notify(method: string, ...args: unknown[]): void {
    bump(rec.notifySent, method);
    this.client.notify(method, ...args);
  }

  sleep(ms: number): Promise<void> {
    if (this.stopping) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.#wake.delete(done);
        resolve();
      };
      this.#wake.add(done);
      wakeAt(performance.now() + ms, done);
    });
  }

  async every(ms: number, fn: (bot: Bot) => unknown): Promise<void> {
    let next = performance.now();
    while (!this.stopping) {
      const now = performance.now();
      if (next > now) await this.sleep(next - now);
      if (this.stopping) break;
      // Held up past the tick by its own last round: its calls are corrected for the
      // samples the stall hid (HdrHistogram's expected interval), and the loop does not
      // burst to catch up.
      this.pacing = ms;
      try {
        await fn(this);
      } catch (err) {
        if (!isRpcError(err)) rec.scriptError(err);
      } finally {
        this.pacing = 0;
      }
      next = Math.max(next + ms, performance.now());
    }
  }

  random(min: number, max: number): number {
    return min + Math.random() * (max - min);
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(Math.random() * items.length)]!;
  }

  stop(): void {
    this.stopping = true;
    for (const wake of [...this.#wake]) wake();
  }
}

type Handler = (ctx: ClientContext, ...args: unknown[]) => unknown;

/** The script's handlers, each counting what the server asked and timing the answer. */
function wrapHandlers(handlers: Record<string, Handler>): Record<string, Handler> {
  const out: Record<string, Handler> = {};
  for (const [name, fn] of Object.entries(handlers)) {
    if (typeof fn !== 'function') continue;
    out[name] = (ctx, ...args) => {
      if (ctx.id === -1) {
        bump(rec.notifyRecv, name);
        return fn(ctx, ...args);
      }
      const st = rec.serve(name);
      const t0 = performance.now();
      let r: unknown;
      try {
        r = fn(ctx, ...args);
      } catch (err) {
        bumpCode(st.err, codeOf(err));
        throw err;
      }
      if (r instanceof Promise) {
        return r.then(
          (v) => {
            if (ctx.signal.aborted) st.cancelled++;
            else {
              st.ok++;
              st.h.record((performance.now() - t0) * 1000);
            }
            return v;
          },
          (err) => {
            if (ctx.signal.aborted) st.cancelled++;
            else bumpCode(st.err, codeOf(err));
            throw err;
          },
        );
      }
      st.ok++;
      st.h.record((performance.now() - t0) * 1000);
      return r;
    };
  }
  return out;
}

// ---- the schedule ----

let plan: Plan;
const bots: BotImpl[] = [];
/** Connected bots not stopping, for open-loop arrivals. */
const live: BotImpl[] = [];
let rr = 0;
let inflight = 0;
let stopAll = false;

function goLive(bot: BotImpl): void {
  if (bot.live || bot.stopping) return;
  bot.live = true;
  live.push(bot);
}

function leaveLive(bot: BotImpl): void {
  if (!bot.live) return;
  bot.live = false;
  const i = live.indexOf(bot);
  if (i >= 0) {
    live[i] = live[live.length - 1]!;
    live.pop();
  }
}

function startBot(index: number): void {
  let bot: BotImpl;
  try {
    bot = new BotImpl(index, plan.url);
  } catch (err) {
    rec.scriptError(err);
    return;
  }
  bots.push(bot);
  const t0 = performance.now();
  let opened = false;
  let isOpen = false;
  bot.client.on('state', (s) => {
    if (s === 'open' && !isOpen) {
      isOpen = true;
      rec.connected++;
    } else if (s !== 'open' && isOpen) {
      isOpen = false;
      rec.connected--;
    }
  });
  bot.client.on('open', ({ resumed }) => {
    if (!opened) return;
    if (resumed) rec.resumes++;
    else rec.sessionsLost++;
  });
  bot.client.on('reconnecting', () => rec.reconnects++);
  bot.client.on('close', (info) => {
    if (!bot.stopping) bumpCode(rec.closes, String(info.code));
  });
  bot.client.opened.then(
    () => {
      opened = true;
      rec.connectsOk++;
      rec.connect.record((performance.now() - t0) * 1000);
      if (bot.stopping) return;
      goLive(bot);
      if (script.run) {
        bot.running = (async () => script.run!(bot))().catch((err) => {
          if (!isRpcError(err) || !bot.stopping) rec.scriptError(err);
        });
      }
    },
    (err) => bumpCode(rec.connectErr, codeOf(err)),
  );
}

async function stopBot(bot: BotImpl): Promise<void> {
  if (bot.stopping) return;
  leaveLive(bot);
  bot.stop();
  if (bot.running) {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([bot.running, new Promise((r) => (timer = setTimeout(r, plan.graceMs)))]);
    clearTimeout(timer);
  }
  bot.client.close();
}

function arrive(due: number): void {
  rec.arrivals++;
  const action = script.actions?.[actionName!];
  if (!action || live.length === 0 || inflight >= maxInflight) {
    rec.missed++;
    return;
  }
  const bot = live[rr++ % live.length]!;
  bot.due = due;
  inflight++;
  Promise.resolve()
    .then(() => action(bot))
    .catch((err) => {
      if (!isRpcError(err)) rec.scriptError(err);
    })
    .finally(() => {
      inflight--;
      bot.due = undefined;
    });
}

let maxInflight = 10_000;
let actionName: string | undefined;

async function load(path: string): Promise<void> {
  const mod = await import(path.startsWith('file:') ? path : pathToFileURL(path).href);
  script = (mod.default ?? mod.bots) as BotScript;
  if (!script || typeof script !== 'object') throw new Error(`${path} exports no bot script (export default defineBots({ … }))`);
}

async function run(): Promise<void> {
  // --rate without --action: the script's action if it has exactly one.
  const names = Object.keys(script.actions ?? {});
  actionName = plan.action ?? (names.length === 1 ? names[0] : undefined);
  if (plan.rate && !script.actions?.[actionName!])
    throw new Error(`--rate needs an action: ${plan.script} has ${Object.keys(script.actions ?? {}).join(', ') || 'no actions'}`);

  const mine = playersOf(plan);
  // performance.now() of the plan's epoch times.
  const offset = performance.now() - Date.now();
  const perf = (epochMs: number) => epochMs + offset;
  const joinAt = mine.map((i) => perf(connectAt(plan, i)));
  const quitAt = mine.map((i) => perf(leaveAt(plan, i)));
  const down = perf(downAt(plan));
  const end = perf(endAt(plan));
  const workersTotal = plan.generators * plan.workers;
  const ratePerWorker = (plan.rate ?? 0) / workersTotal;
  const arrivalGap = ratePerWorker > 0 ? 1000 / ratePerWorker : Infinity;
  maxInflight = Math.max(1000, Math.ceil(ratePerWorker * 10));
  // Spread the workers' arrivals over one gap, so together they keep an even rate.
  let nextArrival = perf(plan.startAt) + (arrivalGap * (plan.worker * plan.generators + plan.generator)) / workersTotal;
  let joined = 0;
  let left = 0;
  const stops: Promise<void>[] = [];

  await new Promise<void>((finish) => {
    const tick = () => {
      const now = performance.now();
      while (joined < mine.length && joinAt[joined]! <= now && !stopAll) startBot(mine[joined++]!);
      if (stopAll) {
        while (left < bots.length) stops.push(stopBot(bots[left++]!));
        joined = mine.length;
      } else {
        while (left < bots.length && quitAt[left]! <= now) stops.push(stopBot(bots[left++]!));
        if (arrivalGap !== Infinity)
          while (nextArrival <= now && nextArrival < down) {
            arrive(nextArrival);
            nextArrival += arrivalGap;
          }
      }
      if ((stopAll || now >= end) && joined === mine.length && left === bots.length) {
        clearInterval(timer);
        finish();
      }
    };
    const timer = setInterval(tick, 5);
  });
  await Promise.all(stops);
}

// ---- reporting ----

const loop = monitorEventLoopDelay({ resolution: 10 });
loop.enable();
let lastCpu = process.cpuUsage();
let lastAt = performance.now();
const t0 = performance.now();
const cpu0 = process.cpuUsage();
const peakCpu: Counts = {};
const peakLoop: Counts = {};
const hotSeconds: Counts = {};
let peakRss = 0;
const id = `g${process.env.VOLLEY_LOADTEST_GEN ?? 0}w${process.env.VOLLEY_LOADTEST_WORKER ?? 0}`;

function snapshot(): Snapshot {
  const now = performance.now();
  const cpuNow = process.cpuUsage();
  const used = cpuNow.user - lastCpu.user + (cpuNow.system - lastCpu.system);
  const pct = Math.round((used / 1000 / Math.max(1, now - lastAt)) * 1000) / 10;
  lastCpu = cpuNow;
  lastAt = now;
  const loopP99 = Math.round(loop.percentile(99) / 1e4) / 100;
  const loopMax = Math.round(loop.max / 1e4) / 100;
  loop.reset();
  peakCpu[id] = Math.max(peakCpu[id] ?? 0, pct);
  peakLoop[id] = Math.max(peakLoop[id] ?? 0, loopP99);
  if (pct >= HOT_CPU) hotSeconds[id] = (hotSeconds[id] ?? 0) + 1;
  peakRss = Math.max(peakRss, Math.round(process.memoryUsage.rss() / 1048576));
  const s = emptySnapshot();
  s.target = plan ? playersOf(plan).length : 0;
  s.connected = rec.connected;
  s.connectsOk = rec.connectsOk;
  s.connectErr = { ...rec.connectErr };
  s.connect = rec.connect.toSparse();
  s.reconnects = rec.reconnects;
  s.resumes = rec.resumes;
  s.sessionsLost = rec.sessionsLost;
  s.closes = { ...rec.closes };
  for (const [m, c] of rec.calls) s.calls[m] = { ok: c.ok, err: { ...c.err }, h: c.h.toSparse() };
  for (const [m, c] of rec.served) s.served[m] = { ok: c.ok, err: { ...c.err }, cancelled: c.cancelled, h: c.h.toSparse() };
  s.notifySent = { ...rec.notifySent };
  s.notifyRecv = { ...rec.notifyRecv };
  s.arrivals = rec.arrivals;
  s.missed = rec.missed;
  s.abandoned = rec.abandoned;
  s.scriptErrors = rec.scriptErrors;
  s.firstScriptError = rec.firstScriptError;
  s.cpuUs = cpuNow.user - cpu0.user + (cpuNow.system - cpu0.system);
  s.wallMs = now - t0;
  s.peakCpu = { ...peakCpu };
  s.peakLoop = { ...peakLoop };
  s.hotSeconds = { ...hotSeconds };
  s.peakRssMb = { [id]: peakRss };
  s.interval = rec.interval.toSparse();
  rec.interval.reset();
  s.load = [{ id, cpu: pct, loopP99, loopMax }];
  return s;
}

const send = (msg: unknown) => process.send?.(msg);
process.on('disconnect', () => process.exit(0));
process.on('SIGINT', () => {}); // the parent decides: it sends 'stop'
const fail = (err: Error) => {
  send({ type: 'fail', message: err.stack ?? String(err) });
  setTimeout(() => process.exit(1), 50);
};
process.on('message', (msg: { cmd: string; plan?: Plan; script?: string }) => {
  if (msg.cmd === 'stop') stopAll = true;
  if (msg.cmd === 'load') load(msg.script!).then(() => send({ type: 'loaded' }), fail);
  if (msg.cmd !== 'start' || !msg.plan) return;
  plan = msg.plan;
  const reporter = setInterval(() => send({ type: 'snap', snap: snapshot() }), 1000);
  run().then(
    () => {
      clearInterval(reporter);
      send({ type: 'done', snap: snapshot() });
      setTimeout(() => process.exit(0), 50);
    },
    (err: Error) => {
      clearInterval(reporter);
      fail(err);
    },
  );
});
send({ type: 'ready' });
