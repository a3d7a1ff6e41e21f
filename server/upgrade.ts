// Who may connect: the answer to each WebSocket upgrade. 401 (authenticate said no),
// 409 (duplicate login refused), 503 (shutting down, or too many logins in progress).
//
// A client that offers the `volley` sub-protocol gets the same refusals as an accepted
// socket closed at once with 4401/4409/4503 (SPEC §1, §6): browsers never see an HTTP
// status, only 1006, and could not tell a bad token from a dead server.

import type { SocketData } from './connection.ts';
import type { AuthLimits } from './options.ts';
import type { PendingUpgrade } from './transports/transport.ts';
import { offersVolley, type UpgradeRequest } from './upgradeRequest.ts';

/** What the transport keeps per socket: the session's, plus a refusal to deliver on open. */
export interface UpgradeData extends SocketData {
  refused?: { code: number; reason: string };
}

/** What the admission needs to know of the server. */
export interface AdmissionHost {
  closing(): boolean;
  authenticate(req: UpgradeRequest): unknown;
  duplicateLogin: 'replace' | 'reject';
  /** Session id of the uid's connection on this node, if it has one. */
  sessionOf(uid: string): string | undefined;
  /** Does another node hold uid? (cluster, duplicateLogin 'reject' only) */
  heldElsewhere?(uid: string, resumeSid: string | undefined): Promise<boolean>;
  /** A client resumes a session this node lacks: move it here if another node holds it (cluster). Never rejects. */
  adopt?(uid: string, resumeSid: string): Promise<void>;
  reportError(err: unknown): void;
  /** An upgrade was refused with this status (metrics; either as HTTP or as 4000 + status). */
  refused?(status: number): void;
}

/** Close code for a refusal after accept: 4000 + the HTTP status. */
export const refusalCloseCode = (status: number): number => 4000 + status;

export class Admission {
  #pending = 0;
  #byAddress = new Map<string, number>();

  constructor(
    readonly limits: AuthLimits,
    readonly host: AdmissionHost,
  ) {}

  /** authenticate() calls running now (tests, monitoring). */
  get pending(): number {
    return this.#pending;
  }

  handle(p: PendingUpgrade<UpgradeData>): void {
    const host = this.host;
    if (host.closing()) return refuse(host, p, 503, 'server is shutting down');
    // authenticate() usually waits on a database or an identity service: without a cap,
    // a flood of upgrades piles up thousands of those calls and the sockets behind them.
    // The slot is held until authenticate settles, even if the client gave up: otherwise
    // connect-and-abort would run any number of them at once.
    const addr = p.request.remoteAddress;
    const mine = this.#byAddress.get(addr) ?? 0;
    if (this.#pending >= this.limits.maxPending || mine >= this.limits.maxPendingPerAddress)
      return refuse(host, p, 503, 'too many logins in progress, retry later');
    let result: unknown;
    try {
      result = host.authenticate(p.request);
    } catch (err) {
      return this.#failed(p, err);
    }
    // A synchronous answer (a signed token checked in place) is taken at once: no promise,
    // no slot to hold, the socket upgraded inside the transport's own callback.
    if (typeof (result as PromiseLike<unknown> | null)?.then !== 'function') return this.#authenticated(p, result);
    this.#pending++;
    this.#byAddress.set(addr, mine + 1);
    const release = () => {
      this.#pending--;
      const n = (this.#byAddress.get(addr) ?? 1) - 1;
      if (n > 0) this.#byAddress.set(addr, n);
      else this.#byAddress.delete(addr);
    };
    Promise.resolve(result).then(
      (uid) => {
        release();
        this.#authenticated(p, uid);
      },
      (err) => {
        release();
        this.#failed(p, err);
      },
    );
  }

  #authenticated(p: PendingUpgrade<UpgradeData>, uid: unknown): void {
    if (p.aborted) return;
    if (typeof uid !== 'string' || uid.length === 0) return refuse(this.host, p, 401, 'authentication failed');
    this.#admit(p, uid);
  }

  #failed(p: PendingUpgrade<UpgradeData>, err: unknown): void {
    this.host.reportError(err);
    refuse(this.host, p, 401, 'authentication failed');
  }

  #admit(p: PendingUpgrade<UpgradeData>, uid: string): void {
    const host = this.host;
    if (host.closing()) return refuse(host, p, 503, 'server is shutting down');
    const resumeSid = p.request.query.get('sid') ?? undefined;
    if (resumeSid !== undefined && host.adopt && host.sessionOf(uid) !== resumeSid) {
      // The session may be on another node: bring it here first (the upgrade waits, bounded).
      host.adopt(uid, resumeSid).then(() => {
        if (!p.aborted) this.#decide(p, uid, resumeSid);
      });
      return;
    }
    this.#decide(p, uid, resumeSid);
  }

  #decide(p: PendingUpgrade<UpgradeData>, uid: string, resumeSid: string | undefined): void {
    const host = this.host;
    if (host.closing()) return refuse(host, p, 503, 'server is shutting down');
    const existing = host.sessionOf(uid);
    if (host.duplicateLogin === 'reject' && existing !== undefined && existing !== resumeSid)
      return refuse(host, p, 409, 'this uid is already connected');
    const held = existing === undefined && host.duplicateLogin === 'reject' ? host.heldElsewhere?.(uid, resumeSid) : undefined;
    if (!held) return p.accept({ uid, resumeSid });
    // Another node may hold the uid: refused the same way (409), before any socket exists.
    held.then(
      (elsewhere) => {
        if (p.aborted) return;
        if (host.closing()) return refuse(host, p, 503, 'server is shutting down');
        if (elsewhere) return refuse(host, p, 409, 'this uid is already connected on another node');
        p.accept({ uid, resumeSid });
      },
      () => p.accept({ uid, resumeSid }),
    );
  }
}

function refuse(host: AdmissionHost, p: PendingUpgrade<UpgradeData>, status: number, reason: string): void {
  host.refused?.(status);
  if (p.aborted) return;
  if (offersVolley(p.request.headers)) p.accept({ uid: '', refused: { code: refusalCloseCode(status), reason } });
  else p.refuse(status, reason);
}
