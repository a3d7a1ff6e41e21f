// Rooms: a room notification reaches its members only, and stops after they leave.

import t from 'tap';
import { startServer, until, sleep } from './helpers.ts';

interface ServerApi {
  enter(room: string): string[];
  exit(room: string): void;
}
interface ClientApi {
  said(from: string, text: string): void;
}

t.test('room notify reaches members only, and not after leave', async (t) => {
  const h = await startServer<ServerApi, ClientApi>({
    handlers: {
      // handlers manage membership through ctx.server, by the caller's uid
      enter: (ctx, room) => (ctx.server.join(ctx.uid, room), ctx.server.members(room).sort()),
      exit: (ctx, room) => ctx.server.leave(ctx.uid, room),
    },
  });
  t.teardown(() => h.close());
  const inbox: Record<string, string[]> = {};
  const clients = Object.fromEntries(
    await Promise.all(
      ['ann', 'ben', 'cat', 'dan'].map(async (uid) => {
        inbox[uid] = [];
        const c = await h.client(uid, { handlers: { said: (_ctx, from, text) => void inbox[uid]!.push(`${from}:${text}`) } });
        return [uid, c] as const;
      }),
    ),
  );
  t.same(await clients.ann!.server.enter('red'), ['ann']);
  t.same(await clients.ben!.server.enter('red'), ['ann', 'ben']);
  t.same(await clients.ben!.server.enter('red'), ['ann', 'ben'], 'joining twice is harmless');
  await clients.cat!.server.enter('blue');
  h.server.join('dan', 'red'); // the server may also place a uid itself

  h.server.notifyRoom('red', 'said', 'sys', 'one');
  h.server.notifyRoom('blue', 'said', 'sys', 'b1');
  await until(() => inbox.ann!.length === 1 && inbox.ben!.length === 1 && inbox.dan!.length === 1 && inbox.cat!.length === 1, 2000, 'first round');
  await sleep(30); // would any duplicate or stray delivery still arrive?
  t.same(inbox, { ann: ['sys:one'], ben: ['sys:one'], cat: ['sys:b1'], dan: ['sys:one'] }, 'each room to its members, once');

  await clients.ben!.server.exit('red');
  h.server.leave('dan', 'red');
  t.same(h.server.members('red'), ['ann']);
  h.server.notifyRoom('red', 'said', 'sys', 'two');
  h.server.notifyRoom('nobody-here', 'said', 'sys', 'void'); // a room without members: no-op
  await until(() => inbox.ann!.length === 2, 2000, 'second round');
  await sleep(30);
  t.same(inbox.ann, ['sys:one', 'sys:two']);
  t.same(inbox.ben, ['sys:one'], 'ben left: nothing more');
  t.same(inbox.dan, ['sys:one'], 'dan removed by the server: nothing more');
  t.same(inbox.cat, ['sys:b1']);

  // a closed session leaves its rooms
  clients.ann!.close();
  await until(() => h.server.members('red').length === 0, 2000, 'ann left red on close');
  t.same(h.server.rooms.roomsOf('ann'), []);
});

t.test('room names are literal: MQTT-style wildcards in a name match nothing else', async (t) => {
  const h = await startServer({ handlers: {} });
  t.teardown(() => h.close());
  const got: Record<string, string[]> = { a: [], b: [], c: [] };
  for (const u of ['a', 'b', 'c']) await h.client(u, { handlers: { n: (_c: unknown, s: string) => void got[u]!.push(s) } });
  h.server.join('a', '#');
  h.server.join('b', 'x/+');
  h.server.join('c', 'x/y');
  h.server.notifyRoom('x/y', 'n', 'to x/y');
  h.server.notifyRoom('#', 'n', 'to #');
  h.server.notifyRoom('x/+', 'n', 'to x/+');
  await until(() => got.a!.length + got.b!.length + got.c!.length >= 3, 2000, 'deliveries');
  await sleep(30);
  t.same(got, { a: ['to #'], b: ['to x/+'], c: ['to x/y'] });
});
