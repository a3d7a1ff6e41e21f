import t from 'tap';
import { startServer } from './helpers.ts';

t.test('smoke: calls both ways', async (t) => {
  const h = await startServer({
    handlers: { add: (_ctx: unknown, a: number, b: number) => a + b },
  });
  t.teardown(() => h.close());
  const c = await h.client('alice', { handlers: { hello: (_ctx: unknown, n: string) => `hi ${n}` } });
  t.equal(await c.server.add(2, 3), 5);
  t.equal(await h.server.to('alice').hello('bob'), 'hi bob');
});
