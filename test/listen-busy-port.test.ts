// A busy port names itself on both transports: `listen()` rejects with code EADDRINUSE and
// says so in its message (uWebSockets.js itself reports only that listen failed).

import t from 'tap';
import net from 'node:net';
import { createServer } from '../server/index.ts';

t.test('listen() on a port another process holds: EADDRINUSE on this transport', async (t) => {
  const holder = net.createServer();
  await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
  t.teardown(() => holder.close());
  const port = (holder.address() as net.AddressInfo).port;
  const server = createServer({ authenticate: () => 'x', handlers: {} });
  t.teardown(() => server.close({ graceMs: 0 }));
  const err = await server.listen(port, '127.0.0.1').then(
    () => undefined,
    (e: NodeJS.ErrnoException) => e,
  );
  t.ok(err, `a second listener on ${port} over ${server.transport} is refused`);
  t.match(err?.message, /EADDRINUSE/, `over ${server.transport}: ${err?.message}`);
  t.equal(err?.code, 'EADDRINUSE', 'err.code, as node:net gives it');
});
