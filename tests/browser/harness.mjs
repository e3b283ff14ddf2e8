// Shared helpers for the browser tests: start the real binaries (tuber-hub,
// tuber-peer, peer-process) and a real upstream on 127.0.0.1 (port 0, temp
// dirs), launch Debian's Chromium, keep artifacts and logs, and clean up
// whatever happens (test failure, timeout, crash of the test process).
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, readFileSync, appendFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { repo, artifacts, HUB_BIN, PEER_BIN, PEER_PROCESS_BIN, DESKTOP_BIN } from './paths.mjs';
import { startUpstream, deterministicBytes, sha256Hex } from './upstream.mjs';

export { repo, artifacts, HUB_BIN, PEER_BIN, PEER_PROCESS_BIN, DESKTOP_BIN };
export { startUpstream, deterministicBytes, sha256Hex } from './upstream.mjs';

/** Every timeout in one place, in milliseconds. */
export const HUB_START_MS = 20_000;
export const PEER_START_MS = 20_000;
/** A trusted daemon joins, gets its assignments and prefetches them. */
export const PREFETCH_MS = 60_000;
/** peer-process seeds a resource and is named as its provider. */
export const PEER_PROCESS_READY_MS = 90_000;
/** The contract: `ready` resolves within 10 s even when degraded. */
export const READY_MS = 15_000;
export const HTTP_MS = 10_000;
export const STOP_MS = 10_000;

// ---------------------------------------------------------------------------
// Processes and temp dirs that must not outlive the test process.

const liveChildren = new Set();
const liveDirs = new Set();
function killAllNow() {
  for (const c of liveChildren) {
    try { c.kill('SIGKILL'); } catch { /* already gone */ }
  }
  for (const d of liveDirs) {
    try { rmSync(d, { recursive: true, force: true }); } catch { /* best effort */ }
  }
}
process.once('exit', killAllNow);
for (const [sig, n] of [['SIGINT', 2], ['SIGTERM', 15], ['SIGHUP', 1]]) {
  process.once(sig, () => { killAllNow(); process.exit(128 + n); });
}

function tempDir(prefix) {
  const d = mkdtempSync(join(tmpdir(), prefix));
  liveDirs.add(d);
  return d;
}
function removeDir(d) {
  rmSync(d, { recursive: true, force: true });
  liveDirs.delete(d);
}

/** Keeps the last `max` characters of a process's output. */
class LogTail {
  constructor(max = 512 * 1024) { this.max = max; this.text = ''; }
  push(d) { this.text = (this.text + d).slice(-this.max); }
  toString() { return this.text; }
}

/** Where a test keeps its screenshots and logs. */
export function artifactPath(name) {
  const p = join(artifacts, name);
  mkdirSync(join(p, '..'), { recursive: true });
  return p;
}

/**
 * Spawns `bin args`, tracked for cleanup; resolves once a stdout line
 * matches `ready` (the match), or rejects (with the output so far) on exit
 * or after `timeoutMs`.
 */
async function spawnUntil(name, bin, args, { ready, timeoutMs, env = {} }) {
  if (!existsSync(bin)) {
    throw new Error(`${bin} does not exist: build it with \`cargo build -p tuber-hub -p tuber-peer -p tuber-tests --all-features --bins\``);
  }
  const child = spawn(bin, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'info', NO_COLOR: '1', ...env },
  });
  liveChildren.add(child);
  const log = new LogTail();
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => {
    liveChildren.delete(child);
    resolve({ code, signal });
  }));
  child.stderr.on('data', (d) => log.push(d));
  let out = '';
  const match = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not get ready in ${timeoutMs} ms:\n${log}`)), timeoutMs);
    child.stdout.on('data', (d) => {
      log.push(d);
      if (out === null) return;
      out += d;
      const m = out.match(ready);
      if (m) { clearTimeout(timer); out = null; resolve(m); }
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code ?? signal}) before it was ready:\n${log}`));
    });
  });
  /** Stops it: `signal`, then SIGKILL after STOP_MS; resolves on exit. */
  const stop = async (signal = 'SIGTERM') => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_MS);
      await exited;
      clearTimeout(timer);
    }
    return exited;
  };
  return { child, match, log, stop, exited, pid: child.pid };
}

async function httpJson(url, init = {}) {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(HTTP_MS) });
  const text = await res.text();
  if (!res.ok) throw new Error(`${init.method ?? 'GET'} ${url}: ${res.status} ${text}`);
  return JSON.parse(text);
}

/** A tiny TOML writer for `{ table: { key: value } }` (strings, numbers, booleans). */
function toToml(config) {
  const value = (v) => (typeof v === 'string' ? JSON.stringify(v) : String(v));
  let top = '';
  let tables = '';
  for (const [k, v] of Object.entries(config)) {
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      tables += `\n[${k}]\n`;
      for (const [k2, v2] of Object.entries(v)) tables += `${k2} = ${Array.isArray(v2) ? `[${v2.map(value).join(', ')}]` : value(v2)}\n`;
    } else {
      top += `${k} = ${Array.isArray(v) ? `[${v.map(value).join(', ')}]` : value(v)}\n`;
    }
  }
  return top + tables;
}

/** Parses Prometheus text into a Map of `name{labels}` → number. */
export function parseMetrics(text) {
  const m = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    m.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return m;
}

// ---------------------------------------------------------------------------
// The hub.

/**
 * Starts `tuber-hub demo` on 127.0.0.1, any port, in a fresh data dir.
 * Resolves to { url, stop } once the hub prints its address.
 */
export async function startDemoHub() {
  const data = tempDir('tuber-hub-');
  const p = await spawnUntil('tuber-hub demo', HUB_BIN,
    ['demo', '--listen', '127.0.0.1:0', '--stun', '127.0.0.1:0', '--data', data],
    { ready: /listening on (http:\/\/\S+)/, timeoutMs: HUB_START_MS });
  const url = p.match[1];
  await waitFor('the demo hub to write its admin token', () => existsSync(join(data, 'admin.token')), HUB_START_MS);
  const stop = async () => { await p.stop(); removeDir(data); };
  /** A new invite token (the admin API `tuber-hub invite create` uses). */
  const invite = async (name) => (await httpJson(url + '/.tuber/admin/invites', {
    method: 'POST',
    headers: { authorization: `Bearer ${readFileSync(join(data, 'admin.token'), 'utf8').trim()}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name }),
  })).token;
  return { url, stop, invite, log: p.log, stderr: () => p.log.toString() };
}

/** The planner settings every test hub starts from. */
export const TEST_HUB_CONFIG = {
  planner: {
    // Every test client is on 127.0.0.1: count connections, not networks.
    ban_reporters: 'distinct_peers',
  },
};

/**
 * Starts `tuber-hub serve` in front of `upstream` on 127.0.0.1:0 (HTTP and
 * STUN), with a temp data dir and a config file made of TEST_HUB_CONFIG and
 * `config` (tables merged).
 */
export async function startHub({
  upstream, config = {}, bin = HUB_BIN, listen = '127.0.0.1:0', stun = '127.0.0.1:0', reachAt,
}) {
  const data = tempDir('tuber-hub-');
  const merged = structuredClone(TEST_HUB_CONFIG);
  for (const [k, v] of Object.entries(config)) {
    merged[k] = (typeof v === 'object' && !Array.isArray(v)) ? { ...(merged[k] ?? {}), ...v } : v;
  }
  const configFile = join(data, 'hub.toml');
  writeFileSync(configFile, toToml(merged));
  const p = await spawnUntil('tuber-hub serve', bin,
    ['serve', '--upstream', upstream, '--listen', listen, '--stun', stun,
      '--data', data, '--config', configFile],
    { ready: /listening on (http:\/\/\S+)/, timeoutMs: HUB_START_MS });
  // `reachAt`: where this process reaches a hub whose listen address it
  // cannot (one in a network namespace).
  const url = reachAt ?? p.match[1];
  // It prints its address before it opened its database and wrote the
  // admin token: wait until it answers.
  await waitFor('the hub to answer /.well-known/tuber', async () => {
    try {
      const res = await fetch(url + '/.well-known/tuber', { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      return res.ok && existsSync(join(data, 'admin.token'));
    } catch { return false; }
  }, HUB_START_MS).catch((e) => { throw new Error(`${e.message}\n${p.log}`); });
  const adminToken = () => readFileSync(join(data, 'admin.token'), 'utf8').trim();
  const admin = (path, body) => httpJson(url + path, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminToken()}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return {
    url,
    data,
    config: merged,
    log: p.log,
    pid: p.pid,
    /** /metrics as a Map. */
    async metrics() {
      const res = await fetch(url + '/metrics', { signal: AbortSignal.timeout(HTTP_MS) });
      if (!res.ok) throw new Error(`/metrics: ${res.status}`);
      return parseMetrics(await res.text());
    },
    async metric(name) { return (await this.metrics()).get(name) ?? 0; },
    /** A new invite token (the admin API that `tuber-hub invite create` uses while the hub runs). */
    async invite(name) { return (await admin('/.tuber/admin/invites', { name })).token; },
    /** Makes `path` known to the planner ahead of demand: { manifest, length, pieces }. */
    async announce(path) { return admin('/.tuber/admin/content', { path }); },
    async manifest(path) { return httpJson(`${url}/.tuber/manifest?path=${encodeURIComponent(path)}`); },
    async stop() { await p.stop(); removeDir(data); },
  };
}

// ---------------------------------------------------------------------------
// Permanent peers.

/**
 * Starts the `tuber-peer` daemon on a temp data dir, joined to the hub with
 * `invite` (so it is trusted). Resolves once its local API listens.
 * `url` is the swarm URL (default the hub's), `joinAtStart: false` starts it
 * without `--join` (join later with `peer.join`), `runArgs` are more flags
 * for `run` and `env` more environment variables.
 */
export async function startPeerDaemon({
  hub, invite, url = hub.url, joinAtStart = true, runArgs = [], env = {}, bin = PEER_BIN, apiJson = httpJson,
}) {
  const data = tempDir('tuber-peer-');
  const args = ['--data', data, 'run'];
  if (joinAtStart) {
    args.push('--join', url);
    if (invite) args.push('--invite', invite);
  }
  args.push(...runArgs, '--api', '127.0.0.1:0');
  const p = await spawnUntil('tuber-peer run', bin, args,
    { ready: /tuber-peer api on (http:\/\/\S+)/, timeoutMs: PEER_START_MS, env });
  const api = p.match[1];
  const token = readFileSync(join(data, 'api.token'), 'utf8').trim();
  const call = (path, init = {}) => apiJson(api + path, {
    ...init,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...(init.headers ?? {}) },
  });
  const peer = {
    api,
    data,
    log: p.log,
    pid: p.pid,
    exited: p.exited,
    status: () => call('/api/status'),
    /** The daemon's status of the hub's swarm. */
    async swarm() {
      const s = await call('/api/status');
      return { peerId: s.peer_id, swarm: s.swarms.find((w) => w.url.startsWith(url.replace(/\/$/, ''))) ?? s.swarms[0], status: s };
    },
    /** Joins `swarmUrl` through the local API (what `tuber-peer join` does). */
    join: (swarmUrl, joinInvite) => call('/api/swarms', { method: 'POST', body: JSON.stringify({ url: swarmUrl, invite: joinInvite }) }),
    /**
     * Waits until it is joined and trusted, holds every piece assigned to
     * it, and at least `minPieces` are assigned. Resolves to the swarm status.
     */
    async waitHolding({ minPieces = 1, timeoutMs = PREFETCH_MS } = {}) {
      const t0 = Date.now();
      let last;
      for (;;) {
        try {
          last = await peer.swarm();
          const w = last.swarm;
          if (w && w.phase?.state === 'joined' && w.phase.trusted
            && w.assigned_pieces >= minPieces && w.assigned_held === w.assigned_pieces) {
            return { ...w, peerId: last.peerId, ms: Date.now() - t0 };
          }
        } catch (e) { last = { error: String(e) }; }
        if (Date.now() - t0 > timeoutMs) {
          throw new Error(`the daemon did not hold ${minPieces}+ assigned pieces in ${timeoutMs} ms: ${JSON.stringify(last?.swarm ?? last)}\n${p.log}`);
        }
        await sleep(200);
      }
    },
    /** SIGKILL, and wait for it to be gone. */
    async kill() { await p.stop('SIGKILL'); },
    async stop() { await p.stop(); removeDir(data); },
  };
  return peer;
}

/**
 * Starts tests/src/bin/peer-process: an engine that joins (with `invite`,
 * trusted), seeds `path`, waits until the hub names it as the provider of
 * every piece, and serves; `corrupt` makes it flip a byte in every piece it
 * uploads (the test-only liar switch). Resolves once it says `ready ID`.
 */
export async function startPeerProcess({ hub, path, invite, corrupt = false }) {
  const data = tempDir('tuber-peer-process-');
  const args = [data, hub.url, path, '--wait-provider'];
  if (invite) args.push('--invite', invite);
  if (corrupt) args.push('--corrupt');
  const p = await spawnUntil('peer-process', PEER_PROCESS_BIN, args,
    { ready: /^ready (\S+)$/m, timeoutMs: PEER_PROCESS_READY_MS });
  return {
    id: p.match[1],
    log: p.log,
    pid: p.pid,
    exited: p.exited,
    async kill() { await p.stop('SIGKILL'); },
    async stop() { await p.stop(); removeDir(data); },
  };
}

// ---------------------------------------------------------------------------
// Chromium.

/**
 * Debian's Chromium, headless, allowed to use loopback ICE candidates.
 * `env` replaces its environment (e.g. a HOME with an NSS database);
 * `executablePath` runs another launcher (one that enters a network
 * namespace first); `args` are more switches.
 */
export async function launchChromium({ env, executablePath = '/usr/bin/chromium', args = [] } = {}) {
  return chromium.launch({
    executablePath,
    headless: true,
    ...(env ? { env } : {}),
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--allow-loopback-in-peer-connection',
      '--use-fake-ui-for-media-stream',
      '--autoplay-policy=no-user-gesture-required',
      ...args,
    ],
  });
}

/**
 * A fresh browser context (one browser peer per page) with camera and
 * microphone granted to the hub's origin, so Chromium offers loopback ICE
 * candidates. `noWebRTC` deletes RTCPeerConnection and friends before any
 * page script runs. Console messages and errors go to `logs`.
 */
export async function newClientContext(browser, hubUrl, { noWebRTC = false, logs = [], label = 'page' } = {}) {
  const context = await browser.newContext();
  await context.grantPermissions(['camera', 'microphone'], { origin: hubUrl });
  if (noWebRTC) {
    await context.addInitScript(() => {
      for (const name of ['RTCPeerConnection', 'webkitRTCPeerConnection', 'RTCDataChannel',
        'RTCSessionDescription', 'RTCIceCandidate']) {
        delete window[name];
      }
    });
  }
  const stamp = () => new Date().toISOString().slice(11, 23);
  context.on('console', (m) => logs.push(`${stamp()} [${label} console.${m.type()}] ${m.text()}`));
  context.on('weberror', (e) => logs.push(`${stamp()} [${label} error] ${e.error()?.stack ?? e.error()}`));
  context.on('serviceworker', (w) => logs.push(`${stamp()} [${label}] service worker ${w.url()}`));
  return context;
}

/**
 * Opens `path` on the hub in a new page of `context` and waits for the page
 * script's `ready` (bounded by READY_MS). Resolves to { page, ready } where
 * ready = { value, controlled, peerId, ms }.
 */
export async function openClientPage(context, hubUrl, path = '/') {
  const page = await context.newPage();
  const response = await page.goto(hubUrl + path);
  if (response.status() !== 200) throw new Error(`${path}: ${response.status()}`);
  const ready = await page.evaluate(async (ms) => {
    const t0 = performance.now();
    if (!window.__tuber) throw new Error('window.__tuber is not set: the page script did not set it');
    let timer;
    const value = await Promise.race([
      window.__tuber.ready,
      new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`window.__tuber.ready did not resolve within ${ms} ms (controller: ${!!navigator.serviceWorker?.controller})`)), ms); }),
    ]);
    clearTimeout(timer);
    let plain = null;
    try { plain = value === undefined ? null : JSON.parse(JSON.stringify(value)); } catch { plain = String(value); }
    return {
      value: plain,
      controlled: !!navigator.serviceWorker?.controller,
      peerId: window.__tuber.peerId ?? null,
      ms: performance.now() - t0,
    };
  }, READY_MS);
  return { page, ready };
}

/** The page script's counters. */
export async function clientStats(page) {
  return page.evaluate(() => window.__tuber.stats());
}

/**
 * Fetches `path` in the page (through the Service Worker once it controls
 * the page) and hashes the body with crypto.subtle in the page. While it
 * runs, `onProgress(stats)` may be called from the page (every ~10 ms) with
 * the page script's stats, until it returns true.
 * Resolves to { status, length, sha256, ms, before, after, contentType }.
 */
export async function fetchInPage(page, path, { timeoutMs = 60_000, onProgress } = {}) {
  let binding = null;
  if (onProgress) {
    binding = `__tuberTestProgress${Math.random().toString(36).slice(2)}`;
    await page.exposeFunction(binding, onProgress);
  }
  return page.evaluate(async ({ path, timeoutMs, binding }) => {
    const hex = (buf) => [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, '0')).join('');
    const stats = () => (window.__tuber?.stats ? window.__tuber.stats() : null);
    const ctrl = new AbortController();
    const timer = setTimeout(() => ctrl.abort(new Error(`fetch ${path} took over ${timeoutMs} ms (stats ${JSON.stringify(stats())})`)), timeoutMs);
    let watching = !!binding;
    const watch = async () => {
      while (watching) {
        if (await window[binding](stats())) break;
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    const before = stats();
    const t0 = performance.now();
    const watcher = watch();
    try {
      const res = await fetch(path, { signal: ctrl.signal });
      const buf = await res.arrayBuffer();
      const ms = performance.now() - t0;
      watching = false;
      await watcher;
      const digest = await crypto.subtle.digest('SHA-256', buf);
      return {
        status: res.status,
        length: buf.byteLength,
        sha256: hex(digest),
        ms,
        before,
        after: stats(),
        contentType: res.headers.get('content-type'),
      };
    } finally {
      watching = false;
      clearTimeout(timer);
    }
  }, { path, timeoutMs, binding });
}

/**
 * Records the page's own responses for URLs ending in `suffix`: { status,
 * fromServiceWorker, range }. The Tuber runtime's reads of the same URL
 * (marked `x-tuber-origin`: no peer had a piece, or a hedge) are not the
 * page's and are left out.
 */
export function watchResponses(page, suffix) {
  const seen = [];
  page.on('response', (r) => {
    if (new URL(r.url()).pathname.endsWith(suffix) && !('x-tuber-origin' in r.request().headers())) {
      seen.push({ status: r.status(), fromServiceWorker: r.fromServiceWorker(), range: r.request().headers().range ?? null });
    }
  });
  return seen;
}

// ---------------------------------------------------------------------------
// Figures, waits, and the whole setup.

/** Prints a figure and appends it to test-artifacts/browser-figures.jsonl. */
export function recordFigure(name, value, unit, extra = {}) {
  const line = { at: new Date().toISOString(), name, value: Number(value.toFixed?.(3) ?? value), unit, ...extra };
  console.log(`FIGURE ${name}: ${line.value} ${unit}${Object.keys(extra).length ? ' ' + JSON.stringify(extra) : ''}`);
  appendFileSync(artifactPath('browser-figures.jsonl'), JSON.stringify(line) + '\n');
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `cond` every 100 ms until it returns a truthy value; throws after `timeoutMs`. */
export async function waitFor(what, cond, timeoutMs) {
  const t0 = Date.now();
  let last;
  for (;;) {
    last = await cond();
    if (last) return last;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

export const MiB = 1024 * 1024;
/** MB/s (10^6 bytes per second). */
export const mbps = (bytes, ms) => bytes / 1e6 / (ms / 1000);

/**
 * Everything a browser scenario needs, torn down in reverse order by one
 * `t.after` whatever happens (the logs of every process and the browsers'
 * console go to test-artifacts/NAME/):
 * - a real upstream serving `files` (path → { body, type }), the demo video and `/`;
 * - `tuber-hub serve` in front of it, configured with `hubConfig`;
 * - every upstream resource announced to the planner;
 * - unless `daemon: false`, a trusted `tuber-peer` daemon holding every assigned piece;
 * - Chromium.
 */
export async function startScenario(t, { name, files, hubConfig = {}, daemon = true }) {
  const cleanups = [];
  const logs = [];
  const env = { logs, cleanups, name };
  const t0 = Date.now();
  t.after(async () => {
    const dir = artifactPath(name);
    mkdirSync(dir, { recursive: true });
    for (const fn of cleanups.reverse()) {
      const c0 = Date.now();
      let timer;
      try {
        await Promise.race([fn(), new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error('did not finish in time')), STOP_MS + 5_000);
        })]);
      } catch (e) {
        console.error(`cleanup ${fn.label ?? fn.toString().slice(0, 60)}: ${e}`);
      } finally {
        clearTimeout(timer);
      }
      logs.push(`cleanup ${fn.label ?? fn.toString().slice(0, 60)}: ${Date.now() - c0} ms`);
    }
    // After everything stopped, so the logs end with the shutdown.
    for (const [file, log] of logFiles) writeFileSync(join(dir, file), log.toString());
    writeFileSync(join(dir, 'browser.log'), logs.join('\n') + '\n');
  });
  const logFiles = [];
  const saveLog = (file, log) => logFiles.push([file, log]);

  env.upstream = await startUpstream(files);
  cleanups.push(() => env.upstream.stop());
  env.hub = await startHub({ upstream: env.upstream.url, config: hubConfig });
  cleanups.push(() => env.hub.stop());
  saveLog('hub.log', env.hub.log);
  env.manifests = {};
  let pieces = 0;
  for (const path of env.upstream.files.keys()) {
    if (path === '/') continue;
    env.manifests[path] = await env.hub.announce(path);
    pieces += env.manifests[path].pieces;
  }
  env.totalPieces = pieces;
  if (daemon) {
    env.peer = await startPeerDaemon({ hub: env.hub, invite: await env.hub.invite('browser-test permanent peer') });
    cleanups.push(() => env.peer.stop());
    saveLog('tuber-peer.log', env.peer.log);
    // replication ≥ 1 and one trusted peer: it is assigned every piece.
    env.peerHolding = await env.peer.waitHolding({ minPieces: pieces });
  }
  env.browser = await launchChromium();
  cleanups.push(() => env.browser.close());
  env.setupMs = Date.now() - t0;
  /** Registers a cleanup (runs before the ones registered earlier). */
  env.defer = (fn) => cleanups.push(fn);
  env.saveLog = saveLog;
  /** A new client context + page at `/`, ready. */
  env.client = async (label = 'page', opts = {}) => {
    const context = await newClientContext(env.browser, env.hub.url, { ...opts, logs, label });
    cleanups.push(() => context.close());
    const { page, ready } = await openClientPage(context, env.hub.url, opts.path ?? '/');
    logs.push(`[${label}] ready: ${JSON.stringify(ready)}`);
    return { context, page, ready };
  };
  /** The hub's counters that the offload assertions use. */
  env.counters = async () => {
    const m = await env.hub.metrics();
    return {
      p2p: m.get('tuber_p2p_bytes_total') ?? 0,
      origin: m.get('tuber_origin_distributable_bytes_total') ?? 0,
      fromPieces: m.get('tuber_fallback_piece_bytes_total') ?? 0,
      piecesServed: m.get('tuber_pieces_served_total') ?? 0,
      bans: m.get('tuber_bans') ?? 0,
      upstream: env.upstream.bytesServed(),
    };
  };
  return env;
}

/** Counter differences b − a. */
export function delta(a, b) {
  const d = {};
  for (const k of Object.keys(b)) d[k] = b[k] - (a[k] ?? 0);
  return d;
}

/** The large download every offload scenario fetches: ≥ 32 MiB, not piece-aligned. */
export const BIG_PATH = '/files/big-32MiB.bin';
export const BIG_LEN = 32 * MiB + 12345;

/** Deterministic content for BIG_PATH from `seed`: { path, len, body, sha256, files }. */
export function bigFile(seed) {
  const body = deterministicBytes(BIG_LEN, seed);
  return {
    path: BIG_PATH,
    len: BIG_LEN,
    body,
    sha256: sha256Hex(body),
    files: { [BIG_PATH]: { body, type: 'application/octet-stream' } },
  };
}
