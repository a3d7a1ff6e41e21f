// The contract of the demo game, Rock-Paper-Scissors Arena: one interface per side.

export type Move = 'rock' | 'paper' | 'scissors';
export const MOVES: readonly Move[] = ['rock', 'paper', 'scissors'];

export interface RoundInfo {
  matchId: number;
  round: number;
  /** Rounds in the match (best of N). */
  rounds: number;
  /** Both players' uids (the same info goes to both, in one callMany). */
  players: string[];
  /** How long the server waits for the move, in ms. */
  deadlineMs: number;
}

export interface RoundResult {
  matchId: number;
  round: number;
  /** uid → move, or null when that player did not answer in time. */
  moves: Record<string, Move | null>;
  /** uid of the round's winner, or null for a draw. */
  winner: string | null;
  /** uid → rounds won so far in this match. */
  score: Record<string, number>;
}

export interface MatchEnd {
  matchId: number;
  winner: string | null;
  score: Record<string, number>;
}

export interface Standing {
  uid: string;
  wins: number;
  losses: number;
  draws: number;
  points: number;
}

/** What clients may call on the server. */
export interface ArenaServer {
  /** Join the matchmaking queue; resolves with the queue length after joining. */
  queue(): { waiting: number };
  /** Leave the queue (no-op if not queued). */
  leaveQueue(): void;
  /** Top players, best first. */
  leaderboard(limit?: number): Standing[];
  /** A live leaderboard: the top now, then again after every match, until the reader stops (a stream). */
  watchLeaderboard(limit?: number): AsyncIterable<Standing[]>;
  /** Who am I, as the server knows me. */
  whoami(): { uid: string };
}

/** What the server calls (and notifies) on clients. */
export interface ArenaClient {
  /** Asked each round with a deadline; answer with a move. */
  chooseMove(info: RoundInfo): Move;
  /** Notification: a match started in a room with you. */
  matchStart(info: { matchId: number; players: string[]; rounds: number }): void;
  /** Notification to the match room after each round. */
  roundResult(result: RoundResult): void;
  /** Notification to the match room when the match ends. */
  matchEnd(end: MatchEnd): void;
  /** Notification to everyone when the leaderboard changes. */
  leaderboardChanged(top: Standing[]): void;
}
