// The game loop: pair queued players, play best-of-N matches by asking both players for
// a move at once with a deadline (callMany), and tell the match room each result.

import type { VolleyServer } from '../server/index.ts';
import type { ArenaClient, ArenaServer, Move } from './api.ts';
import { Leaderboard } from './leaderboard.ts';
import { compare, isMove } from './rules.ts';

export interface ArenaOptions {
  rounds?: number;
  moveDeadlineMs?: number;
  log?: (line: string) => void;
}

export const LOBBY = 'lobby';

export class Arena {
  readonly leaderboard = new Leaderboard();
  #queue: string[] = [];
  #nextMatch = 1;
  /** Room names must be unique across cluster nodes (room notifications reach every node). */
  #roomTag = Math.random().toString(36).slice(2, 8);
  #rounds: number;
  #deadlineMs: number;
  #log: (line: string) => void;
  server!: VolleyServer<ArenaServer, ArenaClient>;

  constructor(opts: ArenaOptions = {}) {
    this.#rounds = opts.rounds ?? 3;
    this.#deadlineMs = opts.moveDeadlineMs ?? 5000;
    this.#log = opts.log ?? (() => {});
  }

  /** Queue a player and start a match if two are waiting. */
  enqueue(uid: string): number {
    if (!this.#queue.includes(uid)) this.#queue.push(uid);
    const waiting = this.#queue.length;
    this.#pair();
    return waiting;
  }

  dequeue(uid: string): void {
    this.#queue = this.#queue.filter((u) => u !== uid);
  }

  #pair(): void {
    // Skip players who left while queued.
    this.#queue = this.#queue.filter((u) => this.server.isConnected(u));
    while (this.#queue.length >= 2) {
      const players = this.#queue.splice(0, 2) as [string, string];
      void this.#play(this.#nextMatch++, players).catch((err) => this.#log(`match error: ${String(err)}`));
    }
  }

  async #play(matchId: number, players: [string, string]): Promise<void> {
    const room = `match:${this.#roomTag}:${matchId}`;
    for (const uid of players) this.server.join(uid, room);
    this.#log(`match ${matchId}: ${players[0]} vs ${players[1]}`);
    this.server.notifyRoom(room, 'matchStart', { matchId, players, rounds: this.#rounds });
    const score: Record<string, number> = { [players[0]]: 0, [players[1]]: 0 };
    const needed = Math.floor(this.#rounds / 2) + 1;
    for (let round = 1; round <= this.#rounds; round++) {
      // Ask both players at once; each answer, error or timeout is its own outcome.
      const info = { matchId, round, rounds: this.#rounds, players, deadlineMs: this.#deadlineMs };
      const outcomes = await this.server.callMany(players, 'chooseMove', [info], { timeoutMs: this.#deadlineMs });
      const moves: Record<string, Move | null> = {};
      for (const o of outcomes) moves[o.uid] = o.status === 'ok' && isMove(o.value) ? o.value : null;
      const c = compare(moves[players[0]]!, moves[players[1]]!);
      const winner = c === 0 ? null : c > 0 ? players[0] : players[1];
      if (winner) score[winner]!++;
      this.#log(`match ${matchId} round ${round}: ${fmt(players, moves)} → ${winner ?? 'draw'}`);
      this.server.notifyRoom(room, 'roundResult', { matchId, round, moves, winner, score: { ...score } });
      if (score[players[0]]! >= needed || score[players[1]]! >= needed) break;
      if (!players.some((u) => this.server.isConnected(u))) break;
    }
    const [a, b] = players;
    const winner = score[a]! === score[b]! ? null : score[a]! > score[b]! ? a : b;
    for (const uid of players) this.leaderboard.record(uid, winner === null ? 'draw' : winner === uid ? 'win' : 'loss');
    this.leaderboard.changed();
    this.#log(`match ${matchId} over: ${winner ?? 'draw'} (${score[a]}-${score[b]})`);
    this.server.notifyRoom(room, 'matchEnd', { matchId, winner, score });
    for (const uid of players) this.server.leave(uid, room);
    this.server.notifyRoom(LOBBY, 'leaderboardChanged', this.leaderboard.top(10));
  }
}

function fmt(players: string[], moves: Record<string, Move | null>): string {
  return players.map((u) => `${u}=${moves[u] ?? '(no answer)'}`).join(' ');
}
