// Benchmark (issue #12): Tuber vs p2p-media-loader 2.x, side by side in one
// run, on the same HLS content (made by ffmpeg as tests/browser/hls.test.mjs
// makes it: a 32 s VOD rendition by default, a live sliding window published
// in real time with --live) and the same viewers (five first-time viewers 4 s
// apart, each its own Chromium context, the real hls.js started by the page).
//
//   node bench/p2p-media-loader/run.mjs [--live] [--donor] [--pml-no-worker]
//
// 1. Tuber: Debian's nginx as the origin, `tuber-hub serve` in front of it
//    (as harness.mjs `startHub` starts it, `public_url` = the front), a second
//    nginx in front of the hub; the page is the site's plain hls.js page.
//    `--donor` (live only) adds the trusted permanent peer of hls.test.mjs.
// 2. p2p-media-loader: Debian's nginx as the origin serving the same files and
//    a page with hls.js + p2p-media-loader-hlsjs (`injectMixin`), against a
//    local WebSocket tracker from `bittorrent-tracker` (tracker.mjs).
//
// The systems run one after the other (the machine has two cores), each
// with its own servers, browser and, live, its own ffmpeg publishing from the
// start. Figures are printed as `FIGURE name: value unit {...}` and appended
// to test-artifacts/bench-p2p-media-loader.jsonl; logs, access logs and
// per-viewer results go to test-artifacts/bench-p2p-media-loader/MODE/SYSTEM/.
// Not a test: it asserts nothing; it exits non-zero only if it could not run.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  FFMPEG_BIN, FIRST_FRAME_MS, LIVE_MIN_SEGMENTS, LIVE_WATCH_MS, MiB, PIECE, SEGMENT, STAGGER_MS, VIEWERS, VOD_WATCH_MS,
  figureRecorder, launchChromium, listed, makeVod, median, mine, page, sleep, startLivePublisher, sum, viewers, waitFor,
} from './site.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const args = new Set(process.argv.slice(2));
for (const a of args) {
  if (!['--live', '--donor', '--pml-no-worker'].includes(a)) {
    console.error(`usage: node bench/p2p-media-loader/run.mjs [--live] [--donor] [--pml-no-worker]\nunknown argument ${a}`);
    process.exit(2);
  }
}
const LIVE = args.has('--live');
const DONOR = args.has('--donor');
/** A diagnostic: hls.js without its transmuxer worker on p2p-media-loader's page (see README.md). */
const PML_NO_WORKER = args.has('--pml-no-worker');
const MODE = LIVE ? 'live' : 'vod';
/** The whole run, bounded: past it everything is killed and the run fails. */
const RUN_MS = 8 * 60_000;

// The hub, the permanent peer and both nginx setups exactly as the browser tests start them.
let harness; let nginx;
try {
  harness = await import('../../tests/browser/harness.mjs');
  nginx = await import('../../tests/browser/nginx.mjs');
} catch (e) {
  console.error(`cannot load tests/browser/harness.mjs (run \`npm ci\` in tests/browser first): ${e.message}`);
  process.exit(2);
}
const { startHub, startPeerDaemon, artifacts, HUB_BIN, PEER_BIN } = harness;
const { NGINX_BIN, freePort, startNginx, startNginxProxy } = nginx;

const HLS_JS = require.resolve('hls.js/dist/hls.min.js');
const version = (pkg) => JSON.parse(readFileSync(join(here, 'node_modules', pkg, 'package.json'), 'utf8')).version;
const VERSIONS = {
  'hls.js': version('hls.js'),
  'p2p-media-loader-core': version('p2p-media-loader-core'),
  'p2p-media-loader-hlsjs': version('p2p-media-loader-hlsjs'),
  'bittorrent-tracker': version('bittorrent-tracker'),
};
const PML_DIST = {
  'p2p-media-loader-core.es.js': join(here, 'node_modules/p2p-media-loader-core/dist/p2p-media-loader-core.es.js'),
  'p2p-media-loader-hlsjs.es.js': join(here, 'node_modules/p2p-media-loader-hlsjs/dist/p2p-media-loader-hlsjs.es.js'),
};

for (const bin of [NGINX_BIN, FFMPEG_BIN, HUB_BIN, ...(DONOR ? [PEER_BIN] : []), '/usr/bin/chromium', ...Object.values(PML_DIST)]) {
  if (!existsSync(bin)) {
    console.error(`${bin} does not exist (nginx, ffmpeg, chromium: apt-get install nginx-light ffmpeg chromium; `
      + 'the binaries: cargo build -p tuber-hub -p tuber-peer --all-features --bins; the packages: npm ci in bench/p2p-media-loader)');
    process.exit(2);
  }
}
if (DONOR && !LIVE) { console.error('--donor is for --live (the VOD scenario has no permanent peer)'); process.exit(2); }

const figure = figureRecorder(join(artifacts, 'bench-p2p-media-loader.jsonl'));
const outRoot = join(artifacts, 'bench-p2p-media-loader', MODE);
rmSync(outRoot, { recursive: true, force: true });
mkdirSync(outRoot, { recursive: true });
const dir = mkdtempSync(join(tmpdir(), `tuber-bench-pml-${MODE}-`));
// nginx's workers may run as another user when it starts as root.
chmodSync(dir, 0o755);
process.once('exit', () => { try { rmSync(dir, { recursive: true, force: true }); } catch { /* best effort */ } });
const watchdog = setTimeout(() => {
  console.error(`bench: not done after ${RUN_MS / 1000} s: killing everything`);
  process.exit(3);
}, RUN_MS);

const sha256Hex = (b) => createHash('sha256').update(b).digest('hex');

// ---------------------------------------------------------------------------

/** A phase: one system's servers, browser and logs, stopped in reverse order by `close` whatever happened. */
function phase(system) {
  const ph = {
    system, label: `${system}-${MODE}`, dir: join(dir, system), out: join(outRoot, system),
    logs: [], logFiles: [], cleanups: [], contexts: [],
  };
  mkdirSync(ph.dir);
  chmodSync(ph.dir, 0o755);
  mkdirSync(ph.out, { recursive: true });
  ph.defer = (fn) => ph.cleanups.push(fn);
  ph.close = async () => {
    for (const fn of ph.cleanups.reverse()) {
      let timer;
      try {
        await Promise.race([fn(), new Promise((_, reject) => { timer = setTimeout(() => reject(new Error('did not finish in 20 s')), 20_000); })]);
      } catch (e) { console.error(`${ph.label} cleanup: ${e}`); } finally { clearTimeout(timer); }
    }
    for (const [f, log] of ph.logFiles) writeFileSync(join(ph.out, f), log.toString());
    writeFileSync(join(ph.out, 'browser.log'), ph.logs.join('\n') + '\n');
    for (const server of ['origin', 'front']) {
      for (const f of ['access.log', 'error.log', 'nginx.conf']) {
        if (existsSync(join(ph.dir, server, f))) copyFileSync(join(ph.dir, server, f), join(ph.out, `${server}-nginx-${f}`));
      }
    }
  };
  for (const server of ['origin', 'front']) {
    mkdirSync(join(ph.dir, server));
    chmodSync(join(ph.dir, server), 0o755);
  }
  return ph;
}

/** The site's root for a phase: hls.js at /js, `index.html`, the VOD files (a copy of the one rendition) or an empty /live. */
function siteRoot(ph, { system, core = null, hlsConfig = {}, extraFiles = {} }, vodSrc) {
  const root = join(ph.dir, 'site');
  mkdirSync(join(root, 'js'), { recursive: true });
  copyFileSync(HLS_JS, join(root, 'js', 'hls.min.js'));
  for (const [path, file] of Object.entries(extraFiles)) {
    mkdirSync(join(root, dirname(path)), { recursive: true });
    copyFileSync(file, join(root, path));
  }
  const title = LIVE ? 'Our channel (HLS live)' : 'Our clip (HLS VOD)';
  const src = LIVE ? '/live/index.m3u8' : '/vod/index.m3u8';
  writeFileSync(join(root, 'index.html'), page({ title, src, watchMs: LIVE ? null : VOD_WATCH_MS, system, core, hlsConfig }));
  mkdirSync(join(root, MODE));
  if (!LIVE) for (const f of readdirSync(vodSrc)) copyFileSync(join(vodSrc, f), join(root, 'vod', f));
  return root;
}

/**
 * Chromium and the five viewers at `url`; live, ffmpeg publishes into
 * root/live from the start (the first viewer comes when the playlist lists
 * LIVE_MIN_SEGMENTS segments) and is stopped when they are done.
 */
async function watch(ph, root, url, { extra = null } = {}) {
  const chromium = await launchChromium();
  ph.defer(() => chromium.close());
  const env = { browser: chromium.browser, origin: url, logs: ph.logs, contexts: ph.contexts, out: ph.out };
  ph.defer(async () => { for (const c of ph.contexts) await c.close().catch(() => {}); });
  const t0 = Date.now();
  if (!LIVE) {
    const results = await viewers(env, { maxMs: FIRST_FRAME_MS + VOD_WATCH_MS + 5_000, extra });
    return { results, ms: Date.now() - t0 };
  }
  const liveDir = join(root, 'live');
  const publisher = startLivePublisher(liveDir);
  ph.defer(() => publisher.stop());
  ph.logFiles.push(['ffmpeg.log', { toString: publisher.stderr }]);
  const playlist = join(liveDir, 'index.m3u8');
  await waitFor(`the live playlist to list ${LIVE_MIN_SEGMENTS} segments`, () => {
    if (publisher.child.exitCode !== null) throw new Error(`ffmpeg exited: ${publisher.stderr()}`);
    return existsSync(playlist) && listed(readFileSync(playlist, 'utf8')).length >= LIVE_MIN_SEGMENTS;
  }, 20_000);
  const results = await viewers(env, { maxMs: FIRST_FRAME_MS + LIVE_WATCH_MS + 5_000, commonEndAfterMs: LIVE_WATCH_MS, extra });
  const exit = await publisher.stop();
  ph.logs.push(`ffmpeg stopped: ${JSON.stringify(exit)}`);
  return { results, ms: Date.now() - t0 };
}

/** Body bytes per category over access-log entries. */
function bytesBy(entries) {
  const category = (uri) => {
    if (SEGMENT.test(uri)) return 'segments';
    if (PIECE.test(uri)) return 'pieces';
    if (uri.endsWith('.m3u8')) return 'playlists';
    if (uri === '/.tuber/ws') return 'ws';
    if (uri.startsWith('/.tuber/')) return 'tuber';
    if (uri.endsWith('.js')) return 'scripts';
    return 'other';
  };
  const out = {};
  for (const e of entries) {
    const k = category(e.uri);
    out[k] = (out[k] ?? 0) + e.body_bytes_sent;
    out[`${k} requests`] = (out[`${k} requests`] ?? 0) + 1;
  }
  return out;
}

/** Every viewer's figures, from its page record and the files on disk. */
function perViewer(results, root) {
  const disk = new Map();
  const onDisk = (path) => {
    if (!disk.has(path)) {
      const f = join(root, path);
      disk.set(path, existsSync(f) ? { sha256: sha256Hex(readFileSync(f)), bytes: readFileSync(f).length } : null);
    }
    return disk.get(path);
  };
  const rows = results.map((r) => {
    const loads = r.rec.loads ?? [];
    const bad = loads.filter((l) => {
      const d = onDisk(new URL(l.url).pathname);
      return !d || d.sha256 !== l.sha256 || d.bytes !== l.bytes;
    }).map((l) => ({ url: l.url, bytes: l.bytes, sha256: l.sha256, disk: onDisk(new URL(l.url).pathname) }));
    const errors = r.rec.errors ?? [];
    return {
      label: r.label,
      navError: r.navError,
      timedOut: r.timedOut,
      viewed: sum(loads.map((l) => l.bytes)),
      loads: loads.length,
      fragLoaded: r.rec.fragLoaded ?? 0,
      bad,
      firstFrameMs: r.rec.firstFrameMs ?? null,
      played: r.rec.firstFrameMs !== null && r.rec.firstFrameMs !== undefined && r.rec.firstFrameMs <= FIRST_FRAME_MS,
      /** Media seconds played from the first frame to the end of the watch. */
      watchedS: typeof r.rec.currentTime === 'number' ? r.rec.currentTime - (r.rec.startPosition ?? 0) : null,
      stallsAfterFirstFrame: (r.rec.stalls ?? []).filter((s) => s.afterFirstFrame).length + (r.rec.waiting ?? []).length,
      stallsBeforeFirstFrame: (r.rec.stalls ?? []).filter((s) => !s.afterFirstFrame).length,
      fatal: errors.filter((e) => e.fatal),
      errors: errors.length,
      p2p: r.rec.p2p ?? null,
      tuber: r.extra ?? null,
    };
  });
  const distinctPaths = new Set(results.flatMap((r) => (r.rec.loads ?? []).map((l) => new URL(l.url).pathname)));
  return { rows, distinct: sum([...distinctPaths].map((p) => onDisk(p)?.bytes ?? 0)), distinctFiles: distinctPaths.size };
}

/** The figures every system gets; returns the offloads for the comparison. */
function report(ph, { results, originLog, frontLog = null, root, ms, extra = {} }) {
  const { label } = ph;
  const { rows, distinct, distinctFiles } = perViewer(results, root);
  const viewed = sum(rows.map((v) => v.viewed));
  const originMedia = sum(originLog.filter((e) => SEGMENT.test(e.uri)).map((e) => e.body_bytes_sent));
  const originOffload = 1 - originMedia / Math.max(1, viewed);
  const ttff = rows.map((v) => v.firstFrameMs).filter((x) => x !== null);
  const originBy = bytesBy(originLog);
  writeFileSync(join(ph.out, 'results.json'), JSON.stringify({ versions: VERSIONS, originBy, frontBy: frontLog && bytesBy(frontLog), rows, results, ...extra }, null, 1));
  console.log(`${label} per viewer: ${JSON.stringify(rows.map((v) => ({
    label: v.label, played: v.played, firstFrameMs: v.firstFrameMs, watchedS: v.watchedS && Number(v.watchedS.toFixed(1)),
    viewedMiB: Number((v.viewed / MiB).toFixed(2)), loads: v.loads, corrupt: v.bad.length, stalls: v.stallsAfterFirstFrame,
    fatal: v.fatal.map((e) => e.details), ...(v.p2p ? { p2pMiB: Number((v.p2p.p2pBytes / MiB).toFixed(2)), httpMiB: Number((v.p2p.httpBytes / MiB).toFixed(2)), peers: v.p2p.peersConnected } : {}),
    ...(v.tuber && !v.tuber.error ? { fromPeersMiB: Number(((v.tuber.bytesFromPeers ?? 0) / MiB).toFixed(2)), fromOriginMiB: Number(((v.tuber.bytesFromOrigin ?? 0) / MiB).toFixed(2)) } : {}),
  })))}`);
  figure(`${label} viewers that played (first frame within ${FIRST_FRAME_MS / 1000} s)`, rows.filter((v) => v.played).length, 'count', { of: VIEWERS });
  figure(`${label} viewed bytes (${VIEWERS} viewers, hls.js fragments + init)`, viewed / MiB, 'MiB');
  figure(`${label} origin nginx media bytes (segments + init)`, originMedia / MiB, 'MiB', { originBy });
  let peerOffload = null;
  if (frontLog) {
    const frontContent = sum(frontLog.filter((e) => SEGMENT.test(e.uri) || PIECE.test(e.uri)).map((e) => e.body_bytes_sent));
    peerOffload = 1 - frontContent / Math.max(1, viewed);
    figure(`${label} front nginx content bytes (segments + /.tuber/piece/)`, frontContent / MiB, 'MiB', { frontBy: bytesBy(frontLog) });
  }
  figure(`${label} origin offload`, originOffload, 'ratio', { ideal: (VIEWERS - 1) / VIEWERS });
  if (peerOffload !== null) figure(`${label} peer offload`, peerOffload, 'ratio', { ideal: (VIEWERS - 1) / VIEWERS });
  figure(`${label} best possible offload for what was watched (1 − one copy / viewed)`, 1 - distinct / Math.max(1, viewed), 'ratio',
    { distinctFiles, distinctBytes: distinct });
  const played = rows.map((v) => v.watchedS ?? 0);
  figure(`${label} seconds of media played per viewer, median`, median(played), 's',
    { all: played.map((x) => Number(x.toFixed(1))), min: Math.min(...played) });
  figure(`${label} time to first frame, median`, median(ttff), 'ms', { all: rows.map((v) => v.firstFrameMs) });
  figure(`${label} time to first frame, max`, ttff.length ? Math.max(...ttff) : NaN, 'ms');
  figure(`${label} stalls after the first frame`, sum(rows.map((v) => v.stallsAfterFirstFrame)), 'count',
    { perViewer: rows.map((v) => v.stallsAfterFirstFrame), beforeFirstFrame: rows.map((v) => v.stallsBeforeFirstFrame) });
  figure(`${label} corrupt fragments (SHA-256 or length not the file's)`, sum(rows.map((v) => v.bad.length)), 'count',
    { perViewer: rows.map((v) => v.bad.length), ofLoads: sum(rows.map((v) => v.loads)) });
  figure(`${label} viewers stopped by a fatal error`, rows.filter((v) => v.fatal.length).length, 'count',
    { fatal: rows.map((v) => v.fatal.map((e) => e.details)) });
  if (rows.some((v) => v.p2p)) {
    figure(`${label} bytes from peers (p2p-media-loader's own count)`, sum(rows.map((v) => v.p2p?.p2pBytes ?? 0)) / MiB, 'MiB',
      { http: sum(rows.map((v) => v.p2p?.httpBytes ?? 0)), peersConnected: rows.map((v) => v.p2p?.peersConnected ?? 0),
        segmentErrors: rows.map((v) => v.p2p?.segmentErrors?.length ?? 0) });
  }
  if (rows.some((v) => v.tuber && !v.tuber.error)) {
    figure(`${label} bytes from peers (Tuber page script's own count)`, sum(rows.map((v) => v.tuber?.bytesFromPeers ?? 0)) / MiB, 'MiB',
      { fromOrigin: sum(rows.map((v) => v.tuber?.bytesFromOrigin ?? 0)) });
  }
  figure(`${label} viewing wall time`, ms / 1000, 's');
  return { originOffload, peerOffload, viewed, played: rows.filter((v) => v.played).length };
}

// ---------------------------------------------------------------------------

async function runTuber(vodSrc) {
  const ph = phase('tuber');
  try {
    const root = siteRoot(ph, { system: 'plain' }, vodSrc);
    const origin = await startNginx(join(ph.dir, 'origin'), root);
    ph.defer(() => origin.stop());
    const frontPort = await freePort();
    const frontUrl = `http://127.0.0.1:${frontPort}`;
    const hub = await startHub({ upstream: origin.url, config: { public_url: frontUrl } });
    ph.defer(() => hub.stop());
    ph.logFiles.push(['hub.log', hub.log]);
    const front = await startNginxProxy(join(ph.dir, 'front'), hub.url, { port: frontPort });
    ph.defer(() => front.stop());
    if (DONOR) {
      const peer = await startPeerDaemon({ hub, url: front.url, invite: await hub.invite('bench donor') });
      ph.defer(() => peer.stop());
      ph.logFiles.push(['tuber-peer.log', peer.log]);
      await waitFor('the permanent peer to be joined and trusted', async () => {
        const s = await peer.swarm().catch(() => null);
        return s?.swarm?.phase?.state === 'joined' && s.swarm.phase.trusted;
      }, 20_000);
    }
    const { results, ms } = await watch(ph, root, front.url, {
      extra: (pg) => pg.evaluate(() => (window.__tuber?.stats ? window.__tuber.stats() : { error: 'no window.__tuber' })),
    });
    const hubMetrics = Object.fromEntries([...(await hub.metrics().catch(() => new Map()))].filter(([k]) => k.startsWith('tuber_')));
    return report(ph, { results, originLog: origin.accessLog(), frontLog: front.accessLog(), root, ms, extra: { hubMetrics, donor: DONOR } });
  } finally {
    await ph.close();
  }
}

/** tracker.mjs as its own process: resolves to { url, pid, stop } once it listens. */
async function startTracker(ph) {
  const child = spawn(process.execPath, [join(here, 'tracker.mjs')], { stdio: ['ignore', 'pipe', 'pipe'] });
  mine.set(child.pid, { group: false });
  let log = '';
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => { mine.delete(child.pid); resolve({ code, signal }); }));
  child.stderr.on('data', (d) => { log = (log + d).slice(-256 * 1024); });
  let stdout = '';
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the tracker did not listen in 10 s: ${log}`)), 10_000);
    child.stdout.on('data', (d) => {
      stdout += d;
      log = (log + d).slice(-256 * 1024);
      const m = /listening (ws:\/\/\S+)/.exec(stdout);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    exited.then((e) => { clearTimeout(timer); reject(new Error(`the tracker exited (${JSON.stringify(e)}): ${log}`)); });
  });
  ph.logFiles.push(['tracker.log', { toString: () => log }]);
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    const m = [...stdout.matchAll(/^stats (.*)$/gm)].at(-1);
    return m ? JSON.parse(m[1]) : null;
  };
  return { url, pid: child.pid, stop };
}

async function runPml(vodSrc) {
  const ph = phase('pml');
  try {
    const tracker = await startTracker(ph);
    let trackerStats = null;
    ph.defer(async () => { trackerStats = await tracker.stop(); });
    // Its documented core settings, less the public ones nothing here can reach:
    // the local tracker, no STUN servers (every peer is on 127.0.0.1).
    const core = { announceTrackers: [tracker.url], rtcConfig: { iceServers: [] } };
    const root = siteRoot(ph, {
      system: 'pml', core, hlsConfig: PML_NO_WORKER ? { enableWorker: false } : {},
      extraFiles: Object.fromEntries(Object.entries(PML_DIST).map(([f, p]) => [`pml/${f}`, p])),
    }, vodSrc);
    const origin = await startNginx(join(ph.dir, 'origin'), root);
    ph.defer(() => origin.stop());
    const { results, ms } = await watch(ph, root, origin.url);
    const originLog = origin.accessLog();
    // The tracker's counters, before the report (its stop is a cleanup).
    trackerStats = await tracker.stop();
    return report(ph, { results, originLog, root, ms, extra: { core, trackerStats, pmlNoWorker: PML_NO_WORKER } });
  } finally {
    await ph.close();
  }
}

const t0 = Date.now();
let code = 0;
try {
  console.log(`bench p2p-media-loader (${MODE}${DONOR ? ', Tuber with a trusted permanent peer' : ''}${PML_NO_WORKER ? ', p2p-media-loader\'s hls.js without its worker' : ''}): ${VIEWERS} first-time viewers ${STAGGER_MS / 1000} s apart; ${JSON.stringify(VERSIONS)}`);
  let vodSrc = null;
  if (!LIVE) {
    vodSrc = join(dir, 'vod-src');
    mkdirSync(vodSrc);
    await makeVod(vodSrc);
  }
  console.log('== Tuber');
  const tuber = await runTuber(vodSrc);
  await sleep(1000);
  console.log('== p2p-media-loader');
  const pml = await runPml(vodSrc);
  const ratio = (a, b) => (Math.abs(b) < 1e-9 ? NaN : a / b);
  const note = pml.originOffload <= 0 ? { note: 'p2p-media-loader offload ≤ 0: the ratio is not meaningful, see the difference' } : {};
  figure(`compare-${MODE} origin offload, Tuber / p2p-media-loader`, ratio(tuber.originOffload, pml.originOffload), 'ratio',
    { tuber: Number(tuber.originOffload.toFixed(3)), pml: Number(pml.originOffload.toFixed(3)), ...note });
  figure(`compare-${MODE} Tuber peer offload / p2p-media-loader origin offload`, ratio(tuber.peerOffload, pml.originOffload), 'ratio',
    { tuber: Number(tuber.peerOffload.toFixed(3)), pml: Number(pml.originOffload.toFixed(3)), ...note });
  figure(`compare-${MODE} origin offload, Tuber − p2p-media-loader`, tuber.originOffload - pml.originOffload, 'ratio',
    { tuberPlayed: tuber.played, pmlPlayed: pml.played });
  console.log(`bench done in ${((Date.now() - t0) / 1000).toFixed(0)} s; details in ${outRoot}`);
} catch (e) {
  console.error(`bench failed: ${e.stack ?? e}`);
  code = 1;
} finally {
  clearTimeout(watchdog);
  rmSync(dir, { recursive: true, force: true });
}
process.exit(code);
