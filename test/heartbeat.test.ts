import t from 'tap';
import { startServer, until, sleep } from './helpers.ts';
import { TcpProxy } from './tcpProxy.ts';
import { connect } from '../client/index.ts';
import WebSocket from 'ws';

t.test('client finds a silent link dead within its heartbeat timeout, reconnects and resumes', async (t) => {
  const h = await startServer({ handlers: { echo: (_c, x: number) => x } });
  const proxy = await TcpProxy.start(h.port);
  t.teardown(async () => {
    await proxy.close();
    await h.close();
  });
  const c = await connect(proxy.url, {
    token: 'u:ivy',
    WebSocket: WebSocket as never,
    heartbeatMs: 40,
    heartbeatTimeoutMs: 150,
    reconnect: { initialDelayMs: 10, maxDelayMs: 20 },
  });
  t.teardown(() => c.close());
  const closes: number[] = [];
  c.on('close', (i) => closes.push(i.code));
  const sid = c.sessionId;
  proxy.freeze();
  const frozenAt = Date.now();
  const pending = c.server.echo(7);
  await until(() => closes.length > 0, 2000, 'client to notice the dead link');
  const noticedMs = Date.now() - frozenAt;
  t.equal(closes[0], 4008, 'closed with HEARTBEAT_TIMEOUT');
  t.ok(noticedMs < 600, `noticed after ${noticedMs} ms (timeout 150 ms, interval 40 ms)`);
  await until(() => c.state === 'open', 2000, 'resume');
  t.equal(c.sessionId, sid);
  t.equal(await pending, 7, 'the call made on the dead link completed after the resume');
});

t.test('server finds a silent client dead within heartbeatTimeoutMs and keeps its session', async (t) => {
  const events: string[] = [];
  const h = await startServer({
    handlers: {},
    heartbeatMs: 40,
    heartbeatTimeoutMs: 120,
    onDisconnect: (uid) => events.push(`down:${uid}`),
  });
  const proxy = await TcpProxy.start(h.port);
  t.teardown(async () => {
    await proxy.close();
    await h.close();
  });
  // The client pings every 20 ms but never judges the link itself.
  const c = await connect(proxy.url, {
    token: 'u:jay',
    WebSocket: WebSocket as never,
    heartbeatMs: 20,
    heartbeatTimeoutMs: 60_000,
    reconnect: false,
  });
  t.teardown(() => c.close());
  await sleep(60); // at least one $ping reached the server
  proxy.freeze();
  const frozenAt = Date.now();
  await until(() => events.includes('down:jay'), 2000, 'server to drop the silent socket');
  const tookMs = Date.now() - frozenAt;
  t.ok(tookMs < 500, `server dropped it after ${tookMs} ms (timeout 120 ms)`);
  t.ok(h.server.isConnected('jay'), 'the session waits for a resume');
  t.notOk(h.server.isOnline('jay'), 'but no socket is attached');
});
