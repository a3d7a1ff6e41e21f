// Errors that cross the wire: application codes, hidden internals, unknown and forbidden
// method names, and params checks (arity, Standard Schema via valibot, guard functions).

import t from 'tap';
import * as v from 'valibot';
import WebSocket from 'ws';
import { RpcError, encode, decodeFrame, DEFAULT_LIMITS } from '../server/index.ts';
import { startServer, until } from './helpers.ts';

const SECRET = 'db password is hunter2 at /srv/secret/path.ts';

/** A raw ws client logged in as uid: sends msgpack-rpc by hand and keeps every frame it receives. */
async function rawClient(url: string, uid: string) {
  const ws = new WebSocket(`${url}?token=u:${uid}`);
  const frames: Buffer[] = [];
  ws.on('message', (data: Buffer) => frames.push(data));
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  return {
    ws,
    frames,
    /** Send one request and resolve with the raw bytes of the frame holding its response. */
    async request(id: number, method: string, params: unknown[]): Promise<{ raw: Buffer; msg: unknown[] }> {
      ws.send(encode([0, id, method, params]));
      let found: { raw: Buffer; msg: unknown[] } | undefined;
      await until(() => {
        for (const raw of frames)
          for (const m of decodeFrame(raw, DEFAULT_LIMITS.maxMessagesPerFrame) as unknown[][])
            if (m[0] === 1 && m[1] === id) found = { raw, msg: m };
        return found !== undefined;
      }, 2000, `response ${id}`);
      return found!;
    },
  };
}

t.test('handler errors: RpcError code and data arrive; anything else is INTERNAL with no detail', async (t) => {
  const reported: unknown[] = [];
  const h = await startServer({
    onError: (err) => reported.push(err),
    handlers: {
      buy: (_ctx: unknown, item: string) => {
        throw new RpcError('NOT_ENOUGH_GOLD', `cannot afford ${item}`, { need: 30, have: 12 });
      },
      asyncBuy: async () => {
        throw new RpcError('SOLD_OUT', 'gone');
      },
      crash: () => {
        throw new Error(SECRET);
      },
      asyncCrash: async () => {
        throw new TypeError(SECRET);
      },
      throwString: () => {
        throw SECRET; // not even an Error
      },
    },
  });
  t.teardown(() => h.close());
  const c = await h.client('alice', { onError: () => {} });

  const e1 = await c.server.buy('sword').then(() => undefined, (e: unknown) => e);
  t.ok(e1 instanceof RpcError, 'rejects with an RpcError');
  t.match(e1, { code: 'NOT_ENOUGH_GOLD', message: 'cannot afford sword', data: { need: 30, have: 12 } });
  await t.rejects(c.server.asyncBuy(), { code: 'SOLD_OUT', message: 'gone' });

  for (const m of ['crash', 'asyncCrash', 'throwString']) {
    const e = (await c.call(m, []).then(() => undefined, (err: unknown) => err)) as RpcError;
    t.equal(e.code, 'INTERNAL', `${m}: INTERNAL`);
    t.equal(e.message, 'Internal error', `${m}: generic message`);
    t.equal(e.data, undefined, `${m}: no data`);
  }
  t.equal(reported.length, 3, 'the server onError saw each original error');
  t.equal((reported[0] as Error).message, SECRET);

  // The bytes on the wire: nothing of the message or the stack leaves the process.
  const raw = await rawClient(h.url, 'raw');
  t.teardown(() => raw.ws.terminate());
  for (const [id, m] of [[1, 'crash'], [2, 'asyncCrash'], [3, 'throwString']] as const) {
    const { raw: bytes, msg } = await raw.request(id, m, []);
    t.same(msg, [1, id, { code: 'INTERNAL', message: 'Internal error' }, null], `${m}: exact response`);
    const text = bytes.toString('latin1');
    t.notOk(text.includes('hunter2'), `${m}: no message text on the wire`);
    t.notOk(/\bat\s|\.ts:\d|core-errors|Error:/.test(text), `${m}: no stack trace on the wire`);
  }
});

t.test('client handler errors reach the server the same way', async (t) => {
  const h = await startServer({ handlers: {} });
  t.teardown(() => h.close());
  const clientErrors: unknown[] = [];
  await h.client('bob', {
    onError: (err) => clientErrors.push(err),
    handlers: {
      move: () => {
        throw new RpcError('ILLEGAL_MOVE', 'no', { square: 9 });
      },
      crash: () => {
        throw new Error(SECRET);
      },
    },
  });
  await t.rejects(h.server.to('bob').move(), { code: 'ILLEGAL_MOVE', message: 'no', data: { square: 9 } });
  const e = (await h.server.call('bob', 'crash', []).then(() => undefined, (err: unknown) => err)) as RpcError;
  t.match(e, { code: 'INTERNAL', message: 'Internal error' });
  t.notOk(String(e.message).includes('hunter2'));
  t.equal(clientErrors.length, 1, 'client onError saw the original');
});

const FORBIDDEN = ['nope', '$cancel', '$session', '$ping', 'constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf'];

t.test('unknown, $-prefixed and Object.prototype method names are METHOD_NOT_FOUND both ways', async (t) => {
  // handlers built as object literals: their prototype chain must not be reachable
  const h = await startServer({ handlers: { ok: () => 'ok' } });
  t.teardown(() => h.close());
  const c = await h.client('carol', { handlers: { ok: () => 'ok' } });
  for (const m of FORBIDDEN) {
    await t.rejects(c.call(m, []), { code: 'METHOD_NOT_FOUND' }, `client → server ${m}`);
    await t.rejects(h.server.call('carol', m, []), { code: 'METHOD_NOT_FOUND' }, `server → client ${m}`);
  }
  // the proxy forwards these names too instead of returning Object.prototype members
  await t.rejects(c.server.constructor(), { code: 'METHOD_NOT_FOUND' }, 'proxy .constructor()');
  await t.rejects(c.server.toString(), { code: 'METHOD_NOT_FOUND' }, 'proxy .toString()');
  t.equal(await c.server.ok(), 'ok', 'connection still fine');
  t.equal(await h.server.to('carol').ok(), 'ok');
});

t.test('wrong number of params is INVALID_PARAMS; the handler does not run', async (t) => {
  let ran = 0;
  const h = await startServer({
    handlers: {
      add: (_ctx: unknown, a: number, b: number) => {
        ran++;
        return a + b;
      },
    },
  });
  t.teardown(() => h.close());
  const c = await h.client('dan', {
    handlers: {
      pair: (_ctx: unknown, a: string, b: string) => {
        ran++;
        return a + b;
      },
    },
  });
  await t.rejects(c.call('add', [1]), { code: 'INVALID_PARAMS' }, 'one param short');
  await t.rejects(c.call('add', []), { code: 'INVALID_PARAMS' }, 'none');
  await t.rejects(h.server.call('dan', 'pair', ['x']), { code: 'INVALID_PARAMS' }, 'server → client, one short');
  t.equal(ran, 0);
  t.equal(await c.call('add', [1, 2]), 3);
});

t.test('too many params: tolerated by default (arity is a minimum, as documented), refused by a strict schema', async (t) => {
  const h = await startServer({
    handlers: { one: (_ctx: unknown, a: number) => a, strict: (_ctx: unknown, a: number) => a },
    schemas: { strict: v.strictTuple([v.number()]) },
  });
  t.teardown(() => h.close());
  const c = await h.client('fay');
  t.equal(await c.call('one', [1, 2, 3]), 1, 'extra params ignored without a schema');
  await t.rejects(c.call('strict', [1, 2]), { code: 'INVALID_PARAMS' }, 'strictTuple refuses extras');
  t.equal(await c.call('strict', [7]), 7);
});

t.test('wrong type of params: valibot schema and guard function both give INVALID_PARAMS', async (t) => {
  let ran = 0;
  const h = await startServer({
    handlers: {
      move: (_ctx: unknown, x: number, y: number) => {
        ran++;
        return x * 10 + y;
      },
      say: (_ctx: unknown, text: string) => {
        ran++;
        return text.toUpperCase();
      },
    },
    schemas: {
      move: v.tuple([v.pipe(v.number(), v.integer(), v.minValue(0)), v.number()]),
      say: (params) => (typeof params[0] === 'string' && params[0].length <= 10) || 'text must be a string of at most 10 chars',
    },
  });
  t.teardown(() => h.close());
  const c = await h.client('eve', {
    handlers: { choose: (_ctx: unknown, opts: string[]) => opts[0] },
    schemas: { choose: v.tuple([v.array(v.string())]) },
  });

  const e = await rejects(c.call('move', ['3', 4]));
  t.match(e, { code: 'INVALID_PARAMS' }, 'schema: string for a number');
  t.type((e.data as { issues: unknown[] }).issues[0], 'string', 'issue messages travel in data');
  await t.rejects(c.call('move', [-1, 4]), { code: 'INVALID_PARAMS' }, 'schema: out of range');
  await t.rejects(c.call('move', [1.5, 4]), { code: 'INVALID_PARAMS' }, 'schema: not an integer');
  await t.rejects(c.call('say', [42]), { code: 'INVALID_PARAMS', message: 'text must be a string of at most 10 chars' }, 'guard message');
  await t.rejects(c.call('say', ['far too long a text']), { code: 'INVALID_PARAMS' }, 'guard');
  await t.rejects(h.server.call('eve', 'choose', [[1, 2]]), { code: 'INVALID_PARAMS' }, 'client-side schema');
  t.equal(ran, 0, 'no handler ran on bad params');

  t.equal(await c.call('move', [3, 4]), 34, 'valid params pass the schema');
  t.equal(await c.call('say', ['hi']), 'HI', 'and the guard');
  t.equal(await h.server.call('eve', 'choose', [['rock', 'paper']]), 'rock');
});

async function rejects(p: Promise<unknown>): Promise<RpcError> {
  try {
    await p;
  } catch (err) {
    return err as RpcError;
  }
  throw new Error('expected a rejection');
}

t.test('params or a result past the limits fail that call alone, not the connection', async (t) => {
  const deep = (n: number): unknown => (n === 0 ? 1 : [deep(n - 1)]);
  const serverErrors: unknown[] = [];
  const h = await startServer({
    onError: (err) => serverErrors.push(err),
    handlers: { count: (_c: unknown, ...a: unknown[]) => a.length, deep: () => deep(40), ok: () => 'ok' },
  });
  t.teardown(() => h.close());
  const c = await h.client('gil', {
    reconnect: false,
    onError: () => {},
    handlers: { count: (_c: unknown, ...a: unknown[]) => a.length, deep: () => deep(40) },
  });
  const many = new Array(DEFAULT_LIMITS.maxParams + 1).fill(0);
  await t.rejects(c.call('count', many), { code: 'INVALID_PARAMS' }, 'client: too many params');
  await t.rejects(c.call('count', [deep(40)]), { code: 'INVALID_PARAMS' }, 'client: params too deep');
  await t.rejects(c.call('deep', []), { code: 'INTERNAL' }, 'server handler result too deep');
  t.ok(serverErrors.some((e) => /nested deeper/.test(String(e))), 'reported to the server onError');
  await t.rejects(h.server.call('gil', 'count', many), { code: 'INVALID_PARAMS' }, 'server: too many params');
  await t.rejects(h.server.call('gil', 'deep', []), { code: 'INTERNAL' }, 'client handler result too deep');
  t.equal(await c.call('count', new Array(DEFAULT_LIMITS.maxParams).fill(0)), DEFAULT_LIMITS.maxParams, 'at the limit is fine');
  t.equal(await c.server.ok(), 'ok', 'the connection survived all of it');
  t.equal(c.state, 'open');
});

t.test('method names and notifications past the limits are refused locally, the connection stays', async (t) => {
  const deep = (n: number): unknown => (n === 0 ? 1 : [deep(n - 1)]);
  const h = await startServer({ handlers: { ok: () => 'ok', n: () => {} } });
  t.teardown(() => h.close());
  const c = await h.client('hal', { reconnect: false, handlers: { n: () => {} } });
  const many = new Array(DEFAULT_LIMITS.maxParams + 1).fill(0);
  await t.rejects(c.call('x'.repeat(DEFAULT_LIMITS.maxMethodLength + 1), []), { code: 'INVALID_PARAMS' }, 'method name too long');
  await t.rejects(c.call('', []), { code: 'INVALID_PARAMS' }, 'empty method name');
  t.throws(() => c.notify('n', ...many), { code: 'INVALID_PARAMS' }, 'client notify: too many params throws');
  t.throws(() => c.notify('n', deep(40)), { code: 'INVALID_PARAMS' }, 'client notify: too deep throws');
  t.throws(() => h.server.notify('hal', 'n', ...many), { code: 'INVALID_PARAMS' }, 'server notify throws');
  h.server.join('hal', 'room');
  t.throws(() => h.server.notifyRoom('room', 'n', deep(40)), { code: 'INVALID_PARAMS' }, 'notifyRoom throws');
  await sleepMs(50);
  t.equal(c.state, 'open', 'client still connected');
  t.equal(await c.server.ok(), 'ok');
});

const sleepMs = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('notifications pass the same arity and schema checks: bad ones never reach the handler', async (t) => {
  const seen: unknown[] = [];
  const h = await startServer({
    handlers: {
      move: (_c: unknown, x: number, y: number) => void seen.push(['move', x, y]),
      say: (_c: unknown, text: string) => void seen.push(['say', text]),
      pair: (_c: unknown, a: unknown, b: unknown) => void seen.push(['pair', a, b]),
    },
    schemas: {
      move: v.tuple([v.number(), v.number()]),
      say: (params) => typeof params[0] === 'string',
    },
  });
  t.teardown(() => h.close());
  // a hand-written client sends what a typed client could not
  const raw = await rawClient(h.url, 'raw');
  t.teardown(() => raw.ws.terminate());
  for (const bad of [[2, 'move', ['evil', { $where: 1 }]], [2, 'move', []], [2, 'say', [42]], [2, 'pair', ['only one']]])
    raw.ws.send(encode(bad));
  raw.ws.send(encode([2, 'move', [1, 2]]));
  raw.ws.send(encode([2, 'say', ['hi']]));
  raw.ws.send(encode([2, 'pair', ['a', 'b']]));
  await until(() => seen.length >= 3, 2000, 'valid notifications');
  await sleepMs(30);
  t.same(seen.sort(), [['move', 1, 2], ['pair', 'a', 'b'], ['say', 'hi']], 'only the valid ones ran');

  // server → client: the client's schemas guard its notification handlers too
  const got: unknown[] = [];
  await h.client('ivy', {
    handlers: { tick: (_c: unknown, n: number) => void got.push(n) },
    schemas: { tick: v.tuple([v.number()]) },
  });
  h.server.notify('ivy', 'tick', 'not a number');
  h.server.notify('ivy', 'tick');
  h.server.notify('ivy', 'tick', 7);
  await until(() => got.length >= 1, 2000, 'client notification');
  await sleepMs(30);
  t.same(got, [7]);
});

t.test('a result over the message size limit fails that call, without a reconnect loop', async (t) => {
  const big = () => 'x'.repeat(DEFAULT_LIMITS.maxMessageBytes + 10);
  const serverErrors: unknown[] = [];
  const h = await startServer({ onError: (e) => serverErrors.push(e), handlers: { big, ok: () => 'ok' } });
  t.teardown(() => h.close());
  let runs = 0;
  const clientErrors: unknown[] = [];
  const c = await h.client('jo', { onError: (e) => clientErrors.push(e), handlers: { big: () => (runs++, big()) } });
  const closes: number[] = [];
  c.on('close', (i) => closes.push(i.code));
  await t.rejects(h.server.call('jo', 'big', [], { timeoutMs: 3000 }), { code: 'INTERNAL' }, 'client result too large: INTERNAL, not TIMEOUT');
  t.equal(runs, 1);
  t.equal(clientErrors.length, 1, 'reported to the client onError');
  await t.rejects(c.call('big', []), { code: 'INTERNAL' }, 'server result too large: INTERNAL');
  t.equal(serverErrors.length, 1, 'reported to the server onError');
  await sleepMs(50);
  t.same(closes, [], 'the socket never dropped');
  t.equal(await c.server.ok(), 'ok');
});
