// Issue 9 #7: no cap on pending authentications. On the old code 3,000 concurrent slow
// authenticate() calls (a token check against a slow backend) were all accepted: each
// holds an upgrade request, and the backend takes the whole load.
//
// Fixed: a cap on authenticate() calls running at once, server-wide and per remote
// address; past it the upgrade is answered 503 at once, without calling authenticate.
// (The package branch's defaults: 1000 server-wide, 64 per address; this test only
// assumes the server-wide one, 1000, since all its sockets come from 127.0.0.1.)

import t from 'tap';
import type net from 'node:net';
import { rawUpgrade } from './rawClient.ts';
import { AttackServer, BOUNDS, GoodClient, MiB, figures, poll } from './attack/harness.ts';

const LOGINS = 1500;
const SERVER_WIDE_CAP = 1000;
/**
 * The good client's p99 here is twice the common bound: 1500 TCP handshakes and HTTP
 * upgrades arrive in one burst, and on this loaded 2-core machine that alone held a
 * call up to ~470 ms with the cap in place (the package branch), 120–340 ms without.
 */
const P99_BOUND_MS = 2 * BOUNDS.p99Ms;

t.test(`${LOGINS} concurrent slow logins from one address: past the cap, 503 at once`, async (t) => {
  const srv = await AttackServer.start(t, { holdMaxMs: 20_000 });
  const good = await GoodClient.start(t, srv);
  const before = await srv.memory();
  await srv.loop();
  const sockets: net.Socket[] = [];
  t.teardown(() => sockets.forEach((s) => s.destroy()));
  const statuses: string[] = [];
  const attempts = Array.from({ length: LOGINS }, (_, i) =>
    rawUpgrade(srv.port, `/?token=slow:${i}`).then(
      ({ socket, status }) => {
        sockets.push(socket);
        statuses.push(status);
        return status;
      },
      (err: Error) => {
        statuses.push(`error ${err.message}`);
        return 'error';
      },
    ),
  );
  // Refusals are immediate; whatever is admitted waits for the gate. 3 s to settle.
  await poll(async () => ((await srv.counters()).authPending + statuses.length >= LOGINS ? true : undefined), 3000, 50);
  await new Promise((r) => setTimeout(r, 200));
  const alive = srv.alive;
  const { authPending } = alive ? await srv.counters() : { authPending: Infinity };
  const refused = statuses.filter((s) => / 503 /.test(s)).length;
  const during = alive ? await srv.memory() : undefined;
  const loop = alive ? await srv.loop() : undefined;
  const lat = await good.stop();
  const grew = during ? during.heapUsed - before.heapUsed : Infinity;
  figures(t, '#7 pending authentications', { memory: ['heapUsed', grew], loop, good: lat, extra: `${authPending} authenticate() running, ${refused} answered 503` });

  t.ok(alive, 'the server stays up');
  t.ok(grew < 64 * MiB, `heap with ${LOGINS} logins waiting +${(grew / MiB).toFixed(1)} MiB < 64 MiB`);
  t.ok(lat.p99Ms < P99_BOUND_MS, `the good client's p99 ${lat.p99Ms.toFixed(0)} ms < ${P99_BOUND_MS} ms`);
  t.equal(lat.failures, 0, `the good client's calls all answered (${lat.firstFailure ?? 'ok'})`);
  t.ok(authPending <= SERVER_WIDE_CAP, `at most ${SERVER_WIDE_CAP} authenticate() calls run at once (${authPending})`);
  t.ok(refused >= LOGINS - SERVER_WIDE_CAP && refused + authPending === LOGINS, `the rest are answered 503 at once (${refused} of ${LOGINS})`);
  t.same([...new Set(statuses)].filter((s) => !/ 503 /.test(s)), [], 'nothing else was answered while the backend is slow');

  // The backend answers: the admitted logins complete, and the server takes logins again.
  if (alive) await srv.release();
  await Promise.race([Promise.all(attempts), new Promise((r) => setTimeout(r, 5000))]);
  t.equal(statuses.filter((s) => / 101 /.test(s)).length, alive ? authPending : 0, 'every admitted login is upgraded once authenticate answers');
  sockets.forEach((s) => s.destroy());
  const after = await srv.client(t, 'after');
  t.equal(await after.call('add', [1, 1]), 2, 'a later login is served');
});
