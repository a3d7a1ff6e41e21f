// A real Prometheus (Debian's package) scrapes the demo server while two bots play, and
// the test asks Prometheus' HTTP API for what a dashboard would: the connections gauge,
// the call-duration histograms both ways, and a quantile computed from the buckets.

import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDemo } from '../demo/server.ts';
import { startBot } from '../demo/bots.ts';
import { freePort, sleep, until } from './helpers.ts';

const PROMETHEUS = process.env.VOLLEY_PROMETHEUS || '/usr/bin/prometheus';
const skip = existsSync(PROMETHEUS)
  ? false
  : `prometheus test skipped: no prometheus at ${PROMETHEUS} (install it: apt-get install -y --no-install-recommends prometheus)`;

interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

async function query(base: string, promql: string): Promise<Sample[]> {
  const res = await fetch(`${base}/api/v1/query?query=${encodeURIComponent(promql)}`);
  const body = (await res.json()) as { status: string; data?: { result: Sample[] }; error?: string };
  if (body.status !== 'success') throw new Error(`${promql}: ${body.error}`);
  return body.data!.result;
}

/** Poll a query until `ok(samples)` holds (Prometheus scrapes once a second here). */
async function eventually(base: string, promql: string, ok: (s: Sample[]) => boolean, ms = 20_000): Promise<Sample[]> {
  const end = Date.now() + ms;
  let last: Sample[] = [];
  while (Date.now() < end) {
    last = await query(base, promql).catch(() => []);
    if (ok(last)) return last;
    await sleep(250);
  }
  throw new Error(`${promql}: never satisfied; last ${JSON.stringify(last)}`);
}

t.test('Prometheus scrapes the demo: connections gauge and call-duration histograms', { skip, timeout: 60_000 }, async (t) => {
  const demo = await startDemo({ host: '127.0.0.1', moveDeadlineMs: 1000, rounds: 1000 });
  t.teardown(() => demo.close());
  const url = `ws://127.0.0.1:${demo.port}/`;
  const a = await startBot({ url, name: 'ann', thinkMs: 5 });
  const b = await startBot({ url, name: 'bob', thinkMs: 5 });
  t.teardown(() => {
    a.close();
    b.close();
  });

  const dir = await mkdtemp(join(tmpdir(), 'volley-prometheus-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const promPort = await freePort();
  // The scrape config a README reader would write (the demo's routes token), with a short interval for the test.
  await writeFile(
    join(dir, 'prometheus.yml'),
    `global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: volley\n    authorization:\n      credentials: ${demo.routesToken}\n    static_configs:\n      - targets: ['127.0.0.1:${demo.port}']\n`,
  );
  const prom = spawn(
    PROMETHEUS,
    [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${promPort}`],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  prom.stderr.on('data', (d) => (log = (log + d).slice(-4000)));
  const exited = new Promise<void>((r) => prom.once('exit', () => r()));
  t.teardown(async () => {
    prom.kill('SIGTERM');
    await Promise.race([exited, sleep(5000)]);
  });
  const base = `http://127.0.0.1:${promPort}`;
  await until(() => prom.exitCode === null, 1000, 'prometheus running').catch(() => {});

  try {
    const up = await eventually(base, 'up{job="volley"}', (s) => s[0]?.value[1] === '1');
    t.equal(up[0]!.value[1], '1', 'the target is up: /metrics parses as Prometheus text');

    const conns = await eventually(base, 'volley_connections', (s) => s[0]?.value[1] === '2');
    t.equal(conns[0]!.value[1], '2', 'two bots online');

    // Bots queue (client → server) and answer chooseMove (server → client) all the time.
    const served = await eventually(base, 'rpc_server_call_duration_seconds_count{rpc_method="queue",rpc_response_status_code="OK"}', (s) => Number(s[0]?.value[1]) > 0);
    t.ok(Number(served[0]!.value[1]) > 0, `queue served ${served[0]!.value[1]} times`);
    const made = await eventually(base, 'rpc_client_call_duration_seconds_count{rpc_method="chooseMove"}', (s) => Number(s[0]?.value[1]) > 2);
    t.ok(Number(made[0]!.value[1]) > 2, `chooseMove made ${made[0]!.value[1]} times`);

    // What a Grafana panel plots: p99 of calls made, from the buckets over a window.
    const p99 = await eventually(
      base,
      'histogram_quantile(0.99, sum by (le) (rate(rpc_client_call_duration_seconds_bucket{rpc_method="chooseMove"}[5s])))',
      (s) => s.length === 1 && Number.isFinite(Number(s[0]!.value[1])),
    );
    const seconds = Number(p99[0]!.value[1]);
    // Bots think up to 5 ms before answering: well under the 1 s deadline.
    t.ok(seconds > 0 && seconds < 1, `p99 of chooseMove ${seconds}s`);
  } catch (err) {
    t.comment(`prometheus log tail:\n${log}`);
    throw err;
  }
});
