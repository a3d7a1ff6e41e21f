// The conformance server, one command: `npx tsx conformance/server.ts --port 0`
// prints `LISTENING <port>` once it accepts connections (see README.md).

import { startKit } from './kit.ts';

const arg = (name: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
};

const kit = await startKit(Number(arg('port') ?? 0), arg('host') ?? '127.0.0.1');
process.stdout.write(`LISTENING ${kit.port}\n`);

const stop = () => void kit.close().then(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
