// The typed proxies (`client.server.x()`, `server.to(uid).x()`): any string member calls
// that method; `then`, `toJSON` and symbols are undefined, so awaiting, logging or
// inspecting a proxy never turns into a call.

import t from 'tap';
import { inspect } from 'node:util';
import { createOneOffProxy, createProxy } from '../protocol/index.ts';

for (const [name, make] of [['createProxy', createProxy], ['createOneOffProxy', createOneOffProxy]] as const) {
  t.test(name, async (t) => {
    const calls: Array<[string, unknown[]]> = [];
    const p = make<Record<string, (...a: unknown[]) => unknown>>((method, args) => {
      calls.push([method, args]);
      return `${method}:${args.length}`;
    });
    t.equal(p.chooseMove!(1, 2), 'chooseMove:2');
    t.equal(p['a.b']!(), 'a.b:0', 'any string is a method name');
    t.same(calls, [['chooseMove', [1, 2]], ['a.b', []]]);
    t.equal((p as { then?: unknown }).then, undefined, 'then is undefined: await does not hang');
    t.equal(await (p as unknown as Promise<unknown>), p, 'awaiting the proxy gives the proxy');
    t.equal((p as { toJSON?: unknown }).toJSON, undefined);
    t.equal((p as Record<symbol, unknown>)[Symbol.iterator], undefined);
    t.same(Object.keys(p), [], 'no own keys');
    t.equal('chooseMove' in p, false);
    t.type(inspect(p), 'string', 'inspecting it calls nothing');
    t.equal(JSON.stringify(p), '{}');
    t.equal(calls.length, 2, 'none of that made a call');
  });
}
