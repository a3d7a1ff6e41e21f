// wss:// on both transports with a self-signed certificate made here by openssl, and
// trustProxy: the client's address from X-Forwarded-For, only when asked for.

import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { connect } from '../client/index.ts';
import { createServer, detectTransport, type TransportName, type UpgradeRequest } from '../server/index.ts';
import { startServer } from './helpers.ts';

const transports: TransportName[] = detectTransport().name === 'uws' ? ['uws', 'ws'] : ['ws'];

function selfSigned(): { key: string; cert: string } {
  const dir = mkdtempSync(join(tmpdir(), 'volley-test-cert-'));
  try {
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1',
      '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ], { stdio: 'ignore', timeout: 20_000 });
    return { key: readFileSync(join(dir, 'key.pem'), 'utf8'), cert: readFileSync(join(dir, 'cert.pem'), 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const tlsDirs = () => readdirSync(tmpdir()).filter((f) => f.startsWith('volley-tls-'));

t.test('TLS: wss:// on each transport, calls both ways, the key not left on disk', async (t) => {
  const { key, cert } = selfSigned();
  // The test's client trusts exactly this certificate.
  class TrustingWS extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols, { ca: cert });
    }
  }
  for (const transport of transports) {
    const before = tlsDirs().length;
    const server = createServer<{ add(a: number, b: number): number }, { hello(): string }>({
      transport,
      tls: { key, cert },
      authenticate: (req) => req.token ?? null,
      handlers: { add: (_ctx, a, b) => a + b },
      onError: () => {},
    });
    const port = await server.listen(0, '127.0.0.1');
    t.equal(tlsDirs().length, before, `${transport}: no temporary key file left behind`);
    const c = await connect<{ add(a: number, b: number): number }, { hello(): string }>(`wss://127.0.0.1:${port}/`, {
      token: 'alice',
      WebSocket: TrustingWS,
      handlers: { hello: () => 'hi over TLS' },
    });
    t.equal(await c.server.add(2, 3), 5, `${transport}: client → server over wss`);
    t.equal(await server.to('alice').hello(), 'hi over TLS', `${transport}: server → client over wss`);
    c.close();
    // Without the certificate the handshake fails: it is really TLS with this certificate.
    const err = await connect(`wss://127.0.0.1:${port}/`, { token: 'bob', WebSocket, reconnect: false }).catch((e) => e);
    t.equal(err.code, 'DISCONNECTED', `${transport}: an untrusting client can't connect (${err.message})`);
    const plain = await connect(`ws://127.0.0.1:${port}/`, { token: 'carl', WebSocket, connectTimeoutMs: 2000 }).catch((e) => e);
    t.equal(plain.code, 'DISCONNECTED', `${transport}: plain ws:// to the TLS port fails`);
    await server.close({ graceMs: 100 });
  }
});

t.test('trustProxy: remoteAddress from X-Forwarded-For only when trusted, counted from the right', async (t) => {
  for (const transport of transports) {
    const seen: string[] = [];
    const open = async (h: { port: number }, xff: string | undefined) => {
      const ws = new WebSocket(`ws://127.0.0.1:${h.port}/?token=u:x`, { headers: xff ? { 'X-Forwarded-For': xff } : {} });
      await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
      ws.terminate();
    };
    const record = (req: UpgradeRequest) => (seen.push(req.remoteAddress), req.token!.slice(2));
    const off = await startServer({ transport, authenticate: record, handlers: {} });
    await open(off, '203.0.113.9');
    t.equal(seen.pop(), '127.0.0.1', `${transport}: off by default: the socket's address, the header ignored`);
    await off.close();

    const one = await startServer({ transport, trustProxy: true, authenticate: record, handlers: {} });
    await open(one, '198.51.100.1, 203.0.113.9');
    t.equal(seen.pop(), '203.0.113.9', `${transport}: one proxy: the entry it appended, not the client's forged one`);
    await open(one, undefined);
    t.equal(seen.pop(), '127.0.0.1', `${transport}: no header: the socket's address`);
    await one.close();

    const two = await startServer({ transport, trustProxy: 2, authenticate: record, handlers: {} });
    await open(two, '198.51.100.1, 203.0.113.9, 10.0.0.2');
    t.equal(seen.pop(), '203.0.113.9', `${transport}: two proxies: second from the right`);
    await two.close();
  }
});
