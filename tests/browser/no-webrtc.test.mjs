// Scenario 4: RTCPeerConnection removed from the page before any script
// runs. `ready` still resolves (degraded), and every byte of a 32 MiB
// download arrives, from the origin, although a trusted peer holds it all.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startScenario, bigFile, fetchInPage, delta } from './harness.mjs';

const FILE = bigFile(0x5eed_0004);

test('without RTCPeerConnection every byte still arrives, from the origin', { timeout: 120_000 }, async (t) => {
  const env = await startScenario(t, { name: 'no-webrtc', files: FILE.files });
  const { page, ready } = await env.client('no-webrtc', { noWebRTC: true });
  assert.equal(await page.evaluate(() => typeof window.RTCPeerConnection), 'undefined');
  assert.equal(ready.value?.degraded, true, `ready says degraded without WebRTC: ${JSON.stringify(ready)}`);

  const before = await env.counters();
  const got = await fetchInPage(page, FILE.path, { timeoutMs: 60_000 });
  const d = delta(before, await env.counters());
  console.log(JSON.stringify({ ready, ms: Math.round(got.ms), page: got.after, hub: d }));

  assert.equal(got.status, 200);
  assert.equal(got.length, FILE.len);
  assert.equal(got.sha256, FILE.sha256, 'the page got the upstream\'s bytes');
  // The hub read the file once for its manifest: it serves it from its
  // pieces (or, past its cache, proxies it from the origin).
  assert.ok(d.origin + d.fromPieces >= FILE.len,
    `the hub served the whole file: +${d.origin} B proxied from the origin, +${d.fromPieces} B from its pieces`);
  assert.equal(d.p2p, 0, 'no peer-to-peer bytes');
  if (got.after) assert.equal(got.after.bytesFromPeers, 0, JSON.stringify(got.after));
});
