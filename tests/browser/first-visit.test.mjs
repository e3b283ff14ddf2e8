// First visits count (issue #12), with real parts: Debian's nginx serves a
// static site (a page with `<video src=/media/clip.mp4 preload=auto>` and a
// link to a 16 MiB .zip; the clip made here by ffmpeg, once per file run and
// shared by every scenario), the hub is in front of it, and first-time
// visitors, each in its own browser context, a few seconds apart, each open
// the page and its own code plays the video at once (no waiting for the
// Service Worker, no reload), seeks to 20 s, plays on, and clicks the
// download link. Every video plays, seeks and advances; every download is
// correct. Three scenarios, one fresh nginx + hub (+ peer) + Chromium each:
//
// 1. A trusted permanent peer holds both files (the hub is told of them
//    beforehand): the viewers' bytes come from the peer: nginx's access log
//    shows no viewer byte of either file, the hub proxied none to the
//    viewers, every clip response came from the Service Worker; a later
//    visit of the first visitor is controlled from the start and gets
//    nothing from the origin.
// 2. No permanent peer, three visitors (nothing announced: the hub learns of
//    the files from the viewers' requests): the origin sends ≤ 1.1 copies of
//    each file viewed, the clip and the zip separately ("copies" as issue
//    #12 counts them: origin bytes / the file's length). The union of what
//    the players received is printed beside it: the hub hashes a whole file
//    for its manifest, so a stretch every viewer skipped (the seek jumps
//    past what was buffered) is read once though nobody played it.
// 3. One viewer alone, no permanent peer: the origin sends ≤ 1.05 × the
//    bytes viewed, for the clip and for the zip separately (Tuber costs the
//    origin nothing extra).
//
// What is counted:
// - Origin bytes: nginx's own access log (`$body_bytes_sent`), every request
//   for the file made while the scenario ran, the hub's own (HEADs, manifest
//   reads, piece reads: no User-Agent) and the ones it proxied for browsers
//   (the player's, the Tuber runtime's `x-tuber-origin` Range requests, the
//   Service Worker's network fallbacks) alike. The viewers leave as people
//   do (each closes its tab, its player maybe still loading) and the
//   browser runs on for LEAVE_MS, so what Tuber sends for pages that are
//   gone counts too; then the browser, the hub and the peer are stopped
//   before the log is read, so a read still running is logged too
//   (with what it sent until then). Scenario 1 counts what nginx sent while
//   viewers viewed apart from the setup (the peer's prefetch); its figures
//   show both.
// - "One copy of what was viewed", the clip: the union, over the viewers, of
//   the byte ranges actually delivered to the players. Each player response
//   for the clip (the page's requests without `x-tuber-origin`, from the
//   Service Worker or not) is watched over the Chrome DevTools protocol: it
//   starts where its `Content-Range` says (0 for a 200) and covers the
//   bytes the page received for it (`Network.dataReceived`), not what its
//   `Range` asked for (a player aborts a `bytes=0-` when it seeks). When
//   that union is the whole file (preload=auto on a short clip usually
//   fetches all of it), one copy is the file's length; the figure
//   `… one copy viewed: clip` says which (`basis`).
// - One copy of the zip: its length (every download is the whole file,
//   checked by SHA-256).
// - "Bytes viewed" by the viewer alone: what that page received: Tuber's
//   counters (`bytesFromPeers + bytesFromOrigin`, verified pieces, read-ahead
//   included), plus what it got outside Tuber: the bytes of player responses
//   not from the Service Worker, and for the zip its length when the
//   download was not answered by Tuber (`x-tuber: p2p` from the worker).
//   The bytes of player responses the worker answered from its own network
//   fallback are in neither: the figures print nginx's bytes proxied to the
//   browser next to Tuber's `bytesFromOrigin` so such a fallback shows.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  startHub, startPeerDaemon, launchChromium, newClientContext, clientStats, watchResponses, recordFigure,
  artifactPath, deterministicBytes, sha256Hex, sleep, MiB,
} from './harness.mjs';
import { NGINX_BIN, startNginx } from './nginx.mjs';

const FFMPEG_BIN = process.env.TUBER_FFMPEG_BIN ?? '/usr/bin/ffmpeg';
const CLIP = '/media/clip.mp4';
const ZIP = '/files/pkg.zip';
const ZIP_LEN = 16 * MiB;
const STAGGER_MS = 3000;
/**
 * After the viewers closed their tabs, the browser runs on this long before
 * it stops: longer than the Service Worker takes to see a page gone (2 s).
 */
const LEAVE_MS = 3000;
const PLAY_MS = 30_000;
/** Without a permanent peer: origin bytes ≤ this × one copy of what was viewed (issue #12). */
const COPIES_MAX = 1.1;
/** One viewer alone: origin bytes ≤ this × the bytes viewed (issue #12). */
const ALONE_MAX = 1.05;

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>A real site</title></head>
<body>
<h1>Our clip</h1>
<video id="v" src="${CLIP}" controls preload="auto" width="640" height="360"></video>
<p><a id="pkg" href="${ZIP}">Download pkg.zip</a></p>
</body></html>
`;

/** Processes this file starts itself (ffmpeg): killed at exit whatever happens. */
const mine = new Set();
process.once('exit', () => {
  for (const c of mine) { try { process.kill(-c.pid, 'SIGKILL'); } catch { /* gone */ } }
});

/** ffmpeg: a 30 s constant-rate H.264/AAC clip with 2 s GOPs and the moov first. */
function makeClip(out) {
  const args = ['-hide_banner', '-loglevel', 'error', '-y',
    '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=30', '-f', 'lavfi', '-i', 'sine=frequency=440',
    '-t', '30', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p',
    '-b:v', '2M', '-minrate', '2M', '-maxrate', '2M', '-bufsize', '2M',
    '-g', '60', '-keyint_min', '60', '-sc_threshold', '0', '-c:a', 'aac', '-movflags', '+faststart', out];
  return new Promise((resolve, reject) => {
    const child = execFile(FFMPEG_BIN, args, { timeout: 60_000 }, (err, _stdout, stderr) => {
      mine.delete(child);
      if (err) reject(new Error(`ffmpeg failed: ${err.message}\n${stderr}`));
      else resolve();
    });
    mine.add(child);
  });
}

// ---------------------------------------------------------------------------
// The site: made once per file run, served by every scenario's nginx.

let siteMade = null;
let siteDir = null;
// Registered here, at the top level: on the root test, after every scenario.
after(() => { if (siteDir) rmSync(siteDir, { recursive: true, force: true }); });
process.once('exit', () => { if (siteDir) rmSync(siteDir, { recursive: true, force: true }); });
/** The site's root (page, clip, zip), made on first use: { root, clipLen, zipSha, madeMs }. */
function site() {
  siteMade ??= (async () => {
    for (const bin of [NGINX_BIN, FFMPEG_BIN]) {
      if (!existsSync(bin)) throw new Error(`${bin} does not exist: apt-get install nginx-light ffmpeg`);
    }
    const t0 = Date.now();
    const dir = mkdtempSync(join(tmpdir(), 'tuber-first-visit-site-'));
    siteDir = dir;
    // nginx's workers may run as another user when it starts as root.
    chmodSync(dir, 0o755);
    const root = join(dir, 'site');
    mkdirSync(join(root, 'media'), { recursive: true });
    mkdirSync(join(root, 'files'), { recursive: true });
    writeFileSync(join(root, 'index.html'), PAGE);
    const zip = deterministicBytes(ZIP_LEN, 12);
    writeFileSync(join(root, ZIP), zip);
    await makeClip(join(root, CLIP));
    return { root, clipLen: readFileSync(join(root, CLIP)).length, zipSha: sha256Hex(zip), madeMs: Date.now() - t0 };
  })();
  return siteMade;
}

// ---------------------------------------------------------------------------
// Counting.

/** Body bytes nginx sent per path, over `entries`. */
function bytesByPath(entries) {
  const out = {};
  for (const e of entries) out[e.uri] = (out[e.uri] ?? 0) + e.body_bytes_sent;
  return out;
}

/** Per path: body bytes the hub asked for itself (no User-Agent) and proxied for Chromium, and requests. */
function originDetail(entries, path) {
  const own = entries.filter((e) => e.uri === path && !e.ua);
  const proxied = entries.filter((e) => e.uri === path && e.ua);
  const sum = (es) => es.reduce((s, e) => s + e.body_bytes_sent, 0);
  return {
    hubOwn: sum(own),
    proxied: sum(proxied),
    requests: entries.filter((e) => e.uri === path).map((e) => `${e.method} ${e.status} ${e.range || '-'} ${e.body_bytes_sent}${e.ua ? ' browser' : ' hub'}`),
  };
}

/** The union of half-open intervals [a, b): its total length and the merged intervals. */
function union(intervals) {
  const sorted = intervals.filter(([a, b]) => b > a).sort((x, y) => x[0] - y[0]);
  const merged = [];
  for (const [a, b] of sorted) {
    const last = merged.at(-1);
    if (last && a <= last[1]) last[1] = Math.max(last[1], b);
    else merged.push([a, b]);
  }
  return { bytes: merged.reduce((s, [a, b]) => s + b - a, 0), merged };
}

/**
 * Watches the page's requests for `path` over the DevTools protocol (a
 * session of its own): per request its `Range`, whether it is the Tuber
 * runtime's own origin read (`x-tuber-origin`), status, `Content-Range`,
 * whether the Service Worker answered, the body bytes the page received,
 * and how it ended.
 */
async function watchDelivered(context, page, path) {
  const cdp = await context.newCDPSession(page);
  const byId = new Map();
  const lower = (h) => Object.fromEntries(Object.entries(h ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
  cdp.on('Network.requestWillBeSent', (e) => {
    let p;
    try { p = new URL(e.request.url).pathname; } catch { return; }
    if (p !== path) return;
    const h = lower(e.request.headers);
    byId.set(e.requestId, {
      range: h.range ?? null, tuber: 'x-tuber-origin' in h, status: null, contentRange: null, sw: null, received: 0, end: null,
    });
  });
  cdp.on('Network.responseReceived', (e) => {
    const r = byId.get(e.requestId);
    if (!r) return;
    r.status = e.response.status;
    r.sw = !!e.response.fromServiceWorker;
    r.contentRange = lower(e.response.headers)['content-range'] ?? null;
  });
  cdp.on('Network.dataReceived', (e) => {
    const r = byId.get(e.requestId);
    if (r) r.received += e.dataLength;
  });
  cdp.on('Network.loadingFinished', (e) => { const r = byId.get(e.requestId); if (r) r.end = 'finished'; });
  cdp.on('Network.loadingFailed', (e) => {
    const r = byId.get(e.requestId);
    if (r) r.end = e.canceled ? 'canceled' : e.errorText;
  });
  await cdp.send('Network.enable');
  return { all: () => [...byId.values()] };
}

/** The byte interval [start, start + received) a response delivered, or null. */
function deliveredInterval(r) {
  if (r.status === 200) return [0, r.received];
  if (r.status !== 206) return null;
  const m = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(r.contentRange ?? '');
  return m ? [Number(m[1]), Number(m[1]) + r.received] : null;
}

// ---------------------------------------------------------------------------
// One visitor.

/** One first-time visitor: its own context; plays, seeks, plays on, downloads. */
async function visit({ browser, hubUrl, label, logs, defer, zipSha, name, context = null, download: doDownload = true, debug = false }) {
  if (!context) {
    context = await newClientContext(browser, hubUrl, { logs, label });
    defer(() => context.close());
    // The runtime's debug log (why a piece went to the origin) in browser.log.
    if (debug) await context.addInitScript(() => { try { localStorage.setItem('tuber-debug', '1'); } catch { /* no storage */ } });
  }
  const page = await context.newPage();
  const responses = watchResponses(page, CLIP);
  const delivered = await watchDelivered(context, page, CLIP);
  const zipResponses = [];
  page.on('response', (r) => {
    if (new URL(r.url()).pathname === ZIP) {
      zipResponses.push({ status: r.status(), fromServiceWorker: r.fromServiceWorker(), xTuber: r.headers()['x-tuber'] ?? null });
    }
  });
  const t0 = Date.now();
  const nav = await page.goto(hubUrl + '/');
  assert.equal(nav.status(), 200);
  // The page's own code, as soon as it loaded: nothing waits for the Service Worker.
  const played = await page.evaluate(async (timeoutMs) => {
    const v = /** @type {HTMLVideoElement} */ (document.getElementById('v'));
    const at = { controlledAtStart: !!navigator.serviceWorker?.controller, deferredAtStart: v.hasAttribute('data-tuber-src') };
    const until = (cond, what) => new Promise((resolve, reject) => {
      const s = performance.now();
      const tick = () => {
        if (v.error) return reject(new Error(`video error ${v.error.code}: ${v.error.message}`));
        if (cond()) return resolve(performance.now() - s);
        if (performance.now() - s > timeoutMs) {
          return reject(new Error(`timed out waiting for ${what}: currentTime=${v.currentTime} readyState=${v.readyState} networkState=${v.networkState} src=${v.currentSrc}`));
        }
        setTimeout(tick, 50);
      };
      tick();
    });
    v.muted = true;
    const t = performance.now();
    await v.play();
    const startMs = performance.now() - t;
    await until(() => v.currentTime > 1, 'playback past 1 s');
    const before = v.currentTime;
    v.currentTime = 20;
    await until(() => !v.seeking, 'the seek to 20 s');
    const landed = v.currentTime;
    await until(() => v.currentTime >= landed + 2, 'playback to advance 2 s after the seek');
    return {
      ...at, startMs, before, landed, after: v.currentTime, duration: v.duration, error: v.error?.code ?? null,
      src: v.currentSrc, controlled: !!navigator.serviceWorker?.controller,
    };
  }, PLAY_MS);
  const afterVideo = await clientStats(page);
  const base = { label, context, page, played, responses, delivered: delivered.all, zipResponses, afterVideo };
  if (!doDownload) return { ...base, ms: Date.now() - t0, afterDownload: afterVideo };
  const [download] = await Promise.all([page.waitForEvent('download', { timeout: 60_000 }), page.click('#pkg')]);
  const file = await download.path();
  const failure = await download.failure();
  const sha = file ? sha256Hex(readFileSync(file)) : null;
  const afterDownload = await clientStats(page);
  await page.screenshot({ path: artifactPath(`${name}/${label}.png`) });
  return {
    ...base, ms: Date.now() - t0, afterDownload, failure,
    download: { ok: sha === zipSha, name: download.suggestedFilename(), url: download.url() }, pageUrl: page.url(),
  };
}

// ---------------------------------------------------------------------------
// One scenario.

/**
 * A fresh nginx (serving the shared site), hub and Chromium; with `peer`,
 * both files announced to the hub and a trusted permanent peer holding every
 * piece. `visitors` first-time visitors STAGGER_MS apart, each downloading
 * too when `download`; with `again`, a later visit of the first one;
 * `debug` (the default without a peer) puts the runtime's debug log, which
 * says why each piece went to the origin, in browser.log. Then
 * the peer and the hub stop, and nginx's log is read. Resolves to the
 * results and the figures every scenario records (recorded before any
 * assertion runs, so a failing run still prints them).
 */
async function scenario(t, { name, peer, visitors, download = true, again = false, debug = !peer }) {
  const t0 = Date.now();
  const { root, clipLen, zipSha, madeMs } = await site();
  const cleanups = [];
  const logs = [];
  const logFiles = [];
  const defer = (fn) => cleanups.push(fn);
  const dir = mkdtempSync(join(tmpdir(), `tuber-${name}-`));
  const out = artifactPath(name);
  t.after(async () => {
    for (const fn of cleanups.reverse()) {
      try { await fn(); } catch (e) { console.error(`cleanup: ${e}`); }
    }
    mkdirSync(out, { recursive: true });
    for (const [f, log] of logFiles) writeFileSync(join(out, f), log.toString());
    writeFileSync(join(out, 'browser.log'), logs.join('\n') + '\n');
    for (const f of ['access.log', 'error.log', 'nginx.conf']) {
      if (existsSync(join(dir, f))) copyFileSync(join(dir, f), join(out, `nginx-${f}`));
    }
    rmSync(dir, { recursive: true, force: true });
  });
  chmodSync(dir, 0o755);
  const nginx = await startNginx(dir, root);
  defer(() => nginx.stop());
  const hub = await startHub({ upstream: nginx.url });
  defer(() => hub.stop());
  logFiles.push(['hub.log', hub.log]);
  let holding = null;
  let daemon = null;
  if (peer) {
    // The hub learns the content (its manifest), so it assigns it to the trusted peer.
    let pieces = 0;
    for (const path of [CLIP, ZIP]) pieces += (await hub.announce(path)).pieces;
    daemon = await startPeerDaemon({ hub, invite: await hub.invite(`${name} donor`) });
    defer(() => daemon.stop());
    logFiles.push(['tuber-peer.log', daemon.log]);
    holding = await daemon.waitHolding({ minPieces: pieces });
  }
  const browser = await launchChromium();
  defer(() => browser.close());
  const setupLog = nginx.accessLog();
  const m0 = await hub.metrics();
  const setupMs = Date.now() - t0;

  const results = await Promise.all(Array.from({ length: visitors }, async (_, i) => {
    await sleep(i * STAGGER_MS);
    return visit({ browser, hubUrl: hub.url, label: `visitor${i + 1}`, logs, defer, zipSha, name, download, debug });
  }));
  // A later visit of the first visitor: the Service Worker controls the
  // page from the start, the media is given back at once, while the page
  // still connects to the swarm.
  const later = again ? await visit({
    browser, hubUrl: hub.url, label: 'visitor1-again', logs, defer, zipSha, name, context: results[0].context, download: false,
  }) : null;
  const viewMs = Date.now() - t0 - setupMs;
  // The viewers leave as people do: each closes its tab, its player maybe
  // still loading, and the browser (each visitor's Service Worker with it)
  // runs on for a while; what Tuber sends then, for pages that are gone,
  // counts too.
  const leave0 = Date.now();
  await Promise.all([...results, ...(later ? [later] : [])].map((r) => r.page.close()));
  await sleep(LEAVE_MS);
  const leaveMs = Date.now() - leave0;
  const m1 = await hub.metrics();
  // Everything the origin sent, the hub's reads still running included:
  // stop the browser, the peer and the hub (their connections to nginx end,
  // so nginx logs them), then read the log.
  const stop0 = Date.now();
  await browser.close();
  if (daemon) await daemon.stop();
  await hub.stop();
  await sleep(300);
  const stopMs = Date.now() - stop0;
  const log = nginx.accessLog();
  const viewerLog = log.slice(setupLog.length);
  const setupOrigin = bytesByPath(setupLog);
  const viewerOrigin = bytesByPath(viewerLog);
  const metric = (n) => (m1.get(n) ?? 0) - (m0.get(n) ?? 0);

  // What was viewed (see the top of the file).
  const playerResponses = results.flatMap((r) => r.delivered().filter((x) => !x.tuber));
  const clipUnion = union(playerResponses.map(deliveredInterval).filter(Boolean));
  const wholeClip = clipUnion.merged.length === 1 && clipUnion.merged[0][0] === 0 && clipUnion.merged[0][1] >= clipLen;
  const clipOnce = wholeClip ? clipLen : clipUnion.bytes;
  const outsideTuber = (r) => r.delivered().filter((x) => !x.tuber && !x.sw).reduce((s, x) => s + x.received, 0);
  const viewedClip = results.reduce((s, r) => s + r.afterVideo.bytesFromPeers + r.afterVideo.bytesFromOrigin + outsideTuber(r), 0);
  const zipByTuber = (r) => r.afterDownload.bytesFromPeers + r.afterDownload.bytesFromOrigin
    - r.afterVideo.bytesFromPeers - r.afterVideo.bytesFromOrigin;
  const zipViaTuber = (r) => r.zipResponses.some((x) => x.fromServiceWorker && x.xTuber === 'p2p');
  const viewedZip = download ? results.reduce((s, r) => s + zipByTuber(r) + (zipViaTuber(r) ? 0 : ZIP_LEN), 0) : 0;
  const fromPeers = results.reduce((s, r) => s + r.afterDownload.bytesFromPeers, 0);
  const fromOrigin = results.reduce((s, r) => s + r.afterDownload.bytesFromOrigin, 0);
  const clip = originDetail(viewerLog, CLIP);
  const zip = originDetail(viewerLog, ZIP);
  const clipOrigin = viewerOrigin[CLIP] ?? 0;
  const zipOrigin = viewerOrigin[ZIP] ?? 0;
  const clipOriginAll = clipOrigin + (setupOrigin[CLIP] ?? 0);
  const zipOriginAll = zipOrigin + (setupOrigin[ZIP] ?? 0);
  const tuberFromOrigin = results.reduce((s, r) => s + r.afterVideo.bytesFromOrigin, 0);

  const summary = {
    clipLen, madeMs, setupMs, viewMs, leaveMs, stopMs, holding: holding?.ms ?? null, setupOrigin, viewerOrigin, clip, zip,
    clipUnion, wholeClip, viewedClip, viewedZip, fromPeers, fromOrigin,
    hub: {
      proxied: metric('tuber_origin_distributable_bytes_total'), p2p: metric('tuber_p2p_bytes_total'),
      piecesServed: metric('tuber_pieces_served_total'),
      pieceCache: Object.fromEntries([...m1].filter(([k]) => k.startsWith('tuber_piece_cache') || k.startsWith('tuber_manifest'))),
    },
    results: [...results, ...(later ? [later] : [])].map(({ context: _c, page: _p, delivered: d, ...r }) => ({
      ...r, responses: r.responses.length, sw: r.responses.filter((x) => x.fromServiceWorker).length, delivered: d(),
    })),
  };
  console.log(JSON.stringify(summary, null, 1));
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'summary.json'), JSON.stringify(summary, null, 1));

  const n = `${visitors} viewer${visitors > 1 ? 's' : ''}`;
  recordFigure(`${name} one copy viewed: clip`, clipOnce / MiB, 'MiB', {
    basis: wholeClip ? 'whole file (the players received all of it)' : 'union of the byte ranges delivered to the players',
    unionBytes: clipUnion.bytes, ranges: clipUnion.merged, clipLen,
  });
  recordFigure(`${name} origin copies: clip (${n})`, (peer ? clipOriginAll : clipOrigin) / clipOnce, 'x', {
    originBytes: clipOriginAll, whileViewing: clipOrigin, hubOwn: clip.hubOwn, proxiedForBrowsers: clip.proxied,
    tuberBytesFromOrigin: tuberFromOrigin, oneCopy: clipOnce,
  });
  if (download) {
    recordFigure(`${name} origin copies: zip (${n})`, (peer ? zipOriginAll : zipOrigin) / ZIP_LEN, 'x', {
      originBytes: zipOriginAll, whileViewing: zipOrigin, hubOwn: zip.hubOwn, proxiedForBrowsers: zip.proxied, zipLen: ZIP_LEN,
    });
  }
  recordFigure(`${name} bytes from peers share (${n})`, fromPeers / Math.max(1, fromPeers + fromOrigin), '', { fromPeers, fromOrigin });
  recordFigure(`${name} wall time`, (Date.now() - t0) / 1000, 's', { setupMs, viewMs, leaveMs, stopMs, madeMs });
  return {
    results, later, summary, clipLen, clipOnce, wholeClip, clipOrigin, zipOrigin, viewerLog, setupOrigin, viewerOrigin,
    viewedClip, viewedZip, fromPeers, fromOrigin, proxied: summary.hub.proxied, t0, setupMs, madeMs,
  };
}

/** Every visitor played, landed near 20 s, advanced, and (when it downloaded) got the right file. */
function assertPlayedAndDownloaded(results, download) {
  for (const r of results) {
    const p = r.played;
    assert.equal(p.controlledAtStart, false, `${r.label} is a first visit: ${JSON.stringify(p)}`);
    assert.equal(p.error, null, `${r.label}: no video error`);
    assert.ok(p.before > 1, `${r.label} played: ${JSON.stringify(p)}`);
    assert.ok(p.landed >= 19.5 && p.landed <= 21, `${r.label} landed near 20 s: ${JSON.stringify(p)}`);
    assert.ok(p.after >= p.landed + 2, `${r.label} advanced after the seek: ${JSON.stringify(p)}`);
    assert.equal(r.afterDownload.piecesCorrupt, 0);
    if (!download) continue;
    assert.equal(r.failure, null, `${r.label}: the download finished`);
    assert.ok(r.download.ok, `${r.label}: the downloaded file's SHA-256 is right: ${JSON.stringify(r.download)}`);
    assert.equal(r.download.name, 'pkg.zip');
    assert.equal(new URL(r.pageUrl).pathname, '/', `${r.label}: the page stayed open`);
  }
}

/** The origin's requests for `path`, for a failure message. */
const requestsOf = (s, path) => JSON.stringify(s.viewerLog.filter((e) => e.uri === path));

test('first-time visitors: media in the HTML and a clicked download come from the peer (nginx origin)', { timeout: 150_000 }, async (t) => {
  const s = await scenario(t, { name: 'first-visit', peer: true, visitors: 3, download: true, again: true });
  const { results, later: again } = s;
  const viewed = s.fromPeers + s.fromOrigin;
  const videoViewed = results.reduce((sum, r) => sum + r.afterVideo.bytesFromPeers + r.afterVideo.bytesFromOrigin, 0);
  const againViewed = again.afterVideo.bytesFromPeers + again.afterVideo.bytesFromOrigin;
  recordFigure('first-visit viewed bytes (3 viewers, video + download)', viewed / MiB, 'MiB', { video: videoViewed, download: viewed - videoViewed });
  recordFigure('first-visit bytes from peers (3 viewers)', s.fromPeers / MiB, 'MiB', { share: s.fromPeers / Math.max(1, viewed) });
  recordFigure('first-visit origin bytes while viewing: clip', s.clipOrigin / MiB, 'MiB', { clipLen: s.clipLen });
  recordFigure('first-visit origin bytes while viewing: zip', s.zipOrigin / MiB, 'MiB', { zipLen: ZIP_LEN });
  recordFigure('first-visit origin bytes in all (setup + viewing) / one copy of what was viewed',
    (Object.values(s.setupOrigin).reduce((a, b) => a + b, 0) + s.clipOrigin + s.zipOrigin) / (s.clipOnce + ZIP_LEN), 'x',
    { setup: s.setupOrigin, viewing: s.viewerOrigin });
  recordFigure('first-visit hub-proxied distributable bytes while viewing', s.proxied / MiB, 'MiB');

  assertPlayedAndDownloaded(results, true);
  for (const r of results) {
    assert.ok(r.responses.length > 0 && r.responses.every((x) => x.fromServiceWorker),
      `${r.label}: every response for the clip came from the Service Worker: ${JSON.stringify(r.responses)}`);
    assert.ok(r.responses.some((x) => x.status === 206 && x.range && x.range !== 'bytes=0-'),
      `${r.label}: the seek was a Range request answered 206: ${JSON.stringify(r.responses)}`);
    assert.ok(r.afterDownload.bytesFromPeers - r.afterVideo.bytesFromPeers >= ZIP_LEN,
      `${r.label}: the download came from peers: ${JSON.stringify(r)}`);
  }
  const a = again.played;
  assert.equal(a.controlledAtStart, true, `a later visit is controlled from the start: ${JSON.stringify(a)}`);
  assert.ok(a.before > 1 && a.after >= a.landed + 2 && a.error === null, `the later visit played: ${JSON.stringify(a)}`);
  assert.ok(again.responses.length > 0 && again.responses.every((x) => x.fromServiceWorker),
    `later visit: the clip came from the Service Worker: ${JSON.stringify(again.responses)}`);
  // Its memory cache starts empty (a new page): bytes seen again come from peers, not the origin.
  assert.equal(again.afterVideo.bytesFromOrigin, 0, `later visit: nothing from the origin: ${JSON.stringify(again.afterVideo)}`);
  assert.ok(againViewed > 0);
  assert.ok(s.fromPeers >= 0.98 * viewed, `the viewers' bytes came from peers: ${s.fromPeers} of ${viewed}`);
  // The donor holds everything: no viewer byte of either file from the origin.
  assert.ok(s.clipOrigin + s.zipOrigin <= 0.01 * viewed,
    `nginx sent ${s.clipOrigin} B of the clip and ${s.zipOrigin} B of the zip while viewers watched: ${JSON.stringify(s.viewerLog.filter((e) => e.uri !== '/'))}`);
  assert.ok(s.proxied <= 0.01 * viewed, `the hub proxied ${s.proxied} distributable bytes to the viewers`);
});

test('no permanent peer, three first-time visitors: the origin sends each byte once (≤ 1.1 copies of each file)', { timeout: 150_000 }, async (t) => {
  const s = await scenario(t, { name: 'first-visit-no-peer', peer: false, visitors: 3, download: true });
  recordFigure('first-visit-no-peer origin copies of the file: clip (3 viewers)', s.clipOrigin / s.clipLen, 'x',
    { originBytes: s.clipOrigin, clipLen: s.clipLen, playersReceived: s.clipOnce });
  assertPlayedAndDownloaded(s.results, true);
  assert.ok(s.clipOrigin <= COPIES_MAX * s.clipLen,
    `clip: nginx sent ${s.clipOrigin} B, ${(s.clipOrigin / s.clipLen).toFixed(2)} copies of the ${s.clipLen} B file (the players received ${s.clipOnce} B of it): ${requestsOf(s, CLIP)}`);
  assert.ok(s.zipOrigin <= COPIES_MAX * ZIP_LEN,
    `zip: nginx sent ${s.zipOrigin} B, ${(s.zipOrigin / ZIP_LEN).toFixed(2)} copies of the ${ZIP_LEN} B file: ${requestsOf(s, ZIP)}`);
});

test('one viewer alone, no permanent peer: the origin sends ≤ 1.05 × the bytes viewed', { timeout: 120_000 }, async (t) => {
  const s = await scenario(t, { name: 'first-visit-alone', peer: false, visitors: 1, download: true });
  recordFigure('first-visit-alone origin bytes / bytes viewed: clip', s.clipOrigin / Math.max(1, s.viewedClip), 'x',
    { originBytes: s.clipOrigin, viewed: s.viewedClip });
  recordFigure('first-visit-alone origin bytes / bytes viewed: zip', s.zipOrigin / Math.max(1, s.viewedZip), 'x',
    { originBytes: s.zipOrigin, viewed: s.viewedZip });
  assertPlayedAndDownloaded(s.results, true);
  assert.ok(s.clipOrigin <= ALONE_MAX * s.viewedClip,
    `clip: nginx sent ${s.clipOrigin} B for the ${s.viewedClip} B the page received: ${requestsOf(s, CLIP)}`);
  assert.ok(s.zipOrigin <= ALONE_MAX * s.viewedZip,
    `zip: nginx sent ${s.zipOrigin} B for the ${s.viewedZip} B the page received: ${requestsOf(s, ZIP)}`);
});
