// First visits count (issue #12), with real parts: Debian's nginx serves a
// static site (a page with `<video src=/media/clip.mp4 preload=auto>` and a
// link to a 16 MiB .zip; the clip made here by ffmpeg), the hub is in front
// of it, and a trusted permanent peer holds both files. Three first-time
// visitors, each in its own browser context, a few seconds apart: each opens
// the page and its own code plays the video at once (no waiting for the
// Service Worker, no reload), seeks to 20 s, plays on, and clicks the
// download link. Every video plays, every download is correct, and the
// viewers' bytes come from the peer: nginx's access log (`$body_bytes_sent`,
// the ground truth) shows no viewer byte of either file, and the hub
// proxied none to the viewers.
import { test } from 'node:test';
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
const VISITORS = 3;
const STAGGER_MS = 3000;
const PLAY_MS = 30_000;
const NAME = 'first-visit';

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

/** Body bytes nginx sent per path, over `entries`. */
function bytesByPath(entries) {
  const out = {};
  for (const e of entries) out[e.uri] = (out[e.uri] ?? 0) + e.body_bytes_sent;
  return out;
}

/** One first-time visitor: its own context; plays, seeks, plays on, downloads. */
async function visit({ browser, hubUrl, label, logs, defer, zipSha, context = null, download: doDownload = true }) {
  if (!context) {
    context = await newClientContext(browser, hubUrl, { logs, label });
    defer(() => context.close());
  }
  const page = await context.newPage();
  const responses = watchResponses(page, CLIP);
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
  if (!doDownload) return { label, context, ms: Date.now() - t0, played, responses, afterVideo, afterDownload: afterVideo };
  const [download] = await Promise.all([page.waitForEvent('download', { timeout: 60_000 }), page.click('#pkg')]);
  const file = await download.path();
  const failure = await download.failure();
  const sha = file ? sha256Hex(readFileSync(file)) : null;
  const afterDownload = await clientStats(page);
  await page.screenshot({ path: artifactPath(`${NAME}/${label}.png`) });
  return {
    label, context, ms: Date.now() - t0, played, responses, afterVideo, afterDownload, failure,
    download: { ok: sha === zipSha, name: download.suggestedFilename(), url: download.url() }, pageUrl: page.url(),
  };
}

test('first-time visitors: media in the HTML and a clicked download come from the peer (nginx origin)', { timeout: 150_000 }, async (t) => {
  for (const bin of [NGINX_BIN, FFMPEG_BIN]) {
    if (!existsSync(bin)) throw new Error(`${bin} does not exist: apt-get install nginx-light ffmpeg`);
  }
  const t0 = Date.now();
  const cleanups = [];
  const logs = [];
  const logFiles = [];
  const defer = (fn) => cleanups.push(fn);
  const dir = mkdtempSync(join(tmpdir(), 'tuber-first-visit-'));
  t.after(async () => {
    for (const fn of cleanups.reverse()) {
      try { await fn(); } catch (e) { console.error(`cleanup: ${e}`); }
    }
    const out = artifactPath(NAME);
    mkdirSync(out, { recursive: true });
    for (const [f, log] of logFiles) writeFileSync(join(out, f), log.toString());
    writeFileSync(join(out, 'browser.log'), logs.join('\n') + '\n');
    for (const f of ['access.log', 'error.log', 'nginx.conf']) {
      if (existsSync(join(dir, f))) copyFileSync(join(dir, f), join(out, `nginx-${f}`));
    }
    rmSync(dir, { recursive: true, force: true });
  });
  // nginx's workers may run as another user when it starts as root.
  chmodSync(dir, 0o755);
  const root = join(dir, 'site');
  mkdirSync(join(root, 'media'), { recursive: true });
  mkdirSync(join(root, 'files'), { recursive: true });
  writeFileSync(join(root, 'index.html'), PAGE);
  const zip = deterministicBytes(ZIP_LEN, 12);
  writeFileSync(join(root, ZIP), zip);
  const zipSha = sha256Hex(zip);
  await makeClip(join(root, CLIP));
  const clipLen = readFileSync(join(root, CLIP)).length;
  const madeMs = Date.now() - t0;

  const nginx = await startNginx(dir, root);
  defer(() => nginx.stop());
  const hub = await startHub({ upstream: nginx.url });
  defer(() => hub.stop());
  logFiles.push(['hub.log', hub.log]);
  // The hub learns the content (its manifest), so it assigns it to the trusted peer.
  let pieces = 0;
  for (const path of [CLIP, ZIP]) pieces += (await hub.announce(path)).pieces;
  const peer = await startPeerDaemon({ hub, invite: await hub.invite('first-visit donor') });
  defer(() => peer.stop());
  logFiles.push(['tuber-peer.log', peer.log]);
  const holding = await peer.waitHolding({ minPieces: pieces });
  const browser = await launchChromium();
  defer(() => browser.close());
  const setupLog = nginx.accessLog();
  const setupOrigin = bytesByPath(setupLog);
  const m0 = await hub.metrics();
  const setupMs = Date.now() - t0;

  const results = await Promise.all(Array.from({ length: VISITORS }, async (_, i) => {
    await sleep(i * STAGGER_MS);
    return visit({ browser, hubUrl: hub.url, label: `visitor${i + 1}`, logs, defer, zipSha });
  }));

  // A later visit of the first visitor: the Service Worker controls the
  // page from the start, the media is given back at once, while the page
  // still connects to the swarm.
  const again = await visit({
    browser, hubUrl: hub.url, label: 'visitor1-again', logs, defer, zipSha, context: results[0].context, download: false,
  });
  const m1 = await hub.metrics();
  const viewerLog = nginx.accessLog().slice(setupLog.length);
  const viewerOrigin = bytesByPath(viewerLog);
  const metric = (name) => (m1.get(name) ?? 0) - (m0.get(name) ?? 0);
  const proxied = metric('tuber_origin_distributable_bytes_total');
  const p2pHub = metric('tuber_p2p_bytes_total');
  const fromPeers = results.reduce((s, r) => s + r.afterDownload.bytesFromPeers, 0);
  const fromOrigin = results.reduce((s, r) => s + r.afterDownload.bytesFromOrigin, 0);
  const videoViewed = results.reduce((s, r) => s + r.afterVideo.bytesFromPeers + r.afterVideo.bytesFromOrigin, 0);
  const viewed = fromPeers + fromOrigin;
  const againViewed = again.afterVideo.bytesFromPeers + again.afterVideo.bytesFromOrigin;
  console.log(JSON.stringify({
    clipLen, madeMs, setupMs, holding: holding.ms, setupOrigin, viewerOrigin, proxied, p2pHub,
    results: [...results, again].map(({ context: _c, ...r }) => ({
      ...r, responses: r.responses.length, sw: r.responses.filter((x) => x.fromServiceWorker).length,
    })),
  }, null, 1));
  for (const { context: _c, ...r } of [...results, again]) {
    writeFileSync(artifactPath(`${NAME}/${r.label}.json`), JSON.stringify(r, null, 1));
  }

  const clipOrigin = viewerOrigin[CLIP] ?? 0;
  const zipOrigin = viewerOrigin[ZIP] ?? 0;
  recordFigure('first-visit viewed bytes (3 viewers, video + download)', viewed / MiB, 'MiB', { video: videoViewed, download: viewed - videoViewed });
  recordFigure('first-visit bytes from peers (3 viewers)', fromPeers / MiB, 'MiB', { share: fromPeers / Math.max(1, viewed) });
  recordFigure('first-visit origin bytes while viewing: clip', clipOrigin / MiB, 'MiB', { clipLen });
  recordFigure('first-visit origin bytes while viewing: zip', zipOrigin / MiB, 'MiB', { zipLen: ZIP_LEN });
  recordFigure('first-visit origin bytes in all (setup + viewing) / one copy of what was viewed',
    (Object.values(setupOrigin).reduce((a, b) => a + b, 0) + clipOrigin + zipOrigin) / (clipLen + ZIP_LEN), 'x',
    { setup: setupOrigin, viewing: viewerOrigin });
  recordFigure('first-visit hub-proxied distributable bytes while viewing', proxied / MiB, 'MiB');
  recordFigure('first-visit wall time', (Date.now() - t0) / 1000, 's', { setupMs, madeMs });

  for (const r of results) {
    const p = r.played;
    assert.equal(p.controlledAtStart, false, `${r.label} is a first visit: ${JSON.stringify(p)}`);
    assert.equal(p.error, null, `${r.label}: no video error`);
    assert.ok(p.before > 1, `${r.label} played: ${JSON.stringify(p)}`);
    assert.ok(p.landed >= 19.5 && p.landed <= 21, `${r.label} landed near 20 s: ${JSON.stringify(p)}`);
    assert.ok(p.after >= p.landed + 2, `${r.label} advanced after the seek: ${JSON.stringify(p)}`);
    assert.ok(r.responses.length > 0 && r.responses.every((x) => x.fromServiceWorker),
      `${r.label}: every response for the clip came from the Service Worker: ${JSON.stringify(r.responses)}`);
    assert.ok(r.responses.some((x) => x.status === 206 && x.range && x.range !== 'bytes=0-'),
      `${r.label}: the seek was a Range request answered 206: ${JSON.stringify(r.responses)}`);
    assert.equal(r.failure, null, `${r.label}: the download finished`);
    assert.ok(r.download.ok, `${r.label}: the downloaded file's SHA-256 is right: ${JSON.stringify(r.download)}`);
    assert.equal(r.download.name, 'pkg.zip');
    assert.equal(new URL(r.pageUrl).pathname, '/', `${r.label}: the page stayed open`);
    assert.ok(r.afterDownload.bytesFromPeers - r.afterVideo.bytesFromPeers >= ZIP_LEN,
      `${r.label}: the download came from peers: ${JSON.stringify(r)}`);
    assert.equal(r.afterDownload.piecesCorrupt, 0);
  }
  const a = again.played;
  assert.equal(a.controlledAtStart, true, `a later visit is controlled from the start: ${JSON.stringify(a)}`);
  assert.ok(a.before > 1 && a.after >= a.landed + 2 && a.error === null, `the later visit played: ${JSON.stringify(a)}`);
  assert.ok(again.responses.length > 0 && again.responses.every((x) => x.fromServiceWorker),
    `later visit: the clip came from the Service Worker: ${JSON.stringify(again.responses)}`);
  // Its memory cache starts empty (a new page): bytes seen again come from peers, not the origin.
  assert.equal(again.afterVideo.bytesFromOrigin, 0, `later visit: nothing from the origin: ${JSON.stringify(again.afterVideo)}`);
  assert.ok(againViewed > 0);
  assert.ok(fromPeers >= 0.98 * viewed, `the viewers' bytes came from peers: ${fromPeers} of ${viewed}`);
  // The donor holds everything: no viewer byte of either file from the origin.
  assert.ok(clipOrigin + zipOrigin <= 0.01 * viewed,
    `nginx sent ${clipOrigin} B of the clip and ${zipOrigin} B of the zip while viewers watched: ${JSON.stringify(viewerLog.filter((e) => e.uri !== '/'))}`);
  assert.ok(proxied <= 0.01 * viewed, `the hub proxied ${proxied} distributable bytes to the viewers`);
});
