// Early requests on a first visit: a page's own inline script, run while the
// page is parsed (no waiting for anything, as an MSE player's loader does),
// starts an XMLHttpRequest (`responseType = 'arraybuffer'`) for one
// distributable file and a fetch() for another, a fetch() of a
// non-distributable JSON, and aborts a third distributable XHR right after
// sending it. The page is not controlled by the Service Worker then; the
// page script (tuber.js, which the hub puts before the page's first
// script) holds the two media requests until it is, so both are answered
// by the Service Worker with the trusted permanent peer's pieces and the
// right bytes (SHA-256 in the page); the JSON is not held (it completes
// before the hold ends, from the network); the aborted XHR never leaves
// the page (neither the browser nor the upstream sees it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  startUpstream, startHub, startPeerDaemon, launchChromium, newClientContext, watchResponses, clientStats,
  artifactPath, deterministicBytes, sha256Hex, MiB, STOP_MS,
} from './harness.mjs';

const NAME = 'early-requests';
const XHR_PATH = '/media/seg-a.m4s';
const FETCH_PATH = '/media/seg-b.mp4';
const ABORTED_PATH = '/media/seg-c.m4s';
const JSON_PATH = '/api/x.json';
const RESULTS_MS = 15_000;

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>A player's page</title>
<link rel="icon" href="data:,"></head>
<body>
<h1>Player</h1>
<script>
(() => {
  const r = window.__early = {
    controlledAtStart: !!(navigator.serviceWorker && navigator.serviceWorker.controller),
    tuberAtStart: !!window.__tuber,
    results: {},
  };
  const hex = (buf) => [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, '0')).join('');
  const done = (name, v) => {
    r.results[name] = { ...v, at: performance.now(), controlled: !!navigator.serviceWorker.controller };
  };
  const body = async (name, status, buf) => done(name, {
    status, length: buf.byteLength, sha256: hex(await crypto.subtle.digest('SHA-256', buf)),
  });

  const x = new XMLHttpRequest();
  x.open('GET', '${XHR_PATH}');
  x.responseType = 'arraybuffer';
  x.onload = () => body('xhr', x.status, x.response).catch((e) => done('xhr', { error: String(e) }));
  x.onerror = () => done('xhr', { error: 'error event' });
  x.send();

  fetch('${FETCH_PATH}')
    .then(async (res) => body('fetch', res.status, await res.arrayBuffer()))
    .catch((e) => done('fetch', { error: String(e) }));

  fetch('${JSON_PATH}')
    .then(async (res) => done('json', { status: res.status, json: await res.json() }))
    .catch((e) => done('json', { error: String(e) }));

  const y = new XMLHttpRequest();
  y.open('GET', '${ABORTED_PATH}');
  y.onabort = () => { r.abortEvent = true; };
  y.onload = () => done('aborted', { status: y.status });
  y.send();
  y.abort();
})();
</script>
</body></html>
`;

test('a first visit\'s XHR and fetch() at parse time are held until the Service Worker controls the page', { timeout: 120_000 }, async (t) => {
  const cleanups = [];
  const logs = [];
  const logFiles = [];
  t.after(async () => {
    for (const fn of cleanups.reverse()) {
      let timer;
      try {
        await Promise.race([fn(), new Promise((_, reject) => { timer = setTimeout(() => reject(new Error('cleanup timed out')), STOP_MS + 5_000); })]);
      } catch (e) {
        console.error(`cleanup: ${e}`);
      } finally {
        clearTimeout(timer);
      }
    }
    const dir = artifactPath(NAME);
    mkdirSync(dir, { recursive: true });
    for (const [file, log] of logFiles) writeFileSync(join(dir, file), log.toString());
    writeFileSync(join(dir, 'browser.log'), logs.join('\n') + '\n');
  });

  const a = deterministicBytes(MiB + 4321, 0xea71);
  const b = deterministicBytes(MiB + 1234, 0xea72);
  const upstream = await startUpstream({
    '/early.html': { body: Buffer.from(PAGE), type: 'text/html; charset=utf-8' },
    [XHR_PATH]: { body: a, type: 'video/iso.segment' },
    [FETCH_PATH]: { body: b, type: 'video/mp4' },
    [ABORTED_PATH]: { body: deterministicBytes(64 * 1024, 0xea73), type: 'video/iso.segment' },
    [JSON_PATH]: { body: Buffer.from('{"ok":true}'), type: 'application/json' },
  });
  cleanups.push(() => upstream.stop());
  const hub = await startHub({ upstream: upstream.url });
  cleanups.push(() => hub.stop());
  logFiles.push(['hub.log', hub.log]);
  let pieces = 0;
  for (const path of [XHR_PATH, FETCH_PATH]) pieces += (await hub.announce(path)).pieces;
  const peer = await startPeerDaemon({ hub, invite: await hub.invite('early-requests donor') });
  cleanups.push(() => peer.stop());
  logFiles.push(['tuber-peer.log', peer.log]);
  await peer.waitHolding({ minPieces: pieces });
  const browser = await launchChromium();
  cleanups.push(() => browser.close());

  // Where the hub put its page script, for the failure messages.
  const html = await (await fetch(hub.url + '/early.html')).text();
  const tag = html.match(/<script[^>]*tuber\.js[^>]*>/)?.[0] ?? '(no page script)';

  const context = await newClientContext(browser, hub.url, { logs, label: 'visitor' });
  cleanups.push(() => context.close());
  const page = await context.newPage();
  const seen = { xhr: watchResponses(page, XHR_PATH), fetch: watchResponses(page, FETCH_PATH), json: watchResponses(page, JSON_PATH) };
  const abortedRequests = [];
  page.on('request', (r) => { if (new URL(r.url()).pathname === ABORTED_PATH) abortedRequests.push(r.url()); });
  const nav = await page.goto(hub.url + '/early.html');
  assert.equal(nav.status(), 200);
  const early = await page.waitForFunction(
    () => { const r = window.__early?.results; return r && r.xhr && r.fetch && r.json ? window.__early : null; },
    null, { timeout: RESULTS_MS, polling: 50 },
  ).then((h) => h.jsonValue());
  const tuber = await page.evaluate(() => ({ held: window.__tuber?.held ?? null, controlled: !!navigator.serviceWorker.controller }));
  const stats = await clientStats(page);
  // Give a late send of the aborted XHR a moment to show.
  await page.waitForTimeout(500);
  const upstreamAborted = upstream.requests.filter((r) => r.path === ABORTED_PATH).length;
  const report = { tag, early, tuber, stats, seen, abortedRequests, upstreamAborted };
  console.log(JSON.stringify(report));
  logs.push(`report: ${JSON.stringify(report)}`);

  const { xhr, fetch: fetched, json } = early.results;
  assert.equal(early.controlledAtStart, false, 'a first visit: not controlled when the page made its requests');
  assert.equal(early.tuberAtStart, true, `tuber.js ran before the page's first script (the hub's tag: ${tag})`);
  assert.ok(tuber.held && tuber.held.count >= 2, `the two media requests were held: ${JSON.stringify(tuber.held)}`);
  assert.equal(tuber.held.released, 'control', `released on controllerchange: ${JSON.stringify(tuber.held)}`);

  assert.deepEqual([xhr.status, xhr.length, xhr.sha256], [200, a.length, sha256Hex(a)], `XHR bytes: ${JSON.stringify(xhr)}`);
  assert.deepEqual([fetched.status, fetched.length, fetched.sha256], [200, b.length, sha256Hex(b)], `fetch bytes: ${JSON.stringify(fetched)}`);
  assert.ok(seen.xhr.length > 0 && seen.xhr.every((r) => r.fromServiceWorker), `XHR answered by the Service Worker: ${JSON.stringify(seen.xhr)}`);
  assert.ok(seen.fetch.length > 0 && seen.fetch.every((r) => r.fromServiceWorker), `fetch answered by the Service Worker: ${JSON.stringify(seen.fetch)}`);
  assert.ok(stats.bytesFromPeers >= 0.9 * (a.length + b.length), `from the peer: ${JSON.stringify(stats)}`);
  assert.equal(stats.piecesCorrupt, 0);

  assert.equal(early.abortEvent, true, 'the aborted XHR fired abort');
  assert.equal(early.results.aborted, undefined, 'the aborted XHR never loaded');
  assert.deepEqual(abortedRequests, [], 'the browser never sent the aborted XHR');
  assert.equal(upstreamAborted, 0, 'the upstream never saw the aborted XHR');

  assert.deepEqual([json.status, json.json], [200, { ok: true }], JSON.stringify(json));
  assert.ok(json.at < tuber.held.releasedAt, `the JSON was not held: done at ${json.at}, hold ended at ${tuber.held.releasedAt}`);
  assert.ok(seen.json.length === 1 && !seen.json[0].fromServiceWorker, `the JSON from the network: ${JSON.stringify(seen.json)}`);
});
