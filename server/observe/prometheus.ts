// Volley's metrics as prom-client metric objects. prom-client's own Histogram hashes its
// label values into a string on every observe() (an allocation and ~1 µs per call); the
// counts here live in the observer's typed arrays instead, and these objects only turn
// them into prom-client's exposition shape when the registry is scraped. A Registry
// accepts any object with name, help, type and get() (what its own metrics have).
//
// Names follow the OpenTelemetry RPC semantic conventions (rpc.server.call.duration,
// rpc.client.call.duration, attributes rpc.method and rpc.response.status_code) written
// the Prometheus way: dots to underscores, the unit as a suffix, counters end in _total.

import { BUCKETS, type CallStats } from './callStats.ts';
import { AUTH_STATUSES, CLOSE_CODES, END_REASONS, OTHER, type ServerObserver } from './observer.ts';
import type { ItemStats } from './streamItems.ts';

type Labels = Record<string, string | number>;
interface Value {
  value: number;
  labels?: Labels;
  metricName?: string;
}

class Metric {
  readonly aggregator = 'sum';
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'gauge' | 'histogram',
    readonly read: () => Value[],
  ) {}
  async get() {
    return { name: this.name, help: this.help, type: this.type, values: this.read(), aggregator: this.aggregator };
  }
  reset(): void {}
}

function histogram(name: string, stats: CallStats, labelsOf: (method: string, code: string) => Labels): () => Value[] {
  const les = [...BUCKETS.map(String), '+Inf'];
  return () => {
    const out: Value[] = [];
    for (const s of stats.series()) {
      const labels = labelsOf(s.method, s.code);
      let cumulative = 0;
      for (let b = 0; b < les.length; b++) {
        cumulative += s.buckets[b]!;
        out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: les[b]! }, value: cumulative });
      }
      out.push({ metricName: `${name}_sum`, labels, value: s.sum });
      out.push({ metricName: `${name}_count`, labels, value: cumulative });
    }
    return out;
  };
}

const byIndex = (label: string, names: readonly (string | number)[], counts: Float64Array) => (): Value[] =>
  [...names, OTHER].map((n, i) => ({ labels: { [label]: String(n) }, value: counts[i] ?? 0 })).filter((v, i) => v.value > 0 || i < names.length);

/** Items of both tables, one series per (method, direction): a name in both (a server and a client method alike) adds up. */
function streamItems(tables: ItemStats[]): () => Value[] {
  return () => {
    const sums = new Map<string, Value>();
    for (const table of tables)
      for (const { method, direction, count } of table.series()) {
        const key = `${direction} ${method}`;
        const v = sums.get(key);
        if (v) v.value += count;
        else sums.set(key, { labels: { rpc_system: 'volley', rpc_method: method, direction }, value: count });
      }
    return [...sums.values()];
  };
}

/** Every metric, in the order they appear on /metrics. */
export function volleyMetrics(o: ServerObserver): Metric[] {
  const rpc = (method: string, code: string) => ({ rpc_system: 'volley', rpc_method: method, rpc_response_status_code: code });
  const one = (value: () => number) => (): Value[] => [{ value: value() }];
  return [
    new Metric('rpc_server_call_duration_seconds', 'Calls clients made to this server: time from receipt to answer, by method and outcome code.', 'histogram', histogram('rpc_server_call_duration_seconds', o.servedStats, rpc)),
    new Metric('rpc_client_call_duration_seconds', 'Calls this server made to clients: time from sending to the answer, by method and outcome code.', 'histogram', histogram('rpc_client_call_duration_seconds', o.madeStats, rpc)),
    new Metric('volley_stream_items_total', 'Stream items (a stream a call answers with, or an upload passed as a param) this server sent or received, by method and direction.', 'counter', streamItems([o.servedItems, o.madeItems])),
    new Metric('volley_ws_messages_received_total', 'WebSocket messages received (each holds one or more msgpack-rpc messages).', 'counter', one(() => o.messagesIn)),
    new Metric('volley_ws_received_bytes_total', 'Bytes of WebSocket messages received.', 'counter', one(() => o.bytesIn)),
    new Metric('volley_ws_messages_sent_total', 'WebSocket messages sent to single clients (room broadcasts not included).', 'counter', one(() => o.messagesOut)),
    new Metric('volley_ws_sent_bytes_total', 'Bytes of WebSocket messages sent to single clients.', 'counter', one(() => o.bytesOut)),
    new Metric('volley_connections', 'Players with a live socket on this node.', 'gauge', one(() => o.gauges().online)),
    new Metric('volley_sessions_parked', 'Sessions whose socket dropped, waiting in the resume window.', 'gauge', one(() => o.gauges().parked)),
    new Metric('volley_sessions_started_total', 'New sessions (logins that did not resume).', 'counter', one(() => o.sessionsStarted)),
    new Metric('volley_session_resumes_total', 'Sessions resumed on a new socket within the resume window.', 'counter', one(() => o.resumes)),
    new Metric('volley_session_ends_total', 'Sessions ended, by reason.', 'counter', () => END_REASONS.map((r, i) => ({ labels: { reason: r }, value: o.sessionEnds[i]! }))),
    new Metric('volley_disconnects_total', 'Sockets closed, by WebSocket close code (4009: the client read too slowly).', 'counter', byIndex('code', CLOSE_CODES, o.disconnects)),
    new Metric('volley_overloaded_answers_total', 'Calls answered OVERLOADED (too many running, or over the memory budget).', 'counter', one(() => o.overloaded)),
    new Metric('volley_rate_limited_answers_total', 'Calls answered RATE_LIMITED.', 'counter', one(() => o.rateLimited)),
    new Metric('volley_notifications_dropped_total', 'Notifications to clients dropped because the client was congested or offline.', 'counter', one(() => o.droppedNotifications)),
    new Metric('volley_rooms', 'Rooms with at least one member on this node.', 'gauge', one(() => o.gauges().rooms)),
    new Metric('volley_room_members', 'Room memberships on this node (a player in two rooms counts twice).', 'gauge', one(() => o.gauges().members)),
    new Metric('volley_auth_refusals_total', 'WebSocket upgrades refused, by HTTP status (401 authentication, 409 duplicate login, 503 shutting down).', 'counter', byIndex('status', AUTH_STATUSES, o.authRefusals)),
    new Metric('volley_cluster_forwarded_call_duration_seconds', 'Calls forwarded to a player on another node: time to the answer, by outcome code.', 'histogram', histogram('volley_cluster_forwarded_call_duration_seconds', o.forwardedStats, (_m, code) => ({ rpc_response_status_code: code }))),
    new Metric('volley_cluster_redis_errors_total', 'Errors from the cluster adapter\'s Redis connections and commands.', 'counter', one(() => o.redisErrors)),
    new Metric('volley_cluster_presence_refreshes_total', 'Presence refreshes this node wrote to Redis.', 'counter', one(() => o.presenceRefreshes)),
  ];
}

/** Register Volley's metrics in a prom-client Registry. */
export function registerMetrics(registry: { registerMetric(metric: unknown): void }, o: ServerObserver): void {
  for (const m of volleyMetrics(o)) registry.registerMetric(m);
}
