// What a redis-server did, from its INFO: CPU time, commands (per command), bytes in and
// out. The cluster benches take one reading before and one after a window and divide the
// difference by the window's calls or player-seconds.

import type { Redis } from 'ioredis';

export interface RedisReading {
  /** used_cpu_user + used_cpu_sys, µs (the whole process). */
  cpuUs: number;
  /** Commands run, by name (INFO commandstats `calls`). */
  calls: Record<string, number>;
  /** total_commands_processed: every command run, those inside scripts (EVALSHA) too. */
  commands: number;
  /** Bytes to and from clients (total_net_* less the replication stream). */
  netIn: number;
  netOut: number;
  /** Bytes of the replication stream (a primary sends, its replica receives). */
  replIn: number;
  replOut: number;
  role: 'master' | 'slave';
  /** Size of this reading's INFO reply, taken out of the next reading's netOut. */
  infoBytes: number;
}

/**
 * One INFO of `redis`. The INFO itself is one command, ~60 bytes in and its reply out:
 * `delta` takes them out again, so a window read with two of these reports the traffic
 * of others alone.
 */
export async function readRedis(redis: Redis): Promise<RedisReading> {
  const text = (await redis.call('INFO', 'cpu', 'stats', 'commandstats', 'replication')) as string;
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(text)?.[1] ?? 0);
  const calls: Record<string, number> = {};
  for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls[m[1]!] = Number(m[2]);
  return {
    cpuUs: Math.round((field('used_cpu_user') + field('used_cpu_sys')) * 1e6),
    calls,
    commands: field('total_commands_processed'),
    netIn: field('total_net_input_bytes') - field('total_net_repl_input_bytes'),
    netOut: field('total_net_output_bytes') - field('total_net_repl_output_bytes'),
    replIn: field('total_net_repl_input_bytes'),
    replOut: field('total_net_repl_output_bytes'),
    role: /^role:slave/m.test(text) ? 'slave' : 'master',
    infoBytes: bulkBytes(text),
  };
}

/** `INFO cpu stats commandstats replication` as RESP. */
const INFO_REQUEST_BYTES = 71;

/** What happened between two readings of one Redis, less the reading INFO itself. */
export function delta(a: RedisReading, b: RedisReading): RedisReading {
  const calls: Record<string, number> = {};
  for (const [name, n] of Object.entries(b.calls)) {
    const d = n - (a.calls[name] ?? 0) - (name === 'info' ? 1 : 0);
    if (d > 0) calls[name] = d;
  }
  return {
    cpuUs: b.cpuUs - a.cpuUs,
    calls,
    commands: b.commands - a.commands - 1,
    netIn: b.netIn - a.netIn - INFO_REQUEST_BYTES,
    netOut: b.netOut - a.netOut - a.infoBytes,
    replIn: b.replIn - a.replIn,
    replOut: b.replOut - a.replOut,
    role: b.role,
    infoBytes: 0,
  };
}

/** The sum of several readings (the shards of a Redis Cluster). */
export function sum(readings: RedisReading[], role: 'master' | 'slave' = 'master'): RedisReading {
  const total: RedisReading = { cpuUs: 0, calls: {}, commands: 0, netIn: 0, netOut: 0, replIn: 0, replOut: 0, role, infoBytes: 0 };
  for (const r of readings) {
    total.cpuUs += r.cpuUs;
    total.commands += r.commands;
    total.netIn += r.netIn;
    total.netOut += r.netOut;
    total.replIn += r.replIn;
    total.replOut += r.replOut;
    for (const [name, n] of Object.entries(r.calls)) total.calls[name] = (total.calls[name] ?? 0) + n;
  }
  return total;
}

/** A RESP bulk string's size on the wire: `$<len>\r\n<text>\r\n`. */
function bulkBytes(text: string): number {
  const n = Buffer.byteLength(text);
  return n + String(n).length + 5;
}

