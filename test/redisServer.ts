// Test fixture: a real redis-server process on a free loopback port, no persistence, that
// a test can kill and start again on the same port (Redis "restarting" mid-run comes
// back empty, as a crashed cache without persistence would).

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { freePort, sleep } from './helpers.ts';

/** Path of redis-server, or undefined when it is not installed. */
export const redisServerBin: string | undefined = (() => {
  const found = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' });
  return found.status === 0 && found.stdout.trim() ? found.stdout.trim() : undefined;
})();

/** Why cluster tests skip, or undefined when they can run. */
export const redisMissing: string | undefined = redisServerBin
  ? undefined
  : 'redis-server not found on PATH: install it (Debian/Ubuntu: apt-get install -y redis-server) to run the cluster tests';

export interface RedisProcess {
  readonly port: number;
  readonly url: string;
  /** Kill it (SIGKILL: a crash, nothing flushed) and wait until it is gone. */
  kill(): Promise<void>;
  /** Start it again on the same port, empty. */
  start(): Promise<void>;
  /** Stop for good (SIGTERM). Idempotent. */
  stop(): Promise<void>;
  /** SIGSTOP / SIGCONT: Redis hangs with its sockets open (nothing tells clients it is gone). */
  pause(): void;
  resume(): void;
}

/** `port`: a given one (default: a free one); `args`: more redis-server options (e.g. cluster mode). */
export async function startRedis(opts: { port?: number; args?: readonly string[] } = {}): Promise<RedisProcess> {
  if (!redisServerBin) throw new Error(redisMissing);
  const port = opts.port ?? (await freePort());
  let proc: ChildProcess | undefined;

  const start = async () => {
    const child = spawn(redisServerBin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning', ...(opts.args ?? [])], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    reapWithUs(child);
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    proc = child;
    const end = Date.now() + 5000;
    while (!(await ping(port))) {
      if (child.exitCode !== null || Date.now() > end) {
        child.kill('SIGKILL');
        throw new Error(`redis-server on port ${port} did not start: ${stderr.trim()}`);
      }
      await sleep(20);
    }
  };

  const halt = async (signal: NodeJS.Signals) => {
    const child = proc;
    proc = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill(signal);
    // A master waits for its replicas on SIGTERM (shutdown-timeout, 10 s): 2 s is enough.
    const force = signal === 'SIGKILL' ? undefined : setTimeout(() => child.kill('SIGKILL'), 2000);
    await exited;
    clearTimeout(force);
  };

  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    kill: () => halt('SIGKILL'),
    start,
    stop: async () => {
      proc?.kill('SIGCONT'); // a paused process would not act on SIGTERM
      await halt('SIGTERM');
    },
    pause: () => void proc?.kill('SIGSTOP'),
    resume: () => void proc?.kill('SIGCONT'),
  };
}

// No redis-server may outlive the test process, however it ends: a tap timeout's SIGTERM or a
// SIGKILL runs no exit handler. So one watchdog shell per test process, in its own process
// group, keeps the list of live redis-server pids we write to its stdin; when that pipe
// closes (we are gone, whichever way) it SIGKILLs those still listed.
const WATCHDOG = `pids=' '
while read op pid; do
  case "$op $pids" in
    "+ "*) pids="$pids$pid " ;;
    "- "*" $pid "*) pids="\${pids%% $pid *} \${pids#* $pid }" ;;
  esac
done
[ -n "\${pids# }" ] && kill -KILL $pids 2>/dev/null`;
let watchdog: ChildProcess | undefined;

function reapWithUs(child: ChildProcess): void {
  if (!watchdog) {
    watchdog = spawn('sh', ['-c', WATCHDOG], { stdio: ['pipe', 'ignore', 'ignore'], detached: true });
    watchdog.unref();
    (watchdog.stdin as unknown as { unref(): void }).unref();
    watchdog.stdin!.on('error', () => {}); // it died: nothing left to tell it
  }
  const wd = watchdog.stdin!;
  wd.write(`+ ${child.pid}\n`);
  child.once('exit', () => wd.write(`- ${child.pid}\n`));
}

/** True once something on the port answers PING with PONG. */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(500, () => done(false));
    sock.once('error', () => done(false));
    sock.once('connect', () => sock.write('PING\r\n'));
    sock.once('data', (d) => done(d.toString().startsWith('+PONG')));
  });
}
