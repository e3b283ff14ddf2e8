// Scenario 1: a page downloads a file of at least 32 MiB through the Service
// Worker. The bytes equal the upstream's (SHA-256 computed in the page with
// crypto.subtle), and the hub's metrics show at least 90% of them came from
// peers (here: the trusted tuber-peer daemon), not from the origin.
// Prints the throughput permanent peer → Chromium.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  startScenario, bigFile, artifactPath, fetchInPage, watchResponses, delta, recordFigure, sleep, mbps, MiB,
} from './harness.mjs';

const FILE = bigFile(0x5eed_0001);
/** Peers report their transfers to the hub periodically: how long to wait for the report. */
const REPORT_MS = 15_000;

test('a 32 MiB download through the Service Worker comes ≥ 90% from the permanent peer', { timeout: 120_000 }, async (t) => {
  const env = await startScenario(t, { name: 'p2p-download', files: FILE.files });
  const { page, ready } = await env.client('downloader');
  assert.equal(ready.controlled, true, `the Service Worker controls the page once ready: ${JSON.stringify(ready)}`);
  assert.notEqual(ready.value?.degraded, true, `not degraded: ${JSON.stringify(ready)}`);

  const responses = watchResponses(page, FILE.path);
  const before = await env.counters();
  const got = await fetchInPage(page, FILE.path, { timeoutMs: 90_000 });
  assert.equal(got.status, 200);
  assert.equal(got.length, FILE.len);
  assert.equal(got.sha256, FILE.sha256, 'the page got the upstream\'s bytes');
  assert.ok(responses.some((r) => r.fromServiceWorker), `answered by the Service Worker: ${JSON.stringify(responses)}`);

  // The hub learns p2p bytes from the peers' reports, which may lag.
  let d;
  const t0 = Date.now();
  do {
    d = delta(before, await env.counters());
    if (d.p2p >= 0.9 * FILE.len) break;
    await sleep(250);
  } while (Date.now() - t0 < REPORT_MS);
  const fromPeers = got.after.bytesFromPeers - (got.before?.bytesFromPeers ?? 0);
  const figures = {
    ms: Math.round(got.ms),
    hub: d,
    page: got.after,
    upstreamBytes: d.upstream,
  };
  console.log(JSON.stringify(figures));
  await page.screenshot({ path: artifactPath('p2p-download/page.png') });
  recordFigure('permanent peer → Chromium', mbps(FILE.len, got.ms), 'MB/s',
    { bytes: FILE.len, ms: Math.round(got.ms), from_peers: fromPeers, from_origin: got.after.bytesFromOrigin });

  assert.ok(d.origin <= 0.1 * FILE.len,
    `the origin served at most 10% (${(0.1 * FILE.len / MiB).toFixed(1)} MiB): hub origin counter +${d.origin} B`);
  assert.ok(d.p2p >= 0.9 * FILE.len,
    `peers reported at least 90% (${(0.9 * FILE.len / MiB).toFixed(1)} MiB) from peers: tuber_p2p_bytes_total +${d.p2p} B`);
  assert.ok(fromPeers >= 0.9 * FILE.len, `the page counted ≥ 90% from peers: ${JSON.stringify(got.after)}`);
  assert.equal(got.after.piecesCorrupt, 0);
});
