// The demo's /metrics passes Prometheus' own linter (`promtool check metrics`), as a user
// copying the demo's set-up would run it: after a match, so Volley's call histograms,
// counters and Node's process metrics are all in the scrape.

import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { startDemo } from '../demo/server.ts';
import { startBot } from '../demo/bots.ts';
import { until } from './helpers.ts';

const promtool = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
if (promtool.error || promtool.status !== 0) {
  t.plan(0, 'promtool (the prometheus package) is not installed here');
} else {
  t.test("promtool check metrics on the demo's /metrics: no problems", async (t) => {
    const demo = await startDemo({ host: '127.0.0.1', moveDeadlineMs: 1000 });
    t.teardown(() => demo.close());
    const url = `ws://127.0.0.1:${demo.port}/`;
    const a = await startBot({ url, name: 'ann', thinkMs: 5, requeue: false });
    const b = await startBot({ url, name: 'bob', thinkMs: 5, requeue: false });
    t.teardown(() => {
      a.close();
      b.close();
    });
    await until(() => demo.arena.leaderboard.top().length === 2, 10_000, 'a match to finish');
    const res = await fetch(`http://127.0.0.1:${demo.port}/metrics`, { headers: { authorization: `Bearer ${demo.routesToken}` } });
    t.equal(res.status, 200, 'scrape answered');
    const text = await res.text();
    t.match(text, /rpc_server_call_duration_seconds_bucket/, "Volley's call histogram is in the scrape");
    t.match(text, /process_cpu_user_seconds_total/, "Node's process metrics are in the scrape");
    const lint = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const p = spawn('promtool', ['check', 'metrics']);
      let out = '';
      p.stdout.on('data', (d) => (out += d));
      p.stderr.on('data', (d) => (out += d));
      p.on('close', (code) => resolve({ code, out }));
      p.stdin.end(text);
    });
    t.equal(lint.out.trim(), '', `promtool's findings: ${lint.out.trim() || 'none'}`);
    t.equal(lint.code, 0, 'promtool check metrics exits 0');
  });
}
