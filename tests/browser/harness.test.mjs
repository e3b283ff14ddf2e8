// The harness itself, without the browser client: the upstream answers
// ranges like a real server, the hub proxies it and injects its page
// script, a trusted tuber-peer daemon gets every piece assigned and holds
// it, Chromium launches with loopback WebRTC allowed, and the hub's Service
// Worker registers and takes control of the page.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startScenario, newClientContext, bigFile, sha256Hex, MiB } from './harness.mjs';

const FILE = bigFile(0x5eed_0000);

test('harness: upstream, hub, trusted daemon holding its assignments, Chromium, Service Worker', { timeout: 120_000 }, async (t) => {
  const env = await startScenario(t, { name: 'harness', files: FILE.files });
  const { upstream, hub } = env;

  // The upstream: Content-Length, ETag, 200, 206, suffix ranges, 416, HEAD.
  const head = await fetch(upstream.url + FILE.path, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(Number(head.headers.get('content-length')), FILE.len);
  assert.match(head.headers.get('etag'), /^"[0-9a-f]+"$/);
  const part = await fetch(upstream.url + FILE.path, { headers: { range: 'bytes=1000-1999' } });
  assert.equal(part.status, 206);
  assert.equal(part.headers.get('content-range'), `bytes 1000-1999/${FILE.len}`);
  assert.deepEqual(Buffer.from(await part.arrayBuffer()), FILE.body.subarray(1000, 2000));
  const tail = await fetch(upstream.url + FILE.path, { headers: { range: 'bytes=-10' } });
  assert.equal(tail.status, 206);
  assert.deepEqual(Buffer.from(await tail.arrayBuffer()), FILE.body.subarray(FILE.len - 10));
  const beyond = await fetch(upstream.url + FILE.path, { headers: { range: `bytes=${FILE.len}-` } });
  assert.equal(beyond.status, 416);
  await beyond.arrayBuffer();

  // Through the hub: the same bytes, and the upstream counted them.
  const before = upstream.bytesServed(FILE.path);
  const whole = Buffer.from(await (await fetch(hub.url + FILE.path)).arrayBuffer());
  assert.equal(sha256Hex(whole), FILE.sha256);
  assert.equal(upstream.bytesServed(FILE.path) - before, FILE.len);
  const m = await hub.metrics();
  assert.ok(m.has('tuber_p2p_bytes_total') && m.has('tuber_origin_distributable_bytes_total') && m.has('tuber_bans'), [...m.keys()].join(' '));

  // The planner knows the content; the trusted daemon holds all of it.
  assert.equal(env.manifests[FILE.path].length, FILE.len);
  assert.equal(env.manifests[FILE.path].pieces, Math.ceil(FILE.len / (256 * 1024)));
  assert.equal(env.peerHolding.assigned_pieces, env.totalPieces, JSON.stringify(env.peerHolding));
  assert.equal(env.peerHolding.assigned_held, env.totalPieces);
  assert.equal(env.peerHolding.phase.trusted, true);
  console.log(`setup ${env.setupMs} ms; daemon held ${env.totalPieces} pieces (${(env.totalPieces / 4).toFixed(1)} MiB) ${env.peerHolding.ms} ms after start`);
  assert.equal(await hub.metric('tuber_trusted_peers'), 1);

  // Chromium: the page has the hub's script, and the hub's Service Worker
  // registers and controls the page (waiting for controllerchange).
  const context = await newClientContext(env.browser, hub.url, { logs: env.logs, label: 'harness' });
  env.defer(() => context.close());
  const page = await context.newPage();
  await page.goto(hub.url + '/');
  assert.equal(await page.locator('script[src="/.tuber/client/tuber.js"]').count(), 1);
  const sw = await page.evaluate(async () => {
    const reg = await Promise.race([
      navigator.serviceWorker.ready,
      new Promise((_, reject) => setTimeout(() => reject(new Error('no active Service Worker within 10 s')), 10_000)),
    ]);
    if (!navigator.serviceWorker.controller) {
      await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no controllerchange within 10 s')), 10_000);
        navigator.serviceWorker.addEventListener('controllerchange', () => { clearTimeout(timer); resolve(); });
      });
    }
    return {
      scope: reg?.scope,
      script: navigator.serviceWorker.controller?.scriptURL,
      rtc: typeof RTCPeerConnection,
    };
  });
  assert.equal(sw.scope, hub.url + '/');
  assert.ok([hub.url + '/.tuber/sw.js', hub.url + '/.tuber/client/sw.js'].includes(sw.script), `the hub's Service Worker controls the page: ${sw.script}`);
  assert.equal(sw.rtc, 'function');
  const perm = await page.evaluate(async () => (await navigator.permissions.query({ name: 'camera' })).state);
  assert.equal(perm, 'granted');
  console.log(`upstream served ${(upstream.bytesServed() / MiB).toFixed(1)} MiB in setup and checks`);
});
