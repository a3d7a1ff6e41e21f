// The runtime every server-under-test process shares: answers the orchestrator's requests
// (listen, CPU/RSS snapshots, server-driven load) so that each system file only says how
// it serves and calls. CPU and RSS are read here, in the server's own process.

import { serve } from '../lib/ipc.ts';
import { encodeHistogram, newHistogram } from '../lib/histogram.ts';
import { nowUs, objectPayload } from '../lib/payload.ts';

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
}

/** Counter of client → server calls handled; system handlers bump it. */
export const handled = { count: 0 };

/** Bounds on every server-driven loop, besides its time limit. */
const MAX_DRIVEN = 50_000_000;

export function host(system: ServerSystem): void {
  let hist = newHistogram();
  let errors = 0;
  let driven = 0;
  let stopAt = 0;
  let inFlight = 0;
  let timer: ReturnType<typeof setInterval> | undefined;
  const running = () => driven < MAX_DRIVEN && Date.now() < stopAt;

  function driveCalls(method: Method, args: unknown[], inflight: number): void {
    const n = system.clientCount();
    for (let i = 0; i < n; i++) for (let k = 0; k < inflight; k++) loop(i);
    function loop(i: number): void {
      if (!running()) return;
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
        };
      }
      case 'heapsnap': {
        // For finding what a connection costs: diff two snapshots taken at different counts.
        const v8 = await import('node:v8');
        (globalThis as { gc?: () => void }).gc?.();
        return { path: v8.writeHeapSnapshot(req.path as string) };
      }
      case 'gc':
        (globalThis as { gc?: () => void }).gc?.();
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
        else throw new Error(`the server does not drive ${scenario}`);
        return { clients: system.clientCount() };
      }
      case 'mark':
        hist = newHistogram();
        errors = 0;
        return {};
      case 'stop': {
        stopAt = 0;
        if (timer) clearInterval(timer);
        const end = Date.now() + 3000;
        while (inFlight > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
        return { hist: encodeHistogram(hist), errors, unfinished: inFlight };
      }
      case 'exit':
        setImmediate(() => process.exit(0));
        return {};
      default:
        throw new Error(`unknown command ${req.cmd}`);
    }
  });
}
