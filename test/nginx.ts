// A real nginx (Debian's) as a round-robin WebSocket load balancer on a free loopback
// port, with no stickiness: what a deploy puts in front of Volley nodes.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort, sleep } from './helpers.ts';

export const NGINX = '/usr/sbin/nginx';
export const nginxMissing: string | undefined = existsSync(NGINX) ? undefined : `nginx not installed (${NGINX}; apt-get install nginx)`;

export interface Nginx {
  port: number;
  url: string;
  stop(): Promise<void>;
}

/** nginx balancing WebSocket upgrades round-robin over `ports`; a 503 or a refused connection tries the next one. */
export async function startNginx(ports: number[]): Promise<Nginx> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'volley-nginx-'));
  const port = await freePort();
  const conf = `
worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  map $http_upgrade $connection_upgrade { default upgrade; '' close; }
  upstream volley {
${ports.map((p) => `    server 127.0.0.1:${p} max_fails=0;`).join('\n')}
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://volley;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_read_timeout 60s;
      proxy_connect_timeout 1s;
      proxy_next_upstream error timeout http_503;
    }
  }
}
`;
  writeFileSync(path.join(dir, 'nginx.conf'), conf);
  const child: ChildProcess = spawn(NGINX, ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-e', path.join(dir, 'error.log')], { stdio: 'ignore' });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const end = Date.now() + 10_000;
  while (!(await listening(port))) {
    if (child.exitCode !== null || Date.now() > end) throw new Error(`nginx did not start (exit ${child.exitCode})`);
    await sleep(20);
  }
  return {
    port,
    url: `ws://127.0.0.1:${port}/`,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}
