// The Redis cluster adapter: several Volley nodes share one Redis or one Redis Cluster; a
// player is reachable from any node. Presence (uid → node) lives in Redis with a TTL each
// node refreshes; calls to players on other nodes go over sharded pub/sub to the holder's
// channel and the reply comes back on the caller's; a room's notifications go on the
// room's own channel, which only the nodes with members in it subscribe to.
//
// Failure model: Redis down → local calls keep working, remote ones fail UNAVAILABLE at
// once; ioredis reconnects by itself and the node re-writes its presence and rooms on
// every (re)connect. Redis that stops answering (hung, partitioned) → a watchdog fails the
// calls waiting on other nodes within STALL_MS. A killed node → its channel subscription vanishes with its socket,
// so calls to its players fail UNAVAILABLE right away (PUBLISH reaches nobody) and calls
// already waiting on it fail at the next liveness sweep; its presence keys expire
// within the TTL.

import os from 'node:os';
import { randomBytes } from 'node:crypto';
import { CloseCode, ErrorCode, RpcError, hasUpload, type CallOptions } from '../../protocol/index.ts';
import type { ClusterAdapter, LocalNode, Registration, TakenSession } from '../adapter.ts';
import { openCluster, openRedis, readyOf, Scripts, spublishNow, type RedisClient } from './connection.ts';
import type { RedisAdapterOptions } from './options.ts';

export type { RedisAdapterOptions } from './options.ts';
import { Forwarding } from './forwarding.ts';
import { DEFAULT_HANDOVER_TIMEOUT_MS, DEFAULT_MAX_HANDOVER_BYTES, Handovers } from './handover.ts';
import { RemoteStreams } from './remoteStreams.ts';
import { keysFor, type Keys } from './keys.ts';
import { Presence } from './presence.ts';
import { RoomIndex } from './roomIndex.ts';
import { RoomChannels } from './roomChannels.ts';
import { STALL_MS, Watchdog } from './watchdog.ts';
import { ITEM_IN, JOIN, KICK, LEAVE, NOTIFY, PING, STREAM_OPEN, TAKE, pack, unpackAll } from './wire.ts';


const unavailable = (msg: string) => new RpcError(ErrorCode.UNAVAILABLE, msg);
/** An async iterable param (SPEC §12 upload) is read through the caller's own session: it stays on its node. */
const noUploads = (uid: string) => new RpcError(ErrorCode.INVALID_PARAMS, `uploads (async iterable params) do not cross nodes, and ${uid} is not connected to this node`);

const PING_MESSAGE = pack([PING]);

/**
 * Several Volley nodes on one Redis or Redis Cluster: a call, notification or room
 * notification to a player on another node goes through Redis and looks like a local one.
 * Pass it as the server's `adapter` (docs/CLUSTER.md).
 */
export class RedisAdapter implements ClusterAdapter {
  /** This node's id in the cluster (random per process unless set in the options). */
  readonly nodeId: string;
  /** The Redis key and channel names under this cluster's prefix. */
  readonly keys: Keys;
  /** How long a node's presence keys live without a refresh, ms. */
  readonly presenceTtlMs: number;
  #opts: RedisAdapterOptions;
  #cmd: RedisClient | undefined;
  #sub: RedisClient | undefined;
  #scripts!: Scripts;
  #presence!: Presence;
  #rooms!: RoomIndex;
  #forwarding!: Forwarding;
  #handovers!: Handovers;
  #streams!: RemoteStreams;
  #node!: LocalNode;
  #timer: ReturnType<typeof setInterval> | undefined;
  #watchdog: Watchdog | undefined;
  /** room channel → room, for the rooms this node is subscribed to. */
  #roomChannels!: RoomChannels;
  #nodeChannel: string;
  #closed = false;
  #ticking = false;
  /** Set when a Redis link dropped: the next ready writes presence and rooms again. */
  #needSync = false;
  /** Set once an outage was reported, so it is reported once, not per retry. */
  #warned = false;

  constructor(opts: RedisAdapterOptions = {}) {
    this.#opts = opts;
    this.nodeId = (opts.nodeId ?? `${os.hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`).replace(/\s/g, '_');
    this.keys = keysFor(opts.prefix ?? 'volley:');
    this.presenceTtlMs = opts.presenceTtlMs ?? 15_000;
    this.#nodeChannel = this.keys.channel(this.nodeId);
  }

  /** Both Redis clients are up (and Redis answers). */
  get connected(): boolean {
    return this.#cmd?.status === 'ready' && this.#sub?.status === 'ready' && !this.#watchdog?.stalled;
  }

  /** Messages this node received from Redis: on its own channel (batches), and room notifications for its members. */
  get received(): {
    /** Batches on this node's own channel. */
    node: number;
    /** Room notifications for members here. */
    room: number;
  } {
    return { node: this.#nodeMessages, room: this.#roomChannels?.received ?? 0 };
  }
  #nodeMessages = 0;

  /** Rooms whose channel this node listens on (it has members there). */
  get roomSubscriptions(): number {
    return this.#roomChannels?.size ?? 0;
  }

  /** Uids this node holds in Redis (for stats and tests). */
  get presenceCount(): number {
    return this.#presence?.size ?? 0;
  }

  /** Calls forwarded from here still waiting for a reply / served here for other nodes. */
  get pending(): {
    /** Forwarded from here, awaiting a reply. */
    outgoing: number;
    /** Served here for other nodes. */
    incoming: number;
  } {
    return { outgoing: this.#forwarding?.pendingOutgoing ?? 0, incoming: this.#forwarding?.pendingIncoming ?? 0 };
  }

  async attach(node: LocalNode): Promise<void> {
    this.#node = node;
    const o = this.#opts;
    const open = (name: string, subscriber?: boolean) =>
      o.cluster ? openCluster(o.cluster, name, subscriber) : openRedis(o.redis, name, subscriber);
    const cmd = (this.#cmd = open(`volley-cmd-${this.nodeId}`));
    const sub = (this.#sub = open(`volley-sub-${this.nodeId}`, true));
    this.#scripts = new Scripts(cmd);
    this.#presence = new Presence(this.nodeId, this.keys, cmd, this.#scripts, this.presenceTtlMs, (n) => this.#alive(n), !!o.cluster);
    const tickMs = Math.max(50, Math.floor(this.presenceTtlMs / 3));
    this.#roomChannels = new RoomChannels(
      this.nodeId, this.keys, cmd, sub, () => this.connected,
      (room, bytes) => node.publishLocal(room, bytes), (err) => this.#trouble(err), 3 * tickMs,
    );
    this.#rooms = new RoomIndex(this.nodeId, this.keys, cmd, this.#scripts, this.#roomChannels);
    this.#forwarding = new Forwarding(
      {
        nodeId: this.nodeId,
        ready: () => this.connected,
        locate: async (uid) => (await this.#presence.holder(uid)).node,
        publish: (to, message) => spublishNow(cmd, this.keys.channel(to), message),
      },
      node,
      // Routes older than a refresh period are looked up again anyway.
      Math.max(50, Math.floor(this.presenceTtlMs / 3)),
    );
    this.#handovers = new Handovers(
      {
        nodeId: this.nodeId,
        send: (to, message, delivered) => this.#forwarding.sendTo(to, message, delivered),
        holder: (uid) => this.#presence.holder(uid),
        stream: (uid, method, params) => this.#streams.open(uid, method, params),
      },
      node,
      o.maxHandoverBytes ?? DEFAULT_MAX_HANDOVER_BYTES,
      o.handoverTimeoutMs ?? DEFAULT_HANDOVER_TIMEOUT_MS,
    );
    this.#streams = new RemoteStreams(
      { nodeId: this.nodeId, send: (to, message, delivered) => this.#forwarding.sendTo(to, message, delivered), locate: async (uid) => (await this.#presence.holder(uid)).node },
      node,
    );
    for (const r of [cmd, sub]) {
      r.on('error', (err) => this.#trouble(err));
      r.on('ready', () => this.#onReady());
      r.on('close', () => (this.#needSync = true));
    }
    // Replies travel on the subscription: once it drops, waiting calls can't be answered.
    // Likewise the calls run here for other nodes: no reply could reach their callers.
    sub.on('close', () => this.#lostReplyPath(unavailable('lost the connection to the cluster')));
    sub.on('smessageBuffer', (channel: Buffer, message: Buffer) => this.#onMessage(channel.toString(), message));

    cmd.connect().catch(() => {}); // failures arrive as 'error' events; ioredis keeps retrying
    sub.connect().catch(() => {});
    // Queued on the subscriber until it is ready; ioredis re-subscribes after reconnects.
    const subscribed = sub.ssubscribe(this.#nodeChannel);
    subscribed.catch(() => {});
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<void>((_, reject) => {
      timer = setTimeout(() => reject(new Error('Redis not reachable yet')), this.#opts.connectTimeoutMs ?? 5000);
    });
    try {
      await Promise.race([Promise.all([subscribed, readyOf(cmd)]), timeout]);
      this.#needSync = false;
      await this.#sync();
    } catch (err) {
      // Start anyway: local players work, and the first ready writes presence and rooms.
      this.#needSync = true;
      this.#trouble(err);
    } finally {
      clearTimeout(timer);
    }
    this.#timer = setInterval(() => void this.#tick(), Math.max(50, Math.floor(this.presenceTtlMs / 3)));
    this.#timer.unref?.();
    this.#watchdog = new Watchdog({
      up: () => !this.#closed && cmd.status === 'ready',
      busy: () => this.#forwarding.pendingOutgoing > 0 || this.#forwarding.pendingIncoming > 0,
      ping: () => cmd.ping(),
      stalled: () => {
        this.#lostReplyPath(unavailable('the cluster (Redis) does not answer'));
        this.#trouble(new Error(`Redis has not answered for ${STALL_MS} ms`));
      },
      recovered: () => this.#onReady(),
    });
  }

  // ---- presence ------------------------------------------------------------------

  async register(uid: string, reg?: Registration): Promise<void> {
    const sid = reg?.sid ?? '-';
    let result;
    try {
      result = await this.#presence.claim(uid, sid, reg?.policy ?? 'replace', reg?.resumeSid, this.connected);
    } catch (err) {
      return this.#trouble(err); // the next refresh writes the entry
    }
    if (result.status === 'refused') {
      // 'reject' and another node won the race for this uid: this login loses, as on one
      // node. Its session end unregisters it (room entries go only where still ours).
      this.#node.disconnectLocal(uid, CloseCode.DUPLICATE_LOGIN, 'this uid is already connected on another node');
    } else if (result.status === 'took') {
      this.#send(result.node, pack([KICK, uid, result.sid, CloseCode.REPLACED, 'replaced by a newer login on another node']));
    }
  }

  async unregister(uid: string): Promise<void> {
    const write = this.connected;
    try {
      await Promise.all([this.#presence.release(uid, write), this.#rooms.leftAll(uid, write)]);
    } catch (err) {
      this.#trouble(err); // the entry expires with its TTL
    }
  }

  async heldElsewhere(uid: string, resumeSid?: string): Promise<boolean> {
    // Redis down: fail open (the login works; the refresh after recovery settles duplicates).
    if (!this.connected) return false;
    try {
      return await this.#presence.heldElsewhere(uid, resumeSid);
    } catch (err) {
      this.#trouble(err);
      return false;
    }
  }

  // ---- calls and notifications ------------------------------------------------------

  callRemote(uid: string, method: string, params: unknown[], opts?: CallOptions): Promise<unknown> {
    if (hasUpload(params)) return Promise.reject(noUploads(uid));
    return this.#forwarding.call(uid, method, params, opts);
  }

  notifyRemote(uid: string, method: string, params: unknown[]): void {
    if (hasUpload(params)) throw noUploads(uid); // as on one node: an upload goes with a call
    if (!this.connected) return; // notifications are at most once
    let message: Buffer;
    try {
      message = pack([NOTIFY, uid, method, params]);
    } catch {
      return;
    }
    this.#toHolder(uid, message);
  }

  publishRemote(room: string, bytes: Uint8Array): void {
    this.#roomChannels.publish(room, bytes);
  }

  // ---- rooms ---------------------------------------------------------------------------

  joined(uid: string, room: string): void {
    this.#rooms.joined(uid, room, this.connected)?.catch((err) => this.#trouble(err));
  }

  left(uid: string, room: string): void {
    this.#rooms.left(uid, room, this.connected)?.catch((err) => this.#trouble(err));
  }

  joinRemote(uid: string, room: string): boolean {
    return this.#toHolder(uid, pack([JOIN, uid, room]));
  }

  leaveRemote(uid: string, room: string): boolean {
    return this.#toHolder(uid, pack([LEAVE, uid, room]));
  }

  /** Send to whichever node holds uid (dropped if none). False when Redis is away. */
  #toHolder(uid: string, message: Buffer): boolean {
    if (!this.connected) return false;
    this.#forwarding.toHolder(uid, message);
    return true;
  }

  async connectedElsewhere(uid: string): Promise<boolean> {
    if (!this.connected) throw unavailable('no connection to the cluster');
    const { node } = await this.#presence.holder(uid);
    return !!node && node !== this.nodeId && (await this.#alive(node));
  }

  /** Read a stream from a player on another node (its node reads it and forwards the items). */
  streamRemote(uid: string, method: string, params: unknown[], opts?: CallOptions): AsyncIterable<unknown> {
    if (!this.connected) throw unavailable(`${uid} is not reachable: no connection to the cluster`);
    if (hasUpload(params)) throw noUploads(uid);
    return this.#streams.open(uid, method, params, opts);
  }

  /** The player resumed here with a session another node holds: move it here. */
  async takeSession(uid: string, sid: string, install: (taken: TakenSession) => boolean): Promise<boolean> {
    if (!this.connected) return false;
    return this.#handovers.take(uid, sid, install);
  }

  /** Engines of sessions that moved away, still relaying their calls in flight. */
  get relaying(): number {
    return this.#handovers?.relaying ?? 0;
  }

  async remoteMembers(room: string): Promise<string[]> {
    if (!this.connected) throw unavailable('no connection to the cluster');
    const members = await this.#rooms.remoteMembers(room);
    // The calls that follow (callMany({room})) go straight to each member's node, batched
    // per node, without a lookup each.
    for (const [uid, node] of members) this.#forwarding.routes.set(uid, node);
    return members.map(([uid]) => uid);
  }

  // ---- lifecycle -------------------------------------------------------------------

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#watchdog?.stop();
    this.#forwarding?.failAll(unavailable('this node is shutting down'));
    this.#forwarding?.abortIncoming();
    this.#handovers?.close();
    this.#streams?.failNode(undefined, unavailable('this node is shutting down'));
    this.#streams?.stopServing();
    if (this.connected) {
      try {
        // Whatever the server did not unregister (it normally has): drop our entries now
        // instead of letting them linger for a TTL.
        await Promise.all([
          ...this.#presence.uids().map((uid) => this.unregister(uid)),
          this.#cmd!.del(this.keys.node(this.nodeId)),
        ]);
      } catch {
        // best effort: the TTL cleans up
      }
    }
    await Promise.all([this.#cmd, this.#sub].map((r) => r?.quit().catch(() => r.disconnect())));
  }

  #onReady(): void {
    if (this.#closed || !this.connected) return;
    this.#warned = false;
    if (!this.#needSync) return;
    this.#needSync = false;
    this.#sync().catch((err) => {
      this.#needSync = true; // the next tick tries again
      this.#trouble(err);
    });
  }

  /** Write this node's liveness key, presence and rooms (at start and after every reconnect). */
  async #sync(): Promise<void> {
    this.#roomChannels.listeners.relearn(); // what was said on the room channels meanwhile is lost
    await this.#refresh();
    await this.#rooms.rewrite();
    this.#forwarding.flushCancels();
  }

  async #tick(): Promise<void> {
    // One tick at a time: while Redis hangs, ticks must not pile up behind each other.
    if (this.#closed || !this.connected || this.#ticking) return;
    this.#ticking = true;
    try {
      if (this.#needSync) {
        this.#needSync = false;
        await this.#sync();
      } else {
        await this.#refresh();
      }
      this.#roomChannels.listeners.tick();
      await this.#sweep();
    } catch (err) {
      this.#trouble(err);
    } finally {
      this.#ticking = false;
    }
  }

  async #refresh(): Promise<void> {
    await this.#cmd!.set(this.keys.node(this.nodeId), '1', 'PX', this.presenceTtlMs);
    const lost = await this.#presence.refresh();
    this.#node.observer?.presenceRefreshed();
    // Another node took these while a kick was lost (e.g. during a Redis outage).
    for (const uid of lost) this.#kicked(uid, this.#presence.sidOf(uid) ?? '', CloseCode.REPLACED, 'replaced by a newer login on another node');
  }

  /** Calls waiting on nodes that died (subscription gone) or hang (liveness key expired) fail now. */
  async #sweep(): Promise<void> {
    const nodes = [...new Set([...this.#forwarding.targets(), ...this.#streams.targets()])];
    await Promise.all(
      nodes.map(async (node) => {
        const [subscribed, alive] = await Promise.all([this.#alive(node), this.#cmd!.exists(this.keys.node(node))]);
        if (subscribed && alive !== 0) return;
        this.#forwarding.failNode(node, unavailable(`node ${node} is gone`));
        this.#streams.failNode(node, unavailable(`node ${node} is gone`));
      }),
    );
  }

  /** A node is alive while its channel has its subscriber: Redis drops a dead process's at once. */
  async #alive(node: string): Promise<boolean> {
    return ((await this.#cmd!.spublish(this.keys.channel(node), PING_MESSAGE)) as number) > 0;
  }

  /** Replies can't reach us (or our replies the callers): fail what waits, stop what runs for others. */
  #lostReplyPath(err: RpcError): void {
    this.#needSync = true;
    this.#forwarding.failAll(err);
    this.#forwarding.abortIncoming();
    this.#streams.failNode(undefined, err);
    this.#streams.stopServing();
  }

  #onMessage(channel: string, buf: Buffer): void {
    // A node's channel carries batches: one or more messages back to back.
    if (channel === this.#nodeChannel) {
      this.#nodeMessages++;
      for (const m of unpackAll(buf)) this.#onNodeMessage(m);
      return;
    }
    this.#roomChannels.onMessage(channel, buf);
  }

  #onNodeMessage(m: unknown[]): void {
    if (m[0] === KICK) this.#kicked(String(m[1]), String(m[2]), Number(m[3]), String(m[4]));
    else if ((m[0] as number) >= ITEM_IN) this.#handovers.receive(m);
    else if ((m[0] as number) >= STREAM_OPEN) this.#streams.receive(m);
    else if ((m[0] as number) >= TAKE) this.#handovers.receive(m);
    else this.#forwarding.receive(m);
  }

  /** Another node took uid's login: close session `sid` here (not a newer one). */
  #kicked(uid: string, sid: string, code: number, reason: string): void {
    const mine = this.#presence.sidOf(uid);
    if (mine === undefined || (sid && mine !== sid)) return;
    // Forget it first, so the unregister that follows does not touch the new holder's entry.
    void this.#presence.release(uid, false);
    this.#node.disconnectLocal(uid, code, reason);
  }

  #send(node: string, message: Buffer): void {
    if (this.connected) this.#cmd!.spublish(this.keys.channel(node), message).catch(() => {});
  }

  #trouble(err: unknown): void {
    if (this.#closed) return;
    this.#node?.observer?.redisError();
    if (this.#opts.onError) return this.#opts.onError(err);
    if (this.#warned) return;
    this.#warned = true;
    console.warn(`[volley] cluster: Redis trouble on node ${this.nodeId}: ${(err as Error)?.message ?? err}`);
  }
}


/** `new RedisAdapter(opts)`, as a function. */
export function createRedisAdapter(opts?: RedisAdapterOptions): RedisAdapter {
  return new RedisAdapter(opts);
}
