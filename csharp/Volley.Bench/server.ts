// The bench's server: today's Volley server with one handler, `echo`, and no rate limit (the
// default 10 000 calls/s per connection would cap what run.sh measures). Prints `LISTENING <port>`;
// exits when stdin closes.

import { createServer } from '../../server/index.ts';

const server = createServer({
  authenticate: (req) => req.token ?? null,
  rateLimit: false,
  handlers: { echo: (_: unknown, x: unknown) => x },
});
console.log(`LISTENING ${await server.listen(0, '127.0.0.1')}`);
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
