// Authentication at the upgrade and the duplicate-login policies.

import t from 'tap';
import WebSocket from 'ws';
import { CloseCode, connect, VolleyClient } from '../client/index.ts';
import { startServer, until, sleep } from './helpers.ts';

/** Open a raw ws upgrade and resolve with the HTTP status it was refused with, or 101. */
function upgradeStatus(url: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.on('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.on('upgrade', () => {
      resolve(101);
      ws.terminate();
    });
    ws.on('error', (err) => {
      if (!/Unexpected server response|closed before/.test(String(err))) reject(err);
    });
  });
}

t.test('rejected authentication: HTTP 401, no socket, connect() rejects', async (t) => {
  const seenTokens: Array<string | undefined> = [];
  const h = await startServer({
    handlers: { ok: () => 'ok' },
    authenticate: async (req) => {
      seenTokens.push(req.token);
      await sleep(5); // async authenticate
      if (req.token === 'throw') throw new Error('auth backend down');
      return req.token === 'good' ? 'alice' : null;
    },
  });
  t.teardown(() => h.close());
  t.equal(await upgradeStatus(`${h.url}?token=bad`), 401, 'wrong token');
  t.equal(await upgradeStatus(h.url), 401, 'no token');
  t.equal(await upgradeStatus(`${h.url}?token=throw`), 401, 'authenticate threw');
  t.equal(await upgradeStatus(h.url, { Authorization: 'Bearer bad' }), 401, 'bad bearer header');
  const refused = connect(h.url, { token: 'bad', WebSocket });
  await t.rejects(refused, { code: 'REFUSED', data: { closeCode: 4401 } }, 'connect() rejects REFUSED (close 4401: the client offers `volley`)');
  t.equal(h.server.connectionCount, 0, 'no connection was registered');
  t.same(seenTokens, ['bad', undefined, 'throw', 'bad', 'bad']);
  // the same raw client with a good token does get a socket: the 401s were the token's doing
  t.equal(await upgradeStatus(h.url, { Authorization: 'Bearer good' }), 101, 'good bearer header upgrades');

  // the client's events for a refused login: close (4401), state closed, no reconnect
  const refusedClient = new VolleyClient(h.url, { token: 'bad', WebSocket });
  const events: string[] = [];
  refusedClient.on('error', () => events.push('error'));
  refusedClient.on('close', () => events.push('close'));
  refusedClient.on('state', (s) => events.push(`state ${s}`));
  await t.rejects(refusedClient.opened, { code: 'REFUSED' });
  t.same(events, ['close', 'state closed']);
  await sleep(50);
  t.same(seenTokens.slice(5), ['good', 'bad'], 'one attempt, no reconnect after the refusal');

  const good = new VolleyClient(h.url, { token: 'good', WebSocket });
  const goodEvents: unknown[] = [];
  good.on('open', (info) => goodEvents.push(info));
  good.on('state', (s) => goodEvents.push(s));
  await good.opened;
  t.same(goodEvents, ['open', { resumed: false }], 'state open, then the open event');
  t.teardown(() => good.close());
  t.equal(await good.server.ok(), 'ok', 'a good token still works');
});

t.test("duplicate login 'replace': old socket closed with 4000, new one works, rooms survive", async (t) => {
  const h = await startServer({
    handlers: { whoami: (ctx: { uid: string }) => ctx.uid, hang: () => new Promise(() => {}) },
  });
  t.teardown(() => h.close());
  const oldNotes: string[] = [];
  const old = await h.client('alice', { handlers: {
      note: (_c: unknown, s: string) => void oldNotes.push(`old:${s}`),
      which: () => 'old',
      hang: () => new Promise(() => {}),
    },
  });
  h.server.join('alice', 'lobby');
  const oldClosed = new Promise<number>((r) => old.on('close', (i) => r(i.code)));
  const pendingOnOld = h.server.to('alice').hang().catch((e: { code: string }) => e.code);
  await until(() => old.peer.pendingIncoming === 1, 2000, 'call running on the old socket');
  const oldOwnCall = old.server.hang().catch((e: { code: string }) => e.code);

  const newNotes: string[] = [];
  const fresh = await h.client('alice', { handlers: { note: (_c: unknown, s: string) => void newNotes.push(`new:${s}`), which: () => 'new' } });
  t.equal(await oldClosed, CloseCode.REPLACED, 'old socket closed with REPLACED');
  t.equal(CloseCode.REPLACED, 4000);
  t.equal(old.state, 'closed', 'old client does not reconnect');
  t.equal(await pendingOnOld, 'DISCONNECTED', 'a call pending on the old connection rejects');
  t.equal(await oldOwnCall, 'DISCONNECTED', "the old client's own pending call rejects");
  t.equal(await fresh.server.whoami(), 'alice', 'new connection serves calls');
  t.equal(await h.server.to('alice').which(), 'new', 'server calls reach the new socket');
  t.same(h.server.rooms.roomsOf('alice'), ['lobby'], 'room membership survives');
  h.server.notifyRoom('lobby', 'note', 'hello');
  await until(() => newNotes.length === 1, 2000, 'room notification on the new socket');
  t.same(newNotes, ['new:hello']);
  t.same(oldNotes, [], 'nothing reaches the old one');
  t.equal(h.server.connectionCount, 1);
});

t.test("duplicate login 'reject': the second connect fails (HTTP 409 / 4409), the first keeps working", async (t) => {
  const h = await startServer({ handlers: { ping: () => 'pong' }, duplicateLogin: 'reject' });
  t.teardown(() => h.close());
  const first = await h.client('bob', { handlers: { which: () => 'first' } });
  t.equal(await upgradeStatus(`${h.url}?token=u:bob`), 409, 'raw upgrade gets 409');
  const second = connect(h.url, { token: 'u:bob', WebSocket });
  await t.rejects(second, { code: 'REFUSED', data: { closeCode: 4409 } }, 'connect() rejects REFUSED (4409)');
  t.equal(first.state, 'open', 'first still open');
  t.equal(await first.server.ping(), 'pong');
  t.equal(await h.server.to('bob').which(), 'first');
  // once the first leaves, the uid may log in again
  first.close();
  await until(() => !h.server.isConnected('bob'), 2000, 'bob gone');
  t.equal(await upgradeStatus(`${h.url}?token=u:bob`), 101, 'free again after close');
});
