// Debian's nginx as a real origin for the browser tests: no systemd, daemon
// off, its config, logs and temp dirs inside one temp dir, serving a static
// root on 127.0.0.1 (a free port), or in front of the hub as a reverse proxy
// (`startNginxProxy`). Its access log is one JSON object per request
// (`$body_bytes_sent`: the ground truth of what that server sent).
import { spawn } from 'node:child_process';
import { createServer, connect } from 'node:net';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const NGINX_BIN = process.env.TUBER_NGINX_BIN ?? '/usr/sbin/nginx';
const STOP_MS = 10_000;

/** nginx processes started here: killed (by process group) at exit whatever happens. */
const live = new Set();
process.once('exit', () => {
  for (const c of live) { try { process.kill(-c.pid, 'SIGKILL'); } catch { /* gone */ } }
});

export async function freePort() {
  const s = createServer();
  await new Promise((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address();
  await new Promise((resolve) => s.close(resolve));
  return port;
}

export async function waitTcp(port, ms) {
  const t0 = Date.now();
  for (;;) {
    const ok = await new Promise((resolve) => {
      const c = connect(port, '127.0.0.1');
      c.once('connect', () => { c.destroy(); resolve(true); });
      c.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() - t0 > ms) throw new Error(`nothing listens on 127.0.0.1:${port} after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * nginx serving `root` on 127.0.0.1, everything else inside `dir` (which
 * must be readable by nginx's workers). Resolves to { url, pid, accessLog, stop }.
 */
export async function startNginx(dir, root) {
  return runNginx(dir, { port: await freePort(), server: `    root ${root};\n` });
}

/**
 * nginx in front of `upstreamUrl` (the hub), as operators run it: every
 * request proxied over HTTP/1.1, WebSocket upgrades (`/.tuber/ws`) too,
 * `X-Forwarded-For`/`-Proto`, the client's `Host`, no buffering. Listens on
 * 127.0.0.1:`port` (a free one by default: pass one picked with `freePort`
 * when the hub must know its public URL first). Same JSON access log as
 * `startNginx`, so `body_bytes_sent` is what the operator's side sent to
 * each client. Resolves to { url, pid, accessLog, stop }.
 */
export async function startNginxProxy(dir, upstreamUrl, { port } = {}) {
  const upstream = new URL(upstreamUrl);
  const server = `    location / {
      proxy_pass ${upstream.protocol}//${upstream.host};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_read_timeout 1h;
      proxy_send_timeout 1h;
    }
`;
  const http = `  map $http_upgrade $connection_upgrade {
    default upgrade;
    '' close;
  }
`;
  return runNginx(dir, { port: port ?? await freePort(), server, http });
}

/** Writes `dir/nginx.conf` with one server on 127.0.0.1:`port` (`server`: its body, `http`: more of the http block) and runs nginx. */
async function runNginx(dir, { port, server, http = '' }) {
  const p = (n) => join(dir, n);
  const conf = `daemon off;
master_process on;
worker_processes 1;
pid ${p('nginx.pid')};
error_log ${p('error.log')} warn;
events { worker_connections 256; }
http {
  client_body_temp_path ${p('client_body_temp')};
  proxy_temp_path ${p('proxy_temp')};
  fastcgi_temp_path ${p('fastcgi_temp')};
  uwsgi_temp_path ${p('uwsgi_temp')};
  scgi_temp_path ${p('scgi_temp')};
  include /etc/nginx/mime.types;
  default_type application/octet-stream;
  log_format tuber escape=json '{"t":$msec,"method":"$request_method","uri":"$uri","args":"$args","status":$status,'
    '"body_bytes_sent":$body_bytes_sent,"range":"$http_range","sw":"$http_service_worker","ua":"$http_user_agent"}';
  access_log ${p('access.log')} tuber;
${http}  server {
    listen 127.0.0.1:${port};
${server}  }
}
`;
  writeFileSync(p('nginx.conf'), conf);
  // Its own process group, so its workers go with it.
  const child = spawn(NGINX_BIN, ['-e', p('error.log'), '-p', dir, '-c', p('nginx.conf')],
    { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  live.add(child);
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((resolve) => child.once('exit', () => { live.delete(child); resolve(); }));
  try {
    await Promise.race([waitTcp(port, 10_000), exited.then(() => { throw new Error(`nginx exited: ${stderr}`); })]);
  } catch (e) {
    try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ }
    throw new Error(`${e.message}\n${existsSync(p('error.log')) ? readFileSync(p('error.log'), 'utf8') : ''}`);
  }
  return {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid,
    /** One object per request. */
    accessLog: () => (existsSync(p('access.log'))
      ? readFileSync(p('access.log'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)) : []),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        process.kill(child.pid, 'SIGTERM');
        const timer = setTimeout(() => { try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ } }, STOP_MS);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}
