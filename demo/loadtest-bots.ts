// Bots for `volley-loadtest` against the demo arena (`npm run loadtest`): copy this file,
// point its types at your own game's contract, and change what a bot does.
//
// Every bot connects, answers the server's calls and notifications, and looks at its
// profile or the leaderboard every EVERY_MS (a paced closed loop). A share of them
// (PLAY_PERCENT) also queue and play: the server calls them for a move each round
// (chooseMove, answered after a random think time up to THINK_MS) and they queue again
// LOBBY_MS after each match. Why only a share: each match end notifies the whole lobby
// (leaderboardChanged), so notifications grow as players × match ends per second, the
// first thing a load test of this demo shows. `--rate 2000/s --action whoami` adds an
// open-loop arrival rate on top.

import { defineBots } from '../loadtest/index.ts';
import { MOVES, type ArenaClient, type ArenaServer } from './api.ts';

const num = (name: string, dflt: number) => (process.env[name] ? Number(process.env[name]) : dflt);
const EVERY_MS = num('EVERY_MS', 1000);
const THINK_MS = num('THINK_MS', 300);
const LOBBY_MS = num('LOBBY_MS', 2000);
const PLAY_PERCENT = num('PLAY_PERCENT', 2);

export default defineBots<ArenaServer, ArenaClient>({
  // The demo's authenticate takes the player's name as the token.
  token: (i) => `lt${i}`,

  handlers: (bot) => ({
    chooseMove: async () => {
      await bot.sleep(bot.random(0, THINK_MS));
      return bot.pick(MOVES);
    },
    matchStart: () => {},
    roundResult: () => {},
    matchEnd: () => {
      void bot.sleep(LOBBY_MS).then(() => (bot.stopping ? undefined : bot.server.queue().catch(() => {})));
    },
    leaderboardChanged: () => {},
  }),

  async run(bot) {
    if (bot.index % 100 < PLAY_PERCENT) await bot.server.queue();
    let n = 0;
    await bot.every(EVERY_MS, async (b) => {
      if (n++ % 5 === 4) await b.server.leaderboard(5);
      else await b.server.whoami();
    });
  },

  actions: {
    whoami: (bot) => bot.server.whoami(),
    leaderboard: (bot) => bot.server.leaderboard(10),
  },

  client: { timeoutMs: 10_000 },
});
