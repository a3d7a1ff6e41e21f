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

export async function startRedis(): Promise<RedisProcess> {
  if (!redisServerBin) throw new Error(redisMissing);
  const port = await freePort();
  let proc: ChildProcess | undefined;

  const start = async () => {
    const child = spawn(redisServerBin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
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
    await exited;
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
