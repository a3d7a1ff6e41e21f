// The game-tick run: players in rooms, the server's game loop sending each room its state
// GAME.tickHz times a second and calling each player now and then, the players sending
// inputs and calls. The figure is server CPU per player-second, and its inverse, players
// per core. The load is paced, so every system carries the same traffic; `keptUp` says
// whether it did (a server that falls behind would look cheaper than it is).

import type { ChildProcess } from 'node:child_process';
import { request } from './lib/ipc.ts';
import { mergeHistograms, percentiles } from './lib/histogram.ts';
import { connectWorkers, loadBackstopMs, round, sleep, split, tick, type Snap, type Stopped } from './lib/procs.ts';
import { GAME } from './lib/game.ts';
import type { Config } from './config.ts';
import type { SystemName } from './clients/systems.ts';
import type { Progress, RunResult } from './orchestrate.ts';

/** Below this many expected events in the window a stream is too small to judge keeping up. */
const MIN_EXPECTED = 50;
/** How long after the window the players still count states of the window's ticks. */
const STATE_GRACE_MS = 300;

export async function gameTick(
  cfg: Config,
  system: SystemName,
  server: ChildProcess,
  port: number,
  workers: ChildProcess[],
  base: RunResult,
  progress: Progress,
): Promise<RunResult> {
  const n = cfg.players;
  progress(0, `connecting ${n} players`);
  const c = await connectWorkers(system, port, split(n, Math.min(cfg.workers, n)), false, workers, cfg.clientProf);
  if (c.connected === 0) throw new Error(`no player connected: ${c.firstError}`);
  const maxMs = loadBackstopMs(cfg.warmupMs, cfg.durationMs);
  const args = { scenario: 'game-tick', inflight: 1, payloadBytes: 0, maxMs, rate: 0 };
  await Promise.all(workers.map((w) => request(w, 'load', args)));
  await request(server, 'drive', args);
  const total = cfg.warmupMs + cfg.durationMs;
  await tick(cfg.warmupMs, (f) => progress((f * cfg.warmupMs) / total, 'warm-up'));
  const [s0] = await Promise.all([request<Snap>(server, 'snap'), request(server, 'mark'), ...workers.map((w) => request(w, 'mark'))]);
  await tick(cfg.durationMs, (f) => progress((cfg.warmupMs + f * cfg.durationMs) / total, 'measuring'));
  const s1 = await request<Snap>(server, 'snap');
  // The last tick's states are on their way: give them a moment before the players count.
  await sleep(STATE_GRACE_MS);
  const ticks = [s0.game.ticks, s1.game.ticks];
  const clientStops = await Promise.all(workers.map((w) => request<Stopped>(w, 'stop', { ticks })));
  const serverStop = await request<{ hist: string; errors: number }>(server, 'stop');

  const players = c.connected;
  const seconds = (s1.t - s0.t) / 1000;
  const cpuUs = s1.cpuUs - s0.cpuUs;
  const g = {
    ticks: s1.game.ticks - s0.game.ticks,
    states: clientStops.reduce((s, r) => s + r.states, 0),
    inputs: s1.game.inputs - s0.game.inputs,
    acts: s1.game.acts - s0.game.acts,
    serverCalls: s1.game.callsOk - s0.game.callsOk,
    serverCallsFailed: s1.game.callsFailed - s0.game.callsFailed,
  };
  // What the schedule asked for in this window, against what got through.
  // States are judged against the ticks the server did send; a tick behind shows in `ticks`.
  const streams: [string, number, number][] = [
    ['ticks', g.ticks, GAME.tickHz * seconds],
    ['states', g.states, players * g.ticks],
    ['inputs', g.inputs, players * GAME.inputsPerSec * seconds],
    ['acts', g.acts, players * GAME.callsPerSec * seconds],
    ['server calls', g.serverCalls, (players * seconds * 1000) / GAME.serverCallEveryMs],
  ];
  const shares = streams
    .filter(([, , expected]) => expected >= MIN_EXPECTED)
    .map(([name, got, expected]) => ({ name, share: Math.min(1, got / expected) }))
    .sort((a, b) => a.share - b.share);
  const perPlayerSec = cpuUs / (players * seconds);
  return {
    ...base,
    connections: players,
    players,
    roomSize: cfg.roomSize,
    durationMs: s1.t - s0.t,
    latencyMs: percentiles(mergeHistograms(clientStops.map((r) => r.hist))),
    cpuUsPerPlayerSec: round(perPlayerSec, 2),
    playersPerCore: perPlayerSec > 0 ? round(1e6 / perPlayerSec) : undefined,
    keptUp: shares.length ? round(shares[0]!.share, 3) : undefined,
    behind: shares.length && shares[0]!.share < 0.95 ? shares[0]!.name : undefined,
    serverRssMiB: round(s1.rss / 2 ** 20, 1),
    game: g,
    errors: c.failed + serverStop.errors + clientStops.reduce((s, r) => s + r.errors, 0),
    firstError: c.firstError ?? clientStops.find((r) => r.firstError)?.firstError,
  };
}
