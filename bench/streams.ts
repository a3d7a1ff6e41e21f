// The stream runs (issue 23): `--streams` clients, each with one stream at a time of
// STREAMS.itemsPerStream items ({seq, t, 16 bytes}), one after another, flat out:
//   stream-down  the client reads the server's `feed(n)` (Volley client.stream, SignalR
//                connection.stream over an IAsyncEnumerable hub method)
//   stream-up    the client calls `upload` with a stream as its param, the server's handler
//                reads it (Volley: an async generator as the param, `for await` in the
//                handler; SignalR: a Subject, a hub method taking IAsyncEnumerable<Item>)
//   notify-down / notify-up  the same items as notifications, within a window of acks
//                (lib/streams.ts): the baseline each stream is set against.
// Items are counted where they arrive (the clients going down, the server going up) and
// the figure is server CPU per item, read in the server's process over the window.

import type { ChildProcess } from 'node:child_process';
import { request } from './lib/ipc.ts';
import { mergeHistograms, percentiles } from './lib/histogram.ts';
import { connectWorkers, loadBackstopMs, round, split, tick, type Snap, type Stopped } from './lib/procs.ts';
import type { Config, Scenario } from './config.ts';
import type { SystemName } from './clients/systems.ts';
import type { Progress, RunResult } from './orchestrate.ts';


export async function streamRun(
  cfg: Config,
  system: SystemName,
  scenario: Scenario,
  server: ChildProcess,
  port: number,
  workers: ChildProcess[],
  base: RunResult,
  progress: Progress,
): Promise<RunResult> {
  const n = cfg.streams;
  progress(0, `connecting ${n}`);
  const c = await connectWorkers(system, port, split(n, Math.min(cfg.workers, n)), false, workers, cfg.clientProf);
  if (c.connected === 0) throw new Error(`no client connected: ${c.firstError}`);
  const maxMs = loadBackstopMs(cfg.warmupMs, cfg.durationMs);
  const args = { scenario, inflight: 1, payloadBytes: 0, maxMs, rate: 0 };
  await Promise.all(workers.map((w) => request(w, 'load', args)));
  // The server sends notify-down's items; every other flow is opened by the clients.
  if (scenario === 'notify-down') await request(server, 'drive', args);
  const total = cfg.warmupMs + cfg.durationMs;
  await tick(cfg.warmupMs, (f) => progress((f * cfg.warmupMs) / total, 'warm-up'));
  const [s0] = await Promise.all([request<Snap>(server, 'snap'), request(server, 'mark'), ...workers.map((w) => request(w, 'mark'))]);
  await tick(cfg.durationMs, (f) => progress((cfg.warmupMs + f * cfg.durationMs) / total, 'measuring'));
  const s1 = await request<Snap>(server, 'snap');
  const [serverStop, ...clientStops] = await Promise.all([
    request<{ hist: string; errors: number }>(server, 'stop'),
    ...workers.map((w) => request<Stopped>(w, 'stop')),
  ]);
  const down = scenario.endsWith('-down');
  // Where the items arrive: the clients' counts (from their mark to their stop, the same
  // window give or take one message on the IPC channel) or the server's.
  const items = down ? clientStops.reduce((s, r) => s + r.count, 0) : s1.count - s0.count;
  const seconds = (s1.t - s0.t) / 1000;
  const cpuUs = s1.cpuUs - s0.cpuUs;
  const clientCpu = clientStops.reduce((s, r) => s + r.cpuUs, 0);
  return {
    ...base,
    connections: c.connected,
    durationMs: s1.t - s0.t,
    callsPerSec: round(items / seconds),
    items,
    // One-way, producer to receiver, as each item arrived.
    latencyMs: percentiles(mergeHistograms(down ? clientStops.map((r) => r.hist) : [serverStop.hist])),
    serverCpuUsPerCall: items > 0 ? round(cpuUs / items, 2) : undefined,
    clientCpuUsPerCall: items > 0 ? round(clientCpu / items, 2) : undefined,
    serverRssMiB: round(s1.rss / 2 ** 20, 1),
    errors: c.failed + serverStop.errors + clientStops.reduce((s, r) => s + r.errors, 0),
    firstError: c.firstError ?? clientStops.find((r) => r.firstError)?.firstError,
  };
}
