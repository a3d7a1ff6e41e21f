// The runtime every server-under-test process shares: answers the orchestrator's requests
// (listen, CPU/RSS snapshots, server-driven load) so that each system file only says how
// it serves and calls. CPU and RSS are read here, in the server's own process.

import { serve } from '../lib/ipc.ts';
import { encodeHistogram, newHistogram } from '../lib/histogram.ts';
import { nowUs, objectPayload } from '../lib/payload.ts';
import { GAME, gameLoop, roomState, type RoomState } from '../lib/game.ts';
import { pump, SendWindow, watchWindows, type Item } from '../lib/streams.ts';

export type Method = 'add' | 'echo';
export type Done = (err?: unknown) => void;

export interface ServerSystem {
  /** Listen on 127.0.0.1, any free port. */
  listen(): Promise<number>;
  /** Clients connected now (server-driven scenarios address them by index). */
  clientCount(): number;
  /** Call client `i`; `done` once it answered (or failed). */
  call(i: number, method: Method, args: unknown[], done: Done): void;
  /** The same call to every client, gathering all replies (callMany). */
  callAll(method: Method, args: unknown[], done: (err?: unknown) => void): void;
  /** One notification `tick(t)` to every client, as a room broadcast. */
  broadcast(t: number): void;
  /** game-tick: notify room `name` of its state (`state(s)`), encoded once for the room. */
  roomNotify(name: string, state: RoomState): void;
  /** game-tick: call client `i`, `ready(tick)`, with a deadline of `ms`. */
  callPlayer(i: number, tick: number, ms: number, done: Done): void;
  /** notify-down: the notification `item(it)` to client `i`, which answers `ack(n)` now and then (`streamAck`). */
  notifyItem?(i: number, it: Item): void;
}

/** Counter of client → server calls handled; system handlers bump it. */
export const handled = { count: 0 };

/** game-tick: what the server saw. Handlers bump inputs and acts; the loop the rest. */
export const game = { ticks: 0, inputs: 0, acts: 0, calls: 0, callsOk: 0, callsFailed: 0 };

/** game-tick: players are put in rooms of this size by order of arrival (0: no game rooms). */
export const gameRoomSize = Number(process.env.BENCH_GAME_ROOM_SIZE ?? 0);

/** Bounds on every server-driven loop, besides its time limit. */
const MAX_DRIVEN = 50_000_000;

/** Latency of what the server drives or receives, since the last mark. */
let hist = newHistogram();

/** stream-up, notify-up: an item reached the server (counted, its one-way latency recorded). */
export function received(it: Item): void {
  handled.count++;
  hist.recordValue(Math.max(1, nowUs() - it.t));
}

/** notify-down: one window per client, by index. */
const windows: SendWindow[] = [];

/** notify-down: client `i` has the items before `n`. */
export function streamAck(i: number, n: number): void {
  windows[i]?.ack(n);
}

export function host(system: ServerSystem): void {
  let errors = 0;
  let driven = 0;
  let stopAt = 0;
  let inFlight = 0;
  let timer: ReturnType<typeof setInterval> | undefined;
  /** driven stops here: MAX_DRIVEN, or a fixed count (`driveN`, the instruction counts). */
  let limit = MAX_DRIVEN;
  /** `driveN`: resolved once the last of its calls has been answered. */
  let drained: (() => void) | undefined;
  const running = () => driven < limit && Date.now() < stopAt;

  function driveCalls(method: Method, args: unknown[], inflight: number): void {
    const n = system.clientCount();
    for (let i = 0; i < n; i++) for (let k = 0; k < inflight; k++) loop(i);
    function loop(i: number): void {
      if (!running()) {
        if (inFlight === 0) drained?.();
        return;
      }
      const t0 = nowUs();
      inFlight++;
      system.call(i, method, args, (err) => {
        inFlight--;
        if (err) errors++;
        else {
          hist.recordValue(Math.max(1, nowUs() - t0));
          driven++;
          handled.count++;
        }
        loop(i);
      });
    }
  }

  function driveCallMany(args: unknown[]): void {
    const loop = (): void => {
      if (!running()) return;
      const t0 = nowUs();
      const n = system.clientCount();
      inFlight++;
      system.callAll('add', args, (err) => {
        inFlight--;
        if (err) errors++;
        else {
          hist.recordValue(Math.max(1, nowUs() - t0));
          driven++;
          handled.count += n; // CPU per call counts each client's reply
        }
        loop();
      });
    };
    loop();
  }

  function driveBroadcast(rate: number): void {
    // Paced, not flat out: the receivers (on the same 2 cores) set the ceiling otherwise.
    // Paced by the clock, not by timer ticks: a descheduled process gets fewer ticks, and
    // every system must publish the same number of broadcasts for CPU per delivery to compare.
    const start = Date.now();
    let sent = 0;
    timer = setInterval(() => {
      if (!running()) return;
      const due = Math.min(Math.floor(((Date.now() - start) * rate) / 1000) - sent, Math.max(1, rate / 10));
      const n = system.clientCount();
      for (let k = 0; k < due; k++) {
        system.broadcast(nowUs());
        sent++;
        driven++;
        handled.count += n;
      }
    }, 10);
  }

  function driveNotifyDown(): void {
    // The same items as notifications, flat out within each client's window.
    const n = system.clientCount();
    for (let i = 0; i < n; i++) {
      const w = (windows[i] = new SendWindow());
      void pump(w, (it) => system.notifyItem!(i, it), running, MAX_DRIVEN);
    }
    timer = watchWindows(() => windows);
  }

  function driveGame(roomSize: number): void {
    // One game loop: every tick, each room gets its state; and a slice of the players gets
    // the server's call, so that each is called once per period whatever the window.
    const n = system.clientCount();
    const rooms = Array.from({ length: Math.ceil(n / roomSize) }, (_, r) => ({ name: `g${r}`, state: roomState(r, roomSize) }));
    let next = 0;
    const done: Done = (err) => {
      inFlight--;
      if (err) {
        game.callsFailed++;
        errors++;
      } else game.callsOk++;
    };
    timer = gameLoop(
      Date.now(),
      n,
      running,
      (tick) => {
        game.ticks = tick;
        const t = nowUs();
        for (const room of rooms) {
          room.state.t = t;
          room.state.tick = tick;
          system.roomNotify(room.name, room.state);
        }
      },
      (tick) => {
        game.calls++;
        inFlight++;
        system.callPlayer(next++ % n, tick, GAME.serverCallDeadlineMs, done);
      },
    );
  }

  serve(async (req) => {
    switch (req.cmd) {
      case 'listen':
        return { port: await system.listen(), pid: process.pid };
      case 'snap': {
        const cpu = process.cpuUsage();
        const mem = process.memoryUsage();
        return {
          t: Date.now(),
          cpuUs: cpu.user + cpu.system,
          rss: mem.rss,
          heapUsed: mem.heapUsed,
          count: handled.count,
          conns: system.clientCount(),
          game: { ...game },
        };
      }
      case 'heapsnap': {
        // For finding what a connection costs: diff two snapshots taken at different counts.
        const v8 = await import('node:v8');
        (globalThis as { gc?: () => void }).gc?.();
        return { path: v8.writeHeapSnapshot(req.path as string) };
      }
      case 'gc':
        // minor: a scavenge only (instructions.ts empties the young generation before each
        // window, so that every window's share of scavenges is the same).
        (globalThis as { gc?: (o?: { type: string }) => void }).gc?.(req.minor ? { type: 'minor' } : undefined);
        return {};
      case 'drive': {
        const { scenario, inflight, payloadBytes, maxMs, rate } = req as unknown as {
          scenario: string;
          inflight: number;
          payloadBytes: number;
          maxMs: number;
          rate: number;
        };
        stopAt = Date.now() + maxMs;
        if (scenario === 'server-calls') driveCalls('add', [1, 2], inflight);
        else if (scenario === 'server-calls-1kb') driveCalls('echo', [objectPayload(payloadBytes)], inflight);
        else if (scenario === 'call-many') driveCallMany([1, 2]);
        else if (scenario === 'broadcast') driveBroadcast(rate);
        else if (scenario === 'game-tick' && gameRoomSize > 0) driveGame(gameRoomSize);
        else if (scenario === 'notify-down' && system.notifyItem) driveNotifyDown();
        else throw new Error(`the server does not drive ${scenario}`);
        return { clients: system.clientCount() };
      }
      case 'driveN': {
        // Exactly `count` server → client calls, one in flight per client; replies when the
        // last is answered (bench/instructions.ts counts the instructions between).
        const { scenario, count, payloadBytes, maxMs } = req as unknown as { scenario: string; count: number; payloadBytes: number; maxMs: number };
        if (scenario !== 'server-calls' && scenario !== 'server-calls-1kb') throw new Error(`driveN does not drive ${scenario}`);
        limit = driven + Math.min(count, MAX_DRIVEN);
        stopAt = Date.now() + maxMs;
        const done = new Promise<void>((r) => (drained = r));
        driveCalls(scenario === 'server-calls' ? 'add' : 'echo', scenario === 'server-calls' ? [1, 2] : [objectPayload(payloadBytes)], 1);
        await done;
        drained = undefined;
        return { driven, errors };
      }
      case 'mark':
        hist = newHistogram();
        errors = 0;
        return {};
      case 'stop': {
        stopAt = 0;
        if (timer) clearInterval(timer);
        for (const w of windows) w.reset(); // a sender waiting for an ack sees the stop
        const end = Date.now() + 3000;
        while (inFlight > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
        // notify-down: windows whose acks went missing (bench/lib/streams.ts).
        const stalls = windows.reduce((k, w) => k + w.stalls, 0);
        return { hist: encodeHistogram(hist), errors: errors + stalls, unfinished: inFlight };
      }
      case 'exit':
        setImmediate(() => process.exit(0));
        return {};
      default:
        throw new Error(`unknown command ${req.cmd}`);
    }
  });
}
