// The game-tick scenario's shape, shared by the server host, the client workers and the
// orchestrator, so every system carries the same traffic at the same rates.

export const GAME = {
  /** State notifications per second to every room. */
  tickHz: 20,
  /** Input notifications per player per second (client → server). */
  inputsPerSec: 5,
  /** Calls per player per second (client → server, `act`). */
  callsPerSec: 1,
  /** The server calls each player once per this period (`ready`), spread evenly over ticks. */
  serverCallEveryMs: 10_000,
  /** …with this deadline. */
  serverCallDeadlineMs: 2_000,
} as const;

export interface RoomState {
  /** Send time, µs on the monotonic clock shared by the processes (one-way latency). */
  t: number;
  tick: number;
  room: number;
  /** Per player: id, x, y, hp. */
  players: [number, number, number, number][];
}

/**
 * A room's state: about 200 bytes of msgpack (the float64 positions dominate; JSON, for
 * socket.io, is a little larger). Built once per room and mutated per tick, as a game
 * loop updates its world rather than rebuilding it: the bench measures sending, not this.
 */
export function roomState(room: number, size: number): RoomState {
  const players: [number, number, number, number][] = [];
  for (let i = 0; i < size; i++) players.push([room * size + i, 100.25 + i * 3.5, -40.75 + room * 0.5, 100 - i]);
  return { t: 0, tick: 0, room, players };
}

/** Room name of a player by its order of arrival. */
export const roomOf = (arrival: number, size: number): string => `g${Math.floor(arrival / size)}`;

/**
 * A game server's loop clock (servers/host.ts, servers/cluster-node.ts): every tick due
 * since `epochMs` (GAME.tickHz a second) calls `onTick(tick)`, then `onCall(tick)` as many
 * times as owed so that each of `players` is called once per GAME.serverCallEveryMs.
 * Paced by the clock, not by timer ticks: every system sends the same ticks, and a
 * descheduled process catches up (at most a second's worth at once) rather than skipping.
 * Ticks count from 1 at the epoch: processes given the same epoch number them alike.
 */
export function gameLoop(
  epochMs: number,
  players: number,
  running: () => boolean,
  onTick: (tick: number) => void,
  onCall: (tick: number) => void,
): ReturnType<typeof setInterval> {
  const callsPerTick = players / ((GAME.tickHz * GAME.serverCallEveryMs) / 1000);
  let sent = 0;
  let owed = 0;
  return setInterval(() => {
    if (!running()) return;
    const due = Math.min(Math.floor(((Date.now() - epochMs) * GAME.tickHz) / 1000) - sent, GAME.tickHz);
    for (let k = 0; k < due; k++) {
      const tick = ++sent;
      onTick(tick);
      for (owed += callsPerTick; owed >= 1; owed--) onCall(tick);
    }
  }, 10);
}
