// The real-world parts of a TLS deployment, made by the test on 127.0.0.1:
// a test CA and a leaf certificate for localhost (openssl), an NSS database
// trusting that CA in a fresh HOME (certutil, as Chromium on Linux reads
// ~/.pki/nssdb), and Debian's nginx terminating TLS in front of a hub, with
// a JSON access log whose `body_bytes_sent` is the ground truth of what the
// origin side sent. Every process is killed by its pid; every dir removed.
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { createSocket } from 'node:dgram';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseMetrics } from './harness.mjs';

export const NGINX_BIN = process.env.TUBER_NGINX_BIN ?? '/usr/sbin/nginx';
export const NGINX_START_MS = 10_000;
const TOOL_MS = 20_000;

const liveChildren = new Set();
const liveDirs = new Set();
process.once('exit', () => {
  // nginx's master stops its workers on SIGTERM (a SIGKILLed master would
  // leave them behind); its process group goes too.
  for (const c of liveChildren) { try { process.kill(c.tuberGroup ? -c.pid : c.pid, 'SIGTERM'); } catch { /* gone */ } }
  for (const d of liveDirs) { try { rmSync(d, { recursive: true, force: true }); } catch { /* best effort */ } }
});

/** A fresh temp dir, removed at exit if the test does not remove it. */
export function labDir(prefix) {
  const d = mkdtempSync(join(tmpdir(), prefix));
  liveDirs.add(d);
  return d;
}
export function removeLabDir(d) {
  rmSync(d, { recursive: true, force: true });
  liveDirs.delete(d);
}

function run(bin, args, opts = {}) {
  try {
    return execFileSync(bin, args, { timeout: TOOL_MS, stdio: ['ignore', 'pipe', 'pipe'], ...opts }).toString();
  } catch (e) {
    throw new Error(`${bin} ${args.join(' ')} failed: ${e.message}\n${e.stderr ?? ''}${e.stdout ?? ''}`);
  }
}

/** A port that was free on 127.0.0.1 a moment ago (bind 0, close). */
export async function freePort() {
  const s = createServer();
  await new Promise((resolve, reject) => { s.once('error', reject); s.listen(0, '127.0.0.1', resolve); });
  const { port } = s.address();
  await new Promise((resolve) => s.close(resolve));
  return port;
}

/** A port free for TCP and UDP on 127.0.0.1 (a DNS server needs both). */
export async function freeTcpUdpPort() {
  for (;;) {
    const port = await freePort();
    const u = createSocket('udp4');
    const ok = await new Promise((resolve) => {
      u.once('error', () => resolve(false));
      u.bind(port, '127.0.0.1', () => resolve(true));
    });
    await new Promise((resolve) => { try { u.close(resolve); } catch { resolve(); } });
    if (ok) return port;
  }
}

/** Keeps the last `max` characters of a process's output. */
class LogTail {
  constructor(max = 256 * 1024) { this.max = max; this.text = ''; }
  push(d) { this.text = (this.text + d).slice(-this.max); }
  toString() { return this.text; }
}

/**
 * Spawns `bin args`, tracked (SIGTERMed at exit if still running), its
 * stdout and stderr kept in `log`; `group` makes it a process group leader
 * (nginx: its workers follow). `stop()` sends SIGTERM by pid, then SIGKILL
 * (to the group with `group`) after 5 s, and resolves when it exited.
 */
export function spawnTracked(name, bin, args, { env = {}, group = false } = {}) {
  if (!existsSync(bin) && bin.includes('/')) throw new Error(`${bin} does not exist`);
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1', ...env }, detached: group });
  child.tuberGroup = group;
  liveChildren.add(child);
  const log = new LogTail();
  child.stdout.on('data', (d) => log.push(d));
  child.stderr.on('data', (d) => log.push(d));
  const state = { gone: false };
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => {
    liveChildren.delete(child);
    state.gone = true;
    resolve({ code, signal });
  }));
  child.once('error', (e) => log.push(`spawn ${name}: ${e}\n`));
  return {
    name,
    child,
    pid: child.pid,
    log,
    exited,
    get gone() { return state.gone; },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        try { process.kill(child.pid, 'SIGTERM'); } catch { /* gone */ }
        const timer = setTimeout(() => { try { process.kill(group ? -child.pid : child.pid, 'SIGKILL'); } catch { /* gone */ } }, 5_000);
        await exited;
        clearTimeout(timer);
      }
      return exited;
    },
  };
}

/** Resolves once 127.0.0.1:port accepts a TCP connection; rejects if `proc` exits or after `timeoutMs`. */
export async function waitTcp(port, timeoutMs, proc) {
  const t0 = Date.now();
  for (;;) {
    if (proc?.gone) throw new Error(`${proc.name} exited before it listened on ${port}:\n${proc.log}`);
    const ok = await new Promise((resolve) => {
      const s = connect({ host: '127.0.0.1', port }, () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() - t0 > timeoutMs) throw new Error(`${proc?.name ?? 'nothing'} did not listen on ${port} in ${timeoutMs} ms:\n${proc?.log ?? ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * An HTTPS request trusting only `ca` (PEM text): resolves to
 * { status, headers, body (Buffer) }. `servername` defaults to the URL's host.
 */
export function httpsRequestCa(url, { ca, method = 'GET', headers = {}, body, timeoutMs = 10_000 } = {}) {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { ca, method, headers, timeout: timeoutMs }, (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${url}: timed out`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** `httpsRequestCa`, expecting 2xx JSON. */
export async function httpsJsonCa(url, opts) {
  const r = await httpsRequestCa(url, opts);
  const text = r.body.toString();
  if (r.status < 200 || r.status > 299) throw new Error(`${opts?.method ?? 'GET'} ${url}: ${r.status} ${text}`);
  return JSON.parse(text);
}

/**
 * A test CA (CA:TRUE, P-256, 30 days) and a leaf signed by it for
 * DNS:localhost and IP:127.0.0.1 (serverAuth, SAN; 30 days: Chromium refuses
 * more than 398). Resolves to { dir, caPem, caKey, cert, key, caName }.
 */
export function makeTestCa(dir) {
  const caName = `Tuber test CA ${randomBytes(4).toString('hex')}`;
  const f = (n) => join(dir, n);
  writeFileSync(f('ca.ext'), [
    'basicConstraints = critical, CA:TRUE, pathlen:0',
    'keyUsage = critical, keyCertSign, cRLSign',
    'subjectKeyIdentifier = hash',
    '',
  ].join('\n'));
  writeFileSync(f('leaf.ext'), [
    'basicConstraints = critical, CA:FALSE',
    'keyUsage = critical, digitalSignature',
    'extendedKeyUsage = serverAuth',
    'subjectAltName = DNS:localhost, IP:127.0.0.1',
    'subjectKeyIdentifier = hash',
    'authorityKeyIdentifier = keyid, issuer',
    '',
  ].join('\n'));
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  run('openssl', ['req', '-new', ...ec, '-keyout', f('ca.key'), '-out', f('ca.csr'), '-subj', `/O=Tuber tests/CN=${caName}`]);
  run('openssl', ['x509', '-req', '-in', f('ca.csr'), '-key', f('ca.key'), '-days', '30', '-sha256',
    '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-extfile', f('ca.ext'), '-out', f('ca.pem')]);
  run('openssl', ['req', '-new', ...ec, '-keyout', f('leaf.key'), '-out', f('leaf.csr'), '-subj', '/CN=localhost']);
  run('openssl', ['x509', '-req', '-in', f('leaf.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-days', '30', '-sha256',
    '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-extfile', f('leaf.ext'), '-out', f('leaf.pem')]);
  // Proves the chain before anything depends on it.
  run('openssl', ['verify', '-CAfile', f('ca.pem'), '-purpose', 'sslserver', f('leaf.pem')]);
  return { dir, caPem: f('ca.pem'), caKey: f('ca.key'), cert: f('leaf.pem'), key: f('leaf.key'), caName };
}

/**
 * A HOME whose NSS database (what Chromium on Linux reads) trusts `caPem`
 * for TLS servers, made the way a user or an admin script would.
 */
export function nssHome(home, caPem, nickname = 'tuber-test-ca') {
  const db = join(home, '.pki', 'nssdb');
  mkdirSync(db, { recursive: true });
  run('certutil', ['-d', `sql:${db}`, '-N', '--empty-password']);
  run('certutil', ['-d', `sql:${db}`, '-A', '-t', 'C,,', '-n', nickname, '-i', caPem]);
  const list = run('certutil', ['-d', `sql:${db}`, '-L']);
  if (!list.includes(nickname)) throw new Error(`certutil did not list ${nickname}:\n${list}`);
  return home;
}

/**
 * Starts Debian's nginx (no systemd, `daemon off;`, everything inside a temp
 * prefix) with one server per listener: `{ port, upstreamPort, tls }` on
 * 127.0.0.1, proxying HTTP/1.1 and WebSocket upgrades to 127.0.0.1:upstreamPort.
 * Resolves once every port accepts connections to
 * { pid, dir, conf, accessLog(), stop(), log }.
 */
export async function startNginx({ listeners, cert, key }) {
  if (!existsSync(NGINX_BIN)) throw new Error(`${NGINX_BIN} does not exist: apt-get install nginx-light`);
  const dir = labDir('tuber-nginx-');
  // Workers may run as another user when nginx starts as root: let them in.
  chmodSync(dir, 0o755);
  const p = (n) => join(dir, n);
  const servers = listeners.map(({ port, upstreamPort, tls }) => `
  server {
    listen 127.0.0.1:${port}${tls ? ' ssl' : ''};
    server_name localhost;
${tls ? `    ssl_certificate ${cert};
    ssl_certificate_key ${key};
    ssl_protocols TLSv1.2 TLSv1.3;
` : ''}    location / {
      proxy_pass http://127.0.0.1:${upstreamPort};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto ${tls ? 'https' : 'http'};
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_read_timeout 1h;
      proxy_send_timeout 1h;
    }
  }`).join('\n');
  const conf = `# written by tests/browser/tls-lab.mjs
daemon off;
master_process on;
worker_processes 1;
pid ${p('nginx.pid')};
error_log ${p('error.log')} info;
events { worker_connections 1024; }
http {
  client_body_temp_path ${p('client_body_temp')};
  proxy_temp_path ${p('proxy_temp')};
  fastcgi_temp_path ${p('fastcgi_temp')};
  uwsgi_temp_path ${p('uwsgi_temp')};
  scgi_temp_path ${p('scgi_temp')};
  map $http_upgrade $connection_upgrade {
    default upgrade;
    '' close;
  }
  log_format tuber escape=json '{"port":$server_port,"method":"$request_method","uri":"$uri",'
    '"status":$status,"body_bytes_sent":$body_bytes_sent,"range":"$http_range",'
    '"ua":"$http_user_agent","request_time":$request_time,"ssl":"$ssl_protocol"}';
  access_log ${p('access.log')} tuber;
  client_max_body_size 16m;
${servers}
}
`;
  writeFileSync(p('nginx.conf'), conf);
  run(NGINX_BIN, ['-t', '-q', '-e', p('error.log'), '-p', dir, '-c', p('nginx.conf')]);
  const errorLog = () => (existsSync(p('error.log')) ? readFileSync(p('error.log'), 'utf8') : '');
  // Its own process group (its workers with it), so the group can be
  // SIGKILLed by this pid if the master does not stop.
  const proc = spawnTracked('nginx', NGINX_BIN, ['-e', p('error.log'), '-p', dir, '-c', p('nginx.conf')], { group: true });
  try {
    for (const { port } of listeners) await waitTcp(port, NGINX_START_MS, proc);
  } catch (e) {
    await proc.stop();
    const log = errorLog();
    removeLabDir(dir);
    throw new Error(`${e.message}\n${log}`);
  }
  return {
    pid: proc.pid,
    dir,
    conf,
    /** The access log, one object per request (WebSockets: when they close). */
    accessLog() {
      if (!existsSync(p('access.log'))) return [];
      return readFileSync(p('access.log'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
    },
    errorLog,
    /** SIGTERM (fast shutdown) by pid, SIGKILL to its group after 5 s; removes its dir. */
    async stop() {
      await proc.stop();
      removeLabDir(dir);
    },
  };
}

// ---------------------------------------------------------------------------
// ACME: pebble (Debian's RFC 8555 test CA) and a hub terminating TLS itself.

export const PEBBLE_START_MS = 15_000;
/** From the hub's start to a certificate served (pebble issues in ~0.5 s here). */
export const ACME_ISSUE_MS = 30_000;

/**
 * Starts pebble-challtestsrv (a DNS server answering 127.0.0.1 for every
 * name, nothing else) and pebble on 127.0.0.1, its HTTPS listeners using
 * `pki`'s leaf, its validation authority dialling `httpPort` (the hub's
 * HTTP-01 listener). Certificates valid `validitySecs` (30 days: under
 * Chromium's 398-day limit). Resolves to { directory, rootPem (text),
 * rootFile, stop, logs }.
 */
export async function startPebble({ dir, pki, httpPort, validitySecs = 30 * 86400 }) {
  for (const bin of ['pebble', 'pebble-challtestsrv']) {
    if (!existsSync(`/usr/bin/${bin}`)) throw new Error(`/usr/bin/${bin} does not exist: apt-get install pebble`);
  }
  const [acmePort, mgmtPort, dnsPort, ctsMgmtPort, tlsPort] = [
    await freePort(), await freePort(), await freeTcpUdpPort(), await freePort(), await freePort(),
  ];
  const config = join(dir, 'pebble.json');
  writeFileSync(config, JSON.stringify({
    pebble: {
      listenAddress: `127.0.0.1:${acmePort}`,
      managementListenAddress: `127.0.0.1:${mgmtPort}`,
      certificate: pki.cert,
      privateKey: pki.key,
      httpPort,
      tlsPort,
      ocspResponderURL: '',
      externalAccountBindingRequired: false,
      certificateValidityPeriod: validitySecs,
    },
  }, null, 2));
  const dns = `127.0.0.1:${dnsPort}`;
  const cts = spawnTracked('pebble-challtestsrv', '/usr/bin/pebble-challtestsrv', [
    '-defaultIPv4', '127.0.0.1', '-defaultIPv6', '', '-dns01', dns,
    '-management', `127.0.0.1:${ctsMgmtPort}`, '-http01', '', '-https01', '', '-tlsalpn01', '',
  ]);
  const pebble = spawnTracked('pebble', '/usr/bin/pebble', ['-config', config, '-dnsserver', dns],
    // No random nonce rejections and no validation sleeps: a test, not a fuzzer.
    { env: { PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0' } });
  const stop = async () => { await pebble.stop(); await cts.stop(); };
  try {
    await waitTcp(ctsMgmtPort, PEBBLE_START_MS, cts);
    await waitTcp(acmePort, PEBBLE_START_MS, pebble);
    await waitTcp(mgmtPort, PEBBLE_START_MS, pebble);
    // pebble makes a new root at every start: its management API tells.
    const ca = readFileSync(pki.caPem);
    const r = await httpsRequestCa(`https://127.0.0.1:${mgmtPort}/roots/0`, { ca });
    if (r.status !== 200) throw new Error(`pebble /roots/0: ${r.status} ${r.body}`);
    const rootPem = r.body.toString();
    const rootFile = join(dir, 'pebble-root.pem');
    writeFileSync(rootFile, rootPem);
    return { directory: `https://127.0.0.1:${acmePort}/dir`, rootPem, rootFile, stop, logs: { pebble: pebble.log, challtestsrv: cts.log } };
  } catch (e) {
    await stop();
    throw e;
  }
}

/**
 * Starts `tuber-hub serve` terminating TLS itself with a certificate for
 * `domain` from the ACME server `directory` (HTTP-01 on 127.0.0.1:httpPort;
 * the ACME server's own HTTPS trusted by `directoryCaFile`), in front of
 * `upstream`. Resolves, once it serves a certificate that `rootPem`
 * verifies, to { url, data, log, issueMs, invite, announce, metrics, metric, stop }.
 */
export async function startAcmeHub({ hubBin, upstream, domain = 'localhost', directory, directoryCaFile, httpPort, rootPem }) {
  const data = labDir('tuber-acme-hub-');
  const configFile = join(data, 'hub.toml');
  const q = JSON.stringify;
  writeFileSync(configFile, [
    '[planner]',
    // Every test client is on 127.0.0.1: count connections, not networks.
    'ban_reporters = "distinct_peers"',
    '',
    '[tls]',
    `http_listen = ${q(`127.0.0.1:${httpPort}`)}`,
    '',
    '[tls.acme]',
    `domains = [${q(domain)}]`,
    'contact = ["mailto:ops@tuber.test"]',
    `directory = ${q(directory)}`,
    `directory_ca_file = ${q(directoryCaFile)}`,
    '',
  ].join('\n'));
  const t0 = performance.now();
  const proc = spawnTracked('tuber-hub serve (ACME)', hubBin,
    ['serve', '--upstream', upstream, '--listen', '127.0.0.1:0', '--stun', '127.0.0.1:0', '--data', data, '--config', configFile],
    { env: { RUST_LOG: process.env.RUST_LOG ?? 'info' } });
  const stop = async () => { await proc.stop(); removeLabDir(data); };
  try {
    let port;
    while (!(port = /listening on https:\/\/127\.0\.0\.1:(\d+)/.exec(proc.log.toString())?.[1])) {
      if (proc.gone) throw new Error(`the hub exited:\n${proc.log}`);
      if (performance.now() - t0 > ACME_ISSUE_MS) throw new Error(`the hub did not listen:\n${proc.log}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const url = `https://${domain}:${port}`;
    // Until the certificate is issued the handshake fails: poll it.
    let last;
    for (;;) {
      try {
        const r = await httpsRequestCa(`${url}/.well-known/tuber`, { ca: rootPem, timeoutMs: 2_000 });
        if (r.status === 200 && existsSync(join(data, 'admin.token'))) break;
        last = `${r.status}`;
      } catch (e) { last = String(e); }
      if (proc.gone) throw new Error(`the hub exited:\n${proc.log}`);
      if (performance.now() - t0 > ACME_ISSUE_MS) throw new Error(`no certificate from ${directory} in ${ACME_ISSUE_MS} ms (${last}):\n${proc.log}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const issueMs = performance.now() - t0;
    const token = () => readFileSync(join(data, 'admin.token'), 'utf8').trim();
    const admin = (path, body) => httpsJsonCa(url + path, {
      ca: rootPem,
      method: 'POST',
      headers: { authorization: `Bearer ${token()}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const hub = {
      url,
      data,
      log: proc.log,
      pid: proc.pid,
      issueMs,
      async invite(name) { return (await admin('/.tuber/admin/invites', { name })).token; },
      async announce(path) { return admin('/.tuber/admin/content', { path }); },
      async metrics() {
        const r = await httpsRequestCa(`${url}/metrics`, { ca: rootPem });
        if (r.status !== 200) throw new Error(`/metrics: ${r.status}`);
        return parseMetrics(r.body.toString());
      },
      async metric(name) { return (await hub.metrics()).get(name) ?? 0; },
      stop,
    };
    return hub;
  } catch (e) {
    await stop();
    throw e;
  }
}
