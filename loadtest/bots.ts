// What a bot script exports: `export default defineBots<ServerApi, ClientApi>({ … })`,
// typed from the game's own contract (the interfaces its server and client implement).

import type { ClientContext, ClientOptions, Handlers, Remote, VolleyClient } from '../client/index.ts';
import type { ArgsOf, MethodName } from '../protocol/contract.ts';

/** One simulated player, as a bot script sees it. */
export interface Bot<ServerApi = any> {
  /** The player's index in the whole run: 0 … players − 1, across workers and generators. */
  readonly index: number;
  /** The token it logged in with (`token(index)`). */
  readonly token: string;
  /**
   * The server's methods, measured: each call's latency (from the moment it was meant to go:
   * see `every` and open-loop actions), result or error code is recorded under its method.
   */
  readonly server: Remote<ServerApi>;
  /** Send a notification (counted, fire and forget). */
  notify<M extends MethodName<ServerApi>>(method: M, ...args: ArgsOf<ServerApi, M>): void;
  /** The Volley client underneath (calls made on it directly are not measured). */
  readonly client: VolleyClient<ServerApi, any>;
  /** True once this bot is being stopped (ramp-down or Ctrl-C): loops should end. */
  readonly stopping: boolean;
  /** Resolves after `ms`, or at once when the bot starts stopping. */
  sleep(ms: number): Promise<void>;
  /**
   * A paced loop: `fn` every `ms` until the bot stops. When `fn` runs late (the previous
   * one, or the event loop, held it up), the next runs at once and its first call is timed
   * from when it was due, so a stall shows in the latencies instead of hiding in a slower
   * loop (coordinated omission, as wrk2 and k6 measure it).
   */
  every(ms: number, fn: (bot: Bot<ServerApi>) => unknown): Promise<void>;
  /** A uniform random number in [min, max). */
  random(min: number, max: number): number;
  /** Pick one element at random. */
  pick<T>(items: readonly T[]): T;
  /** The script's own per-bot state. */
  state: Record<string, unknown>;
}

/** Handlers the server's calls and notifications reach on a bot (any subset of the contract). */
export type BotHandlers<ServerApi, ClientApi> = Partial<Handlers<ClientApi, ClientContext<ServerApi>>>;

/** A bot script: what `defineBots()` takes and a script's default export holds. */
export interface BotScript<ServerApi = any, ClientApi = any> {
  /** The token bot `index` logs in with. Default `bot<index>`. */
  token?(index: number): string;
  /**
   * The handlers a bot answers the server with: think time, errors, slow answers, as the
   * script chooses. Called once per bot. Each is measured: calls answered, time to answer,
   * errors thrown, calls the server gave up on.
   */
  handlers?(bot: Bot<ServerApi>): BotHandlers<ServerApi, ClientApi>;
  /** What a bot does once connected, until `bot.stopping` (closed loop). */
  run?(bot: Bot<ServerApi>): unknown;
  /**
   * Open-loop actions: `--rate 2000/s --action name` runs `actions[name](bot)` on the
   * connected bots in turn at that constant arrival rate, whatever their answers take; the
   * first call an action makes is timed from when the action was due.
   */
  actions?: Record<string, (bot: Bot<ServerApi>) => unknown>;
  /** More options for each Volley client (deadline, reconnect, heartbeats, limits, …). */
  client?: Omit<ClientOptions<ServerApi, ClientApi>, 'token' | 'handlers' | 'WebSocket'>;
}

/** Declare a bot script, typed from the game's contract. Returns it as is. */
export function defineBots<ServerApi = any, ClientApi = any>(script: BotScript<ServerApi, ClientApi>): BotScript<ServerApi, ClientApi> {
  return script;
}
