import t from 'tap';
import { startDemo } from '../demo/server.ts';
import { startBot } from '../demo/bots.ts';
import { until } from './helpers.ts';

t.test('demo arena: two bots play a match over Volley, the leaderboard records it', async (t) => {
  const lines: string[] = [];
  const demo = await startDemo({ host: '127.0.0.1', moveDeadlineMs: 1000, log: (l) => lines.push(l) });
  t.teardown(() => demo.close());
  const url = `ws://127.0.0.1:${demo.port}/`;
  const a = await startBot({ url, name: 'ann', thinkMs: 5, requeue: false });
  const b = await startBot({ url, name: 'bob', thinkMs: 5, requeue: false });
  t.teardown(() => {
    a.close();
    b.close();
  });
  await until(() => demo.arena.leaderboard.top().length === 2, 5000, 'match to finish');
  const top = await a.server.leaderboard(10);
  t.equal(top.length, 2);
  t.same(top.map((s) => s.uid).sort(), ['ann', 'bob']);
  const total = top.reduce((n, s) => n + s.wins + s.losses + s.draws, 0);
  t.equal(total, 2, 'one match recorded for each player');
  t.ok(lines.some((l) => /match 1: ann vs bob/.test(l)), 'server logged the pairing');
  t.ok(lines.some((l) => /match 1 over/.test(l)), 'server logged the end');
  t.same(await b.server.whoami(), { uid: 'bob' }, 'uid comes from the server-side authenticate');
});

t.test('demo arena: the live leaderboard (a stream) sends the top now and again after each match', async (t) => {
  const demo = await startDemo({ host: '127.0.0.1', moveDeadlineMs: 1000 });
  t.teardown(() => demo.close());
  const url = `ws://127.0.0.1:${demo.port}/`;
  const watcher = await startBot({ url, name: 'watcher', thinkMs: 5, requeue: false, queue: false });
  t.teardown(() => watcher.close());
  const seen: number[] = [];
  const reading = (async () => {
    for await (const top of watcher.stream('watchLeaderboard', [10])) {
      seen.push(top.length);
      if (top.length === 2) break; // breaking out cancels it on the server
    }
  })();
  await until(() => seen.length === 1, 2000, 'the first snapshot');
  t.same(seen, [0], 'the top right away: nobody has played yet');
  const a = await startBot({ url, name: 'ann', thinkMs: 5, requeue: false });
  const b = await startBot({ url, name: 'bob', thinkMs: 5, requeue: false });
  t.teardown(() => (a.close(), b.close()));
  await reading;
  t.same(seen, [0, 2], 'then the top after the match');
  await until(() => demo.server.stats().pendingIncoming === 0, 2000, 'the stream to end on the server');
});

t.test('demo arena: a player who never answers loses its rounds by timeout', async (t) => {
  const demo = await startDemo({ host: '127.0.0.1', moveDeadlineMs: 150, rounds: 3 });
  t.teardown(() => demo.close());
  const url = `ws://127.0.0.1:${demo.port}/`;
  const { connect } = await import('../client/index.ts');
  const { WebSocket } = await import('./helpers.ts');
  const results: { winner: string | null }[] = [];
  const silent = await connect(url, {
    token: 'silent',
    WebSocket,
    handlers: {
      chooseMove: (ctx: { signal: AbortSignal }) => new Promise((_r, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason))),
      roundResult: (_ctx: unknown, r: { winner: string | null }) => void results.push(r),
      matchStart: () => {},
      matchEnd: () => {},
      leaderboardChanged: () => {},
    },
  });
  const bot = await startBot({ url, name: 'quick', thinkMs: 1, requeue: false });
  t.teardown(() => {
    silent.close();
    bot.close();
  });
  await silent.server.queue();
  await until(() => demo.arena.leaderboard.top().length === 2, 5000, 'match to finish');
  await until(() => results.length >= 2, 2000, 'round results as room notifications');
  t.ok(results.every((r) => r.winner === 'quick'), 'the silent player lost every round');
  const top = demo.arena.leaderboard.top();
  t.equal(top[0]!.uid, 'quick');
  t.equal(top[0]!.wins, 1);
});
