// Every WebSocket payload length form (7-bit, 16-bit, 64-bit lengths) and the sizes at
// their edges arrive intact, sent to one client and fanned out to a room: the ws transport
// builds each frame itself (server/transports/ws.ts, wsFrame), uWebSockets.js natively.

import t from 'tap';
import { startServer, until } from './helpers.ts';

// The notification's msgpack is [2, "s", [<str>]]: 7 bytes of envelope and str header
// around the text (up to 255: 2 header bytes; up to 65,535: 3; beyond: 5).
const sizes = [0, 1, 118, 119, 120, 121, 200, 65_520, 65_527, 65_528, 65_529, 70_000, 300_000];

t.test('frames of every length form arrive whole, to one client and to a room', async (t) => {
  const h = await startServer({ handlers: {} });
  t.teardown(() => h.close());
  const got: Record<string, string[]> = { one: [], many: [] };
  for (const uid of ['one', 'many']) {
    await h.client(uid, { handlers: { s: (_ctx: unknown, text: string) => void got[uid]!.push(text) } });
  }
  h.server.join('many', 'r');
  const texts = sizes.map((n, i) => String.fromCharCode(97 + (i % 26)).repeat(n));
  for (const text of texts) {
    h.server.notify('one', 's', text);
    h.server.notifyRoom('r', 's', text);
  }
  await until(() => got.one!.length === texts.length && got.many!.length === texts.length, 5000, 'every frame');
  for (const uid of ['one', 'many']) {
    t.same(got[uid]!.map((s) => s.length), sizes, `${uid}: the lengths, in order (${h.server.transport})`);
    t.ok(got[uid]!.every((s, i) => s === texts[i]), `${uid}: the bytes`);
  }
});
