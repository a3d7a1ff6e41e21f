// Node bots for the demo: `npm run bots` (BOTS=4 URL=ws://localhost:8080/ by default).
// Each bot connects, queues, answers the server's move requests, and requeues after a match.

import WebSocket from 'ws';
import { connect, type VolleyClient } from '../client/index.ts';
import { MOVES, type ArenaClient, type ArenaServer, type Move } from './api.ts';

export interface BotOptions {
  url: string;
  name: string;
  /** Think time before answering, ms (random in [0, thinkMs]). */
  thinkMs?: number;
  /** Queue again after each match. */
  requeue?: boolean;
  /** Queue at all (false: a spectator that only watches). Default true. */
  queue?: boolean;
  log?: (line: string) => void;
}

export async function startBot(opts: BotOptions): Promise<VolleyClient<ArenaServer, ArenaClient>> {
  const log = opts.log ?? (() => {});
  const think = opts.thinkMs ?? 300;
  const client: VolleyClient<ArenaServer, ArenaClient> = await connect<ArenaServer, ArenaClient>(opts.url, {
    token: opts.name,
    WebSocket,
    handlers: {
      chooseMove: async (ctx, info) => {
        await new Promise((r) => setTimeout(r, Math.random() * think));
        ctx.signal.throwIfAborted();
        const move: Move = MOVES[Math.floor(Math.random() * 3)]!;
        log(`${opts.name}: match ${info.matchId} round ${info.round} → ${move}`);
        return move;
      },
      matchStart: (_ctx, info) => log(`${opts.name}: match ${info.matchId} vs ${info.players.filter((p) => p !== opts.name).join()}`),
      roundResult: () => {},
      matchEnd: (_ctx, end) => {
        log(`${opts.name}: match ${end.matchId} ${end.winner === opts.name ? 'WON' : end.winner ? 'lost' : 'drawn'}`);
        if (opts.requeue !== false) void client.server.queue().catch(() => {});
      },
      leaderboardChanged: () => {},
    },
  });
  if (opts.queue !== false) await client.server.queue();
  return client;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const url = process.env.URL ?? `ws://localhost:${process.env.PORT ?? 8080}/`;
  const count = Number(process.env.BOTS ?? 4);
  const bots = await Promise.all(
    Array.from({ length: count }, (_, i) => startBot({ url, name: `bot${i + 1}`, log: (l) => console.log(l) })),
  );
  console.log(`${bots.length} bots playing on ${url}; Ctrl-C to stop`);
  setInterval(async () => {
    const top = await bots[0]!.server.leaderboard(5).catch(() => []);
    console.log('leaderboard:', top.map((s) => `${s.uid} ${s.points}pt`).join(', '));
  }, 10_000).unref();
  process.once('SIGINT', () => {
    for (const b of bots) b.close();
    process.exit(0);
  });
}
