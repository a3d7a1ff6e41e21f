// callMany: one outcome per uid (ok, error, timeout, offline), never one rejection for all.

import t, { type Test } from 'tap';
import { RpcError, type Outcome } from '../server/index.ts';
import { startServer, until, type Harness } from './helpers.ts';

interface ClientApi {
  chooseMove(round: number): string;
}

/** Players: two answer (each its own move), one refuses, one never answers, one leaves mid-call. */
async function players(t: Test, h: Harness<any, ClientApi>) {
  const timedOut: string[] = [];
  await h.client('ann', { handlers: { chooseMove: (_c, r) => `rock-${r}` } });
  await h.client('ben', { handlers: { chooseMove: async (_c, r) => `paper-${r}` } });
  await h.client('cat', {
    handlers: {
      chooseMove: () => {
        throw new RpcError('NOT_YOUR_TURN', 'wait', { turn: 'ann' });
      },
    },
  });
  await h.client('dan', {
    handlers: {
      chooseMove: (ctx) =>
        new Promise<string>((_res, rej) =>
          ctx.signal.addEventListener('abort', () => (timedOut.push('dan'), rej(ctx.signal.reason))),
        ),
    },
  });
  const eve = await h.client('eve', {
    reconnect: false,
    handlers: {
      chooseMove: () => {
        setTimeout(() => eve.close(), 5); // leaves while the call is pending
        return new Promise<string>(() => {});
      },
    },
  });
  t.equal(h.server.connectionCount, 5);
  return { timedOut };
}

function check(t: Test, outcomes: Outcome<string>[], uids: string[]) {
  t.same(outcomes.map((o) => o.uid), uids, 'one outcome per uid, in order');
  const by = Object.fromEntries(outcomes.map((o) => [o.uid, o]));
  t.match(by.ann, { status: 'ok', value: 'rock-7' });
  t.match(by.ben, { status: 'ok', value: 'paper-7' });
  t.match(by.cat, { status: 'error' });
  t.match(by.cat!.status === 'error' && by.cat!.error, { code: 'NOT_YOUR_TURN', message: 'wait', data: { turn: 'ann' } });
  t.ok(by.cat!.status === 'error' && by.cat!.error instanceof RpcError, 'error is an RpcError');
  t.match(by.dan, { status: 'timeout', error: { code: 'TIMEOUT' } });
  t.match(by.eve, { status: 'offline', error: { code: 'DISCONNECTED' } }, 'left during the call');
  if (uids.includes('ghost')) t.match(by.ghost, { status: 'offline', error: { code: 'UNAVAILABLE' } }, 'never connected');
}

t.test('callMany by uid list: ok, error, timeout and offline side by side', async (t) => {
  const h = await startServer<any, ClientApi>({ handlers: {} });
  t.teardown(() => h.close());
  const { timedOut } = await players(t, h);
  const uids = ['ann', 'ghost', 'ben', 'cat', 'dan', 'eve'];
  const t0 = Date.now();
  const outcomes = await h.server.callMany(uids, 'chooseMove', [7], { timeoutMs: 150 });
  t.ok(Date.now() - t0 < 2000, 'resolves at the deadline, not later');
  check(t, outcomes, uids);
  await until(() => timedOut.length === 1, 2000, "dan's handler signal");
  t.equal(h.server.stats().pendingOutgoing, 0, 'the server holds no call after callMany');
  t.same(await h.server.callMany([], 'chooseMove', [1]), [], 'empty list: no outcomes');
});

t.test('callMany by room: members only, offline members reported', async (t) => {
  const h = await startServer<any, ClientApi>({ handlers: {} });
  t.teardown(() => h.close());
  await players(t, h);
  const outsider: number[] = [];
  await h.client('zed', { handlers: { chooseMove: (_c, r) => (outsider.push(r), 'zed') } });
  // 'ghost' never connected: a uid without a session joins no room (issue 9 #6).
  for (const uid of ['ann', 'ben', 'cat', 'dan', 'eve', 'ghost']) h.server.join(uid, 'table-1');
  const outcomes = await h.server.callMany({ room: 'table-1' }, 'chooseMove', [7], { timeoutMs: 150 });
  t.same(outcomes.map((o) => o.uid).sort(), ['ann', 'ben', 'cat', 'dan', 'eve']);
  check(t, outcomes, outcomes.map((o) => o.uid));
  t.same(outsider, [], 'a non-member was not called');
  t.same(await h.server.callMany({ room: 'empty' }, 'chooseMove', [1]), [], 'empty room: no outcomes');
});
