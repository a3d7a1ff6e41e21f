// Wins, losses and draws per player; 3 points a win, 1 a draw.

import type { Standing } from './api.ts';

export class Leaderboard {
  #rows = new Map<string, Standing>();
  #changed: (() => void)[] = [];

  /** Resolves at the next change (a match recorded), or when `signal` aborts. */
  nextChange(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      this.#changed.push(resolve);
      signal.addEventListener('abort', () => resolve(), { once: true });
    });
  }

  /** Wake every watcher: called once per match, after both players are recorded. */
  changed(): void {
    const waiting = this.#changed;
    this.#changed = [];
    for (const wake of waiting) wake();
  }

  record(uid: string, result: 'win' | 'loss' | 'draw'): void {
    let row = this.#rows.get(uid);
    if (!row) this.#rows.set(uid, (row = { uid, wins: 0, losses: 0, draws: 0, points: 0 }));
    if (result === 'win') row.wins++;
    else if (result === 'loss') row.losses++;
    else row.draws++;
    row.points = row.wins * 3 + row.draws;
  }

  top(limit = 10): Standing[] {
    return [...this.#rows.values()]
      .sort((a, b) => b.points - a.points || b.wins - a.wins || a.uid.localeCompare(b.uid))
      .slice(0, Math.max(0, Math.min(limit, 100)))
      .map((r) => ({ ...r }));
  }
}
