// What both systems of the benchmark share: the media ffmpeg makes (the
// encoding of tests/browser/hls.test.mjs), the viewer page (hls.js started by
// the page, every fragment hashed by a thin wrapper of the fragment loader
// hls.js uses), Chromium (Debian's, the flags of tests/browser/harness.mjs
// `launchChromium`), and the five first-time viewers 4 s apart. Kept apart
// from hls.test.mjs, which exports nothing; the page and the viewer are the
// same as there, less the test-only diagnostics.
import { execFile, spawn } from 'node:child_process';
import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const FFMPEG_BIN = process.env.TUBER_FFMPEG_BIN ?? '/usr/bin/ffmpeg';
export const CHROMIUM_BIN = process.env.TUBER_CHROMIUM_BIN ?? '/usr/bin/chromium';
export const VIEWERS = 5;
export const STAGGER_MS = 4000;
export const FIRST_FRAME_MS = 15_000;
export const VOD_SECONDS = 32;
export const VOD_WATCH_MS = 30_000;
export const LIVE_WATCH_MS = 25_000;
export const LIVE_MIN_SEGMENTS = 3;
const VIDEO_RATE = '3600k';
/** Media paths counted as content: segments and init segments. */
export const SEGMENT = /\.(m4s|ts)$|\/init\.mp4$/;
export const PIECE = /^\/\.tuber\/piece\//;
export const MiB = 1024 * 1024;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const sum = (xs) => xs.reduce((a, b) => a + b, 0);
export const median = (xs) => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Polls `cond` every 100 ms until it returns a truthy value; throws after `timeoutMs`. */
export async function waitFor(what, cond, timeoutMs) {
  const t0 = Date.now();
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

/**
 * Processes started here (ffmpeg, the tracker, Chromium): SIGKILLed at exit
 * whatever happens, each by its pid (and its process group when it leads one).
 */
export const mine = new Map();
process.once('exit', () => {
  for (const [pid, { group }] of mine) {
    if (group) { try { process.kill(-pid, 'SIGKILL'); } catch { /* gone */ } }
    try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  }
});

/** Prints a figure as harness.mjs `recordFigure` does, and appends it to `jsonl`. */
export function figureRecorder(jsonl) {
  mkdirSync(join(jsonl, '..'), { recursive: true });
  return (name, value, unit, extra = {}) => {
    const line = { at: new Date().toISOString(), name, value: Number(value?.toFixed?.(3) ?? value), unit, ...extra };
    console.log(`FIGURE ${name}: ${line.value} ${unit}${Object.keys(extra).length ? ' ' + JSON.stringify(extra) : ''}`);
    appendFileSync(jsonl, JSON.stringify(line) + '\n');
  };
}

// ---------------------------------------------------------------------------
// Media.

/** The encoding of hls.test.mjs: 640x360, ~4 Mb/s constant-ish, 2 s GOPs, AAC. */
const ENCODE = ['-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p',
  '-b:v', VIDEO_RATE, '-minrate', VIDEO_RATE, '-maxrate', VIDEO_RATE, '-bufsize', VIDEO_RATE,
  '-g', '60', '-keyint_min', '60', '-sc_threshold', '0', '-c:a', 'aac', '-b:a', '128k'];
const SOURCE = ['-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=30', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000'];

/** The VOD rendition of hls.test.mjs in `dir`: 32 s, fMP4, 2 s segments, `index.m3u8` + `init.mp4` + `seg_NNN.m4s`. */
export function makeVod(dir, timeoutMs = 120_000) {
  return new Promise((resolve, reject) => {
    const child = execFile(FFMPEG_BIN, ['-hide_banner', '-loglevel', 'error', '-y', ...SOURCE, '-t', String(VOD_SECONDS), ...ENCODE,
      '-f', 'hls', '-hls_time', '2', '-hls_playlist_type', 'vod', '-hls_segment_type', 'fmp4',
      '-hls_fmp4_init_filename', 'init.mp4', '-hls_segment_filename', 'seg_%03d.m4s', 'index.m3u8'],
    { cwd: dir, timeout: timeoutMs }, (err, _out, stderr) => {
      mine.delete(child.pid);
      if (err) reject(new Error(`ffmpeg failed: ${err.message}\n${stderr}`));
      else resolve();
    });
    mine.set(child.pid, { group: false });
  });
}

/** Media segments listed by an HLS playlist's text. */
export const listed = (text) => text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));

/**
 * ffmpeg publishing the live sliding window of hls.test.mjs into `dir` in
 * real time (MPEG-TS, 2 s segments, 6 listed, every segment kept on disk), in
 * its own process group. Returns { pid, exited, stop, stderr }.
 */
export function startLivePublisher(dir) {
  const child = spawn(FFMPEG_BIN, ['-hide_banner', '-loglevel', 'error', '-y', '-re', ...SOURCE, ...ENCODE,
    '-f', 'hls', '-hls_time', '2', '-hls_list_size', '6', '-hls_flags', 'temp_file+independent_segments',
    '-hls_segment_filename', 'live_%05d.ts', 'index.m3u8'], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  mine.set(child.pid, { group: true });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr = (stderr + d).slice(-64 * 1024); });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => { mine.delete(child.pid); resolve({ code, signal }); }));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return exited;
    try { process.kill(-child.pid, 'SIGTERM'); } catch { /* gone */ }
    const timer = setTimeout(() => { try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ } }, 5_000);
    const r = await exited;
    clearTimeout(timer);
    return r;
  };
  return { pid: child.pid, child, exited, stop, stderr: () => stderr };
}

// ---------------------------------------------------------------------------
// The page.

/**
 * The viewer page. `system`:
 * - 'plain': the site's own hls.js page (what Tuber is put in front of):
 *   `new Hls({ fLoader })`, a classic script run at parse time;
 * - 'pml': hls.js with p2p-media-loader-hlsjs as its 2.x README documents it
 *   (`HlsJsP2PEngine.injectMixin(Hls)`, then `new HlsWithP2P({ p2p: { core } })`),
 *   the ES modules served by the site and named by an import map; its
 *   fragment loader (`hls.config.fLoader`, read by hls.js at every load) is
 *   wrapped in the same hashing wrapper before any load starts, and its
 *   events counted (bytes by source, peers, errors).
 * `hlsConfig`: more hls.js settings for the 'pml' page (`--pml-no-worker`).
 * In both, every fragment's bytes are hashed (SHA-256) as the loader hands
 * them to hls.js, before hls.js transfers the buffer to its worker.
 */
export function page({ title, src, watchMs, system, core = null, hlsConfig = {} }) {
  const create = system === 'pml'
    ? `var HlsWithP2P = HlsJsP2PEngine.injectMixin(Hls);
  var hls = new HlsWithP2P(Object.assign(${JSON.stringify(hlsConfig)}, { p2p: { core: ${JSON.stringify(core)} } }));
  hls.config.fLoader = hashing(hls.config.fLoader);
  var p2p = rec.p2p = { httpBytes: 0, p2pBytes: 0, uploadedBytes: 0, peersConnected: 0, peersClosed: 0,
    segmentsFrom: { http: 0, p2p: 0 }, segmentErrors: [], peerErrors: 0, trackerErrors: [], trackerWarnings: 0 };
  var e = hls.p2pEngine;
  e.addEventListener('onChunkDownloaded', function (n, source) { if (source === 'p2p') p2p.p2pBytes += n; else p2p.httpBytes += n; });
  e.addEventListener('onChunkUploaded', function (n) { p2p.uploadedBytes += n; });
  e.addEventListener('onSegmentLoaded', function (d) { p2p.segmentsFrom[d.downloadSource] = (p2p.segmentsFrom[d.downloadSource] || 0) + 1; });
  e.addEventListener('onSegmentError', function (d) {
    p2p.segmentErrors.push({ url: d.segment && d.segment.url, source: d.downloadSource, error: String(d.error && (d.error.type || d.error.message) || d.error) });
  });
  e.addEventListener('onPeerConnect', function () { p2p.peersConnected++; });
  e.addEventListener('onPeerClose', function () { p2p.peersClosed++; });
  e.addEventListener('onPeerError', function () { p2p.peerErrors++; });
  e.addEventListener('onTrackerError', function (d) { p2p.trackerErrors.push(String(d && d.error)); });
  e.addEventListener('onTrackerWarning', function () { p2p.trackerWarnings++; });`
    : 'var hls = new Hls({ fLoader: hashing(Hls.DefaultConfig.loader) });';
  const scripts = system === 'pml'
    ? `<script src="/js/hls.min.js"></script>
<script type="importmap">{"imports":{"p2p-media-loader-core":"/pml/p2p-media-loader-core.es.js"}}</script>
<script type="module">
import { HlsJsP2PEngine } from '/pml/p2p-media-loader-hlsjs.es.js';
`
    : `<script src="/js/hls.min.js"></script>
<script>
`;
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>${title}</title></head>
<body>
<h1>${title}</h1>
<video id=v muted autoplay playsinline width="640" height="360"></video>
${scripts}(function () {
  var v = document.getElementById('v');
  var rec = window.__hlsTest = {
    controlledAtStart: !!(navigator.serviceWorker && navigator.serviceWorker.controller),
    loads: [], fragLoaded: 0, stalls: [], waiting: [], errors: [], firstFrameMs: null,
    ended: false, done: false, pending: 0, hlsVersion: Hls.version,
  };
  var hex = function (buf) {
    return Array.prototype.map.call(new Uint8Array(buf), function (b) { return b.toString(16).padStart(2, '0'); }).join('');
  };
  var hashing = function (Base) {
    return class HashingLoader extends Base {
      load(context, config, callbacks) {
        var frag = context.frag;
        var entry = null;
        // An empty buffer is recorded too when it is what the loader calls
        // success with (so a segment delivered empty counts as corrupt).
        var take = function (buf, final) {
          if (entry || !(buf instanceof ArrayBuffer) || (buf.byteLength === 0 && !final)) return;
          entry = { url: context.url, sn: frag ? frag.sn : null, bytes: buf.byteLength, sha256: null,
            at: Math.round(performance.now()), fragLoaded: false };
          rec.loads.push(entry);
          rec.pending++;
          crypto.subtle.digest('SHA-256', buf).then(function (d) { entry.sha256 = hex(d); },
            function (e) { entry.sha256 = 'error: ' + e; }).finally(function () { rec.pending--; });
          if (frag) frag.__benchEntry = entry;
        };
        var wrapped = Object.assign({}, callbacks, {
          onSuccess: function (response, stats, ctx, details) {
            take(response.data, true);
            return callbacks.onSuccess(response, stats, ctx, details);
          },
        });
        if (callbacks.onProgress) {
          wrapped.onProgress = function (stats, ctx, data, details) {
            take(data);
            return callbacks.onProgress(stats, ctx, data, details);
          };
        }
        return super.load(context, config, wrapped);
      }
    };
  };
  ${create}
  window.__hls = hls;
  var finish = function () {
    if (rec.done) return;
    rec.done = true;
    try { hls.stopLoad(); v.pause(); } catch (e) { rec.errors.push({ details: 'stop: ' + e }); }
  };
  hls.on(Hls.Events.FRAG_LOADED, function (_e, data) {
    rec.fragLoaded++;
    var entry = data.frag.__benchEntry;
    if (entry) entry.fragLoaded = true;
    else rec.errors.push({ details: 'FRAG_LOADED without a recorded load', url: data.frag.url });
  });
  hls.on(Hls.Events.ERROR, function (_e, d) {
    var at = Math.round(performance.now());
    if (rec.done) return;
    if (d.details === Hls.ErrorDetails.BUFFER_STALLED_ERROR) {
      rec.stalls.push({ at: at, afterFirstFrame: rec.firstFrameMs !== null, currentTime: v.currentTime });
    } else {
      rec.errors.push({ at: at, type: d.type, details: d.details, fatal: !!d.fatal,
        url: d.frag ? d.frag.url : (d.url || null), reason: d.reason || (d.error ? String(d.error) : null) });
    }
    if (d.fatal) finish();
  });
  var first = function () {
    if (rec.firstFrameMs === null && v.currentTime > 0) {
      rec.firstFrameMs = Math.round(performance.now());
      rec.startPosition = v.currentTime;
      if (${watchMs ?? 0} > 0) setTimeout(finish, ${watchMs ?? 0});
    }
  };
  window.__hlsFinish = finish;
  v.addEventListener('playing', first);
  v.addEventListener('timeupdate', first);
  v.addEventListener('waiting', function () {
    if (rec.firstFrameMs !== null && !rec.ended && !rec.done) rec.waiting.push({ at: Math.round(performance.now()), currentTime: v.currentTime });
  });
  v.addEventListener('ended', function () { rec.ended = true; finish(); });
  v.addEventListener('error', function () { rec.errors.push({ details: 'video error', code: v.error && v.error.code, fatal: true }); finish(); });
  hls.loadSource(${JSON.stringify(src)});
  hls.attachMedia(v);
})();
</script>
</body></html>
`;
}

// ---------------------------------------------------------------------------
// Chromium and the viewers.

/**
 * Debian's Chromium, headless, with the flags of harness.mjs `launchChromium`
 * (loopback ICE candidates allowed), as a browser server so its pid is known.
 * Resolves to { browser, pid, close }.
 */
export async function launchChromium() {
  const server = await chromium.launchServer({
    executablePath: CHROMIUM_BIN,
    headless: true,
    host: '127.0.0.1',
    port: 0,
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
    ],
  });
  const pid = server.process().pid;
  mine.set(pid, { group: false });
  const browser = await chromium.connect(server.wsEndpoint(), { timeout: 20_000 });
  const close = async () => {
    await Promise.race([browser.close().catch(() => {}), sleep(10_000)]);
    await Promise.race([server.close().catch(() => {}), sleep(10_000)]);
    try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    mine.delete(pid);
  };
  return { browser, pid, close };
}

/**
 * One first-time viewer in its own context (camera and microphone granted to
 * `origin`, so Chromium offers loopback ICE candidates): opens `origin/`,
 * waits for the first frame, then until the page is done (ended, watched long
 * enough, a fatal error) or `end` resolves, bounded by `maxMs`. `extra(page)`
 * adds system-specific stats. Never throws. The context stays open (the page
 * still a peer) until `contexts` are closed.
 */
export async function viewer({ browser, origin, logs, contexts, out }, label, { maxMs, end = null, onEnd = () => {}, extra = null }) {
  const t0 = Date.now();
  const context = await browser.newContext();
  contexts.push(context);
  await context.grantPermissions(['camera', 'microphone'], { origin });
  const stamp = () => new Date().toISOString().slice(11, 23);
  context.on('console', (m) => logs.push(`${stamp()} [${label} console.${m.type()}] ${m.text()}`));
  context.on('weberror', (e) => logs.push(`${stamp()} [${label} error] ${e.error()?.stack ?? e.error()}`));
  const pg = await context.newPage();
  const result = { label, navError: null, timedOut: false };
  try {
    const nav = await pg.goto(origin + '/', { timeout: 20_000, waitUntil: 'commit' });
    if (nav.status() !== 200) result.navError = `status ${nav.status()}`;
  } catch (e) { result.navError = String(e); }
  try {
    await pg.waitForFunction(() => window.__hlsTest && window.__hlsTest.firstFrameMs !== null, null,
      { timeout: FIRST_FRAME_MS + 2_000, polling: 250 });
    const left = Math.max(1000, maxMs - (Date.now() - t0));
    const done = pg.waitForFunction(() => window.__hlsTest.done, null, { timeout: left, polling: 250 });
    await (end ? Promise.race([done, end()]) : done);
    done.catch(() => {});
  } catch (e) { result.timedOut = String(e).split('\n')[0]; }
  await pg.evaluate(() => window.__hlsFinish && window.__hlsFinish()).catch(() => {});
  onEnd();
  result.ms = Date.now() - t0;
  result.rec = await pg.evaluate(async () => {
    const r = window.__hlsTest;
    if (!r) return { error: 'window.__hlsTest is not set' };
    const s = performance.now();
    while (r.pending > 0 && performance.now() - s < 5000) await new Promise((ok) => setTimeout(ok, 50));
    return JSON.parse(JSON.stringify({ ...r, currentTime: document.getElementById('v').currentTime }));
  }).catch((e) => ({ error: String(e), loads: [], stalls: [], waiting: [], errors: [] }));
  if (extra) result.extra = await extra(pg).catch((e) => ({ error: String(e) }));
  await pg.screenshot({ path: join(out, `${label}.png`) }).catch(() => {});
  return result;
}

/**
 * Five viewers, STAGGER_MS apart (the pattern of hls.test.mjs). VOD: each on
 * its own. Live (`commonEndAfterMs`): the last watches that long after its
 * first frame, and the stream ends then for everyone.
 */
export function viewers(env, { maxMs, commonEndAfterMs = null, extra = null }) {
  let endAll;
  const ended = new Promise((resolve) => { endAll = resolve; });
  return Promise.all(Array.from({ length: VIEWERS }, async (_, i) => {
    await sleep(i * STAGGER_MS);
    const label = `viewer${i + 1}`;
    if (commonEndAfterMs === null) return viewer(env, label, { maxMs, extra });
    const last = i === VIEWERS - 1;
    const r = await viewer(env, label, {
      maxMs: maxMs + (VIEWERS - 1 - i) * STAGGER_MS,
      end: last ? () => sleep(commonEndAfterMs) : () => ended,
      onEnd: last ? endAll : () => {},
      extra,
    });
    if (last) endAll();
    return r;
  }));
}
