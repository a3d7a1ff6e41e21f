// Which transport a server runs on: native uWebSockets.js when its binary loads here,
// else the `ws` package. `transport` (or VOLLEY_TRANSPORT in the environment) forces one.

import type { Transport, TransportEvents, TransportName, TransportOptions } from './transport.ts';
import { loadNativeUws, uwsTransport } from './uws.ts';
import { wsTransport } from './ws.ts';

export type { Transport, TransportName, TransportOptions, TransportSocket, HttpRoutes, HttpReply, HttpRequestInfo, HttpHandler, HttpLimits, TlsOptions } from './transport.ts';

let announced = false;

/** The transport `auto` picks here, and why. */
export function detectTransport(): {
  /** 'uws' when the native binary loads here, else 'ws'. */
  name: TransportName;
  /** Which package and binary, or why none loads (what the `[volley] transport:` line says). */
  detail: string;
} {
  const { native, why } = loadNativeUws();
  if (native)
    return { name: 'uws', detail: `uWebSockets.js native (${native.from}, ${process.platform}-${process.arch}, Node ABI ${process.versions.modules})` };
  return { name: 'ws', detail: `ws on node:http (no native uWebSockets.js binary for Node ${process.versions.node} here: ${why})` };
}

function wanted(choice: TransportName | 'auto' | undefined): TransportName | 'auto' {
  const env = typeof process !== 'undefined' ? process.env.VOLLEY_TRANSPORT : undefined;
  const w = choice ?? (env === 'uws' || env === 'ws' ? env : 'auto');
  if (w !== 'auto' && w !== 'uws' && w !== 'ws') throw new TypeError(`volley: unknown transport ${String(w)} (use 'uws' or 'ws')`);
  return w;
}

export function createTransport<Data>(
  choice: TransportName | 'auto' | undefined,
  opts: TransportOptions,
  events: TransportEvents<Data>,
): Transport<Data> {
  const want = wanted(choice);
  const found = detectTransport();
  if (want === 'uws' && found.name !== 'uws')
    throw new Error(`volley: transport 'uws' asked for, but ${found.detail.replace(/^ws on node:http \(/, '(')}`);
  const name = want === 'auto' ? found.name : want;
  if (!announced) {
    announced = true;
    console.info(`[volley] transport: ${name === found.name ? found.detail : 'ws on node:http (asked for)'}`);
  }
  return name === 'uws' ? uwsTransport<Data>(loadNativeUws().native!.uws, opts, events) : wsTransport<Data>(opts, events);
}
