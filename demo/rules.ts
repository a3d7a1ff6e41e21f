// Who wins a round of rock-paper-scissors. A missing move (no answer in time) loses to
// any move; two missing moves draw.

import type { Move } from './api.ts';

const BEATS: Record<Move, Move> = { rock: 'scissors', paper: 'rock', scissors: 'paper' };

/** 1 if a wins, -1 if b wins, 0 for a draw. */
export function compare(a: Move | null, b: Move | null): 1 | -1 | 0 {
  if (a === b) return 0;
  if (a === null) return -1;
  if (b === null) return 1;
  return BEATS[a] === b ? 1 : -1;
}

export function isMove(v: unknown): v is Move {
  return v === 'rock' || v === 'paper' || v === 'scissors';
}
