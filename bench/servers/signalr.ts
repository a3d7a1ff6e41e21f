// System under test: ASP.NET Core SignalR (bench/signalr/, a hub on Kestrel with the
// MessagePack protocol, release build, server GC). The server is a dotnet process; this
// process only relays the orchestrator's requests to it (its /ctl/* endpoints), so that the
// orchestrator talks to every system alike. CPU and RSS are the dotnet process' own
// (Process.TotalProcessorTime, WorkingSet64), read in it as host.ts reads Node's.

import { spawn, type ChildProcess } from 'node:child_process';
import { serve } from '../lib/ipc.ts';
import { encodeHistogram, newHistogram } from '../lib/histogram.ts';
import { signalrDll } from '../lib/signalr.ts';

let dotnet: ChildProcess | undefined;
let base = '';

async function ctl<T = Record<string, unknown>>(method: 'GET' | 'POST', path: string): Promise<T> {
  const res = await fetch(`${base}${path}`, { method });
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

function start(): Promise<number> {
  return new Promise((resolve, reject) => {
    dotnet = spawn('dotnet', [signalrDll()], { env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    dotnet.stderr!.on('data', (d: Buffer) => {
      err = (err + d.toString()).slice(-2000);
      process.stderr.write(d);
    });
    dotnet.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /PORT (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    dotnet.once('error', reject);
    dotnet.once('exit', (code) => reject(new Error(`dotnet exited (${code}) before listening: ${err}`)));
  });
}

serve(async (req) => {
  switch (req.cmd) {
    case 'listen': {
      const port = await start();
      base = `http://127.0.0.1:${port}`;
      return { port, pid: dotnet!.pid };
    }
    case 'snap':
      return ctl('GET', '/ctl/snap');
    case 'gc':
      return ctl('POST', '/ctl/gc');
    case 'mark':
      return ctl('POST', '/ctl/mark');
    case 'drive': {
      const { scenario, maxMs, rate, payloadBytes } = req as unknown as { scenario: string; maxMs: number; rate: number; payloadBytes: number };
      return ctl('POST', `/ctl/drive?scenario=${scenario}&maxMs=${maxMs}&rate=${rate}&payloadBytes=${payloadBytes}`);
    }
    case 'stop': {
      const r = await ctl<{ samples: number[]; errors: number; unfinished: number }>('POST', '/ctl/stop');
      const hist = newHistogram();
      for (const us of r.samples) hist.recordValue(us);
      return { hist: encodeHistogram(hist), errors: r.errors, unfinished: r.unfinished };
    }
    case 'exit':
      dotnet?.kill('SIGKILL');
      setImmediate(() => process.exit(0));
      return {};
    default:
      throw new Error(`unknown command ${req.cmd}`);
  }
});

// This process gone (the orchestrator stopped it) must not leave the dotnet server behind.
process.on('exit', () => dotnet?.kill('SIGKILL'));
