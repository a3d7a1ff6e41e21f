// Cluster metrics on a real Redis: a call forwarded to another node is counted by outcome,
// presence refreshes tick, and when Redis dies the health route turns 503 and Redis errors
// are counted.

import t from 'tap';
import { Registry } from 'prom-client';
import type { ServerContext } from '../server/index.ts';
import { startNode } from './clusterNodes.ts';
import { redisMissing, startRedis } from './redisServer.ts';
import { rejectsCode, sleep } from './helpers.ts';

const handlers = { relay: (ctx: ServerContext, uid: string) => ctx.server.call(uid, 'ask', []) };

async function metric(registry: Registry, line: RegExp): Promise<number | undefined> {
  const m = line.exec(await registry.metrics());
  return m ? Number(m[1]) : undefined;
}

t.test('forwarded calls, presence refreshes, Redis errors and health', { skip: redisMissing ?? false }, async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const settings = { redis: redis.url, prefix: `mc${process.pid}:`, presenceTtlMs: 600 };
  const registry = new Registry();
  const [A, B] = await Promise.all([
    startNode(settings, { handlers, observe: { registry, routes: true, routesToken: 'metrics-cluster-test-token' } }),
    startNode(settings, { handlers }),
  ]);
  t.teardown(() => Promise.all([A.close(), B.close()]));
  const alice = await A.client('alice');
  await B.client('bob', { handlers: { ask: () => 42 } });
  t.equal(await alice.call('relay', ['bob'] as never), 42);
  await rejectsCode(alice.call('relay', ['nobody'] as never), 'UNAVAILABLE');

  t.equal(await metric(registry, /^volley_cluster_forwarded_call_duration_seconds_count\{rpc_response_status_code="OK"\} (\d+)$/m), 1, 'one call forwarded, OK');
  t.equal(await metric(registry, /^volley_cluster_forwarded_call_duration_seconds_count\{rpc_response_status_code="UNAVAILABLE"\} (\d+)$/m), 1);
  t.equal(await metric(registry, /^rpc_client_call_duration_seconds_count\{[^}]*rpc_method="ask",rpc_response_status_code="OK"\} (\d+)$/m), 1, 'also a call made');
  // presenceTtlMs 600: a refresh every 200 ms.
  await sleep(700);
  t.ok((await metric(registry, /^volley_cluster_presence_refreshes_total (\d+)$/m))! >= 2, 'presence refreshed');
  t.equal(await metric(registry, /^volley_cluster_redis_errors_total (\d+)$/m), 0);

  const health = async () => {
    const res = await fetch(`http://127.0.0.1:${A.port}/health`);
    return { status: res.status, body: (await res.json()) as { redis?: string } };
  };
  t.same(await health(), { status: 200, body: { status: 'ready', listening: true, redis: 'connected' } });

  await redis.kill();
  let last = await health();
  for (let i = 0; i < 50 && last.status !== 503; i++) {
    await sleep(100);
    last = await health();
  }
  t.same(last, { status: 503, body: { status: 'not ready', listening: true, redis: 'disconnected' } }, 'Redis gone: not ready');
  // ioredis reports the refused reconnects as errors, on its own backoff schedule.
  let errors = 0;
  for (let i = 0; i < 50 && !(errors > 0); i++) {
    await sleep(100);
    errors = (await metric(registry, /^volley_cluster_redis_errors_total (\d+)$/m))!;
  }
  t.ok(errors > 0, `Redis errors counted (${errors})`);
});
