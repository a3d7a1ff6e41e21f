// System under test: Volley's own server, as an application would use it.

import { createServer } from '../../server/index.ts';
import { handled, host } from './host.ts';

const inRoom = process.env.BENCH_ROOM === '1';
const uids: string[] = [];

const server = createServer({
  authenticate: (req) => req.token ?? null,
  handlers: {
    add: (_ctx, a: number, b: number) => {
      handled.count++;
      return a + b;
    },
    echo: (_ctx, x: unknown) => {
      handled.count++;
      return x;
    },
  },
  onConnect: (uid, { resumed }) => {
    if (resumed) return;
    uids.push(uid);
    if (inRoom) server.join(uid, 'all');
  },
  onSessionEnd: (uid) => {
    const i = uids.indexOf(uid);
    if (i >= 0) uids.splice(i, 1);
  },
  onError: () => {},
});

host({
  listen: () => server.listen(0, '127.0.0.1'),
  clientCount: () => uids.length,
  call: (i, method, args, done) => {
    server.call(uids[i]!, method, args as never).then(() => done(), done);
  },
  callAll: (method, args, done) => {
    server.callMany(uids, method, args as never).then((outcomes) => {
      done(outcomes.some((o) => o.status !== 'ok') ? new Error('some calls failed') : undefined);
    }, done);
  },
  broadcast: (t) => server.notifyRoom('all', 'tick', t),
});
