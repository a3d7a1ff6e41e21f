// Issue 10 #8: limits hold both ways. The server announces its receive limits in
// `$session` (the client checks what it sends against them); the server sends within the
// spec's floor unless the client announced its own with `$limits`.

import t from 'tap';
import { startServer, rejectsCode } from './helpers.ts';

const nest = (depth: number): unknown => (depth === 0 ? 0 : [nest(depth - 1)]);
const depthOf = (v: unknown): number => (Array.isArray(v) ? 1 + depthOf(v[0]) : 0);

t.test('a server that raises its own limits still sends within the client\'s', async (t) => {
  const errors: unknown[] = [];
  const h = await startServer({
    handlers: {
      deep: () => nest(40), // within the server's maxDepth 64, past the client's 32
      deepArg: (_c, v: unknown) => depthOf(v),
    },
    limits: { maxDepth: 64, maxMessagesPerFrame: 1024 },
    onError: (e) => errors.push(e),
  });
  t.teardown(() => h.close());
  let got = 0;
  const c = await h.client('a', { handlers: { tick: () => void got++ } });
  // The result would make a default client close 4002 (final): the server refuses it itself.
  await rejectsCode(c.server.deep(), 'INTERNAL');
  t.match(String(errors[0]), /nested deeper than 32/, 'onError says why');
  // 600 notifications in one tick: frames of at most 256 messages, the client's limit.
  for (let i = 0; i < 600; i++) h.server.notify('a', 'tick');
  await new Promise((r) => setTimeout(r, 200));
  t.equal(got, 600, 'all delivered, none cut the socket');
  t.equal(c.state, 'open');
  // The client may send as deep as the server accepts (announced in `$session`).
  t.equal(await c.server.deepArg(nest(50)), 50, 'a client call 50 deep: within the server\'s announced 64');
});

t.test('a server that lowers its limits: the client refuses locally, before sending', async (t) => {
  let runs = 0;
  const h = await startServer({ handlers: { many: (_c, ...a: unknown[]) => (runs++, a.length) }, limits: { maxParams: 4 } });
  t.teardown(() => h.close());
  const c = await h.client('b');
  t.equal(c.peer.peerLimits.maxParams, 4, 'the client learned the server\'s limit from $session');
  t.equal(await c.server.many(1, 2, 3, 4), 4);
  const sent = c.peer.pendingOutgoing;
  await rejectsCode(c.server.many(1, 2, 3, 4, 5), 'INVALID_PARAMS');
  t.equal(c.peer.pendingOutgoing, sent, 'refused without a round trip');
});

t.test('a client with tighter receive limits announces them ($limits); the server keeps within', async (t) => {
  const errors: unknown[] = [];
  const h = await startServer({ handlers: { deep: () => nest(10) }, onError: (e) => errors.push(e) });
  t.teardown(() => h.close());
  const c = await h.client('c', { limits: { maxDepth: 8 } });
  await rejectsCode(c.server.deep(), 'INTERNAL');
  t.equal(c.state, 'open', 'the client was not pushed into closing 4002');
  t.match(String(errors[0]), /nested deeper than 8/);
});
