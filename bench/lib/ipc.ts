// Request/reply over a child process' IPC channel. The orchestrator and its server and
// client processes speak in small JSON messages: { id, cmd, ... } → { re: id, ... }.

import type { ChildProcess } from 'node:child_process';

export interface Request {
  id: number;
  cmd: string;
  [key: string]: unknown;
}

let nextId = 1;

/** Send `cmd` to a child and resolve with its reply; reject if it exits or takes longer than `ms`. */
export function request<T = Record<string, unknown>>(
  child: ChildProcess,
  cmd: string,
  args: Record<string, unknown> = {},
  ms = 120_000,
): Promise<T> {
  const id = nextId++;
  return new Promise<T>((resolve, reject) => {
    const onMessage = (msg: { re?: number; error?: string }) => {
      if (msg?.re !== id) return;
      cleanup();
      if (msg.error) reject(new Error(`${cmd}: ${msg.error}`));
      else resolve(msg as T);
    };
    const onExit = (code: number | null) => {
      cleanup();
      reject(new Error(`${cmd}: child exited (${code}) before replying`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`${cmd}: no reply within ${ms} ms`));
    }, ms);
    const cleanup = () => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    child.on('message', onMessage);
    child.on('exit', onExit);
    child.send({ id, cmd, ...args });
  });
}

/** In a child: answer each request with what `handle` returns (or its error). */
export function serve(handle: (req: Request) => unknown | Promise<unknown>): void {
  process.on('message', (req: Request) => {
    Promise.resolve()
      .then(() => handle(req))
      .then(
        (reply) => process.send!({ ...(reply as object), re: req.id }),
        (err: unknown) => process.send!({ re: req.id, error: err instanceof Error ? err.stack ?? err.message : String(err) }),
      );
  });
  // The orchestrator gone means the run is over: never linger as an orphan.
  process.on('disconnect', () => process.exit(0));
}
