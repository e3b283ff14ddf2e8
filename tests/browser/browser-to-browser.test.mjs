// Scenario 7: Chromium → Chromium. With no permanent peer running, page A
// (one browser context) downloads the file (from the origin) and keeps its
// pieces; page B (another context of the same browser) then downloads it,
// most bytes from page A. Prints the throughput Chromium → Chromium, the
// figure the issue wants next to permanent peer → Chromium.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startScenario, bigFile, fetchInPage, delta, recordFigure, mbps, sleep, MiB } from './harness.mjs';

const FILE = bigFile(0x5eed_0007);
/** A announces what it holds as it verifies pieces; give the last `have` a moment to reach the planner. */
const HAVE_SETTLE_MS = 1_000;

test('Chromium → Chromium: page B gets most of the file from page A', { timeout: 150_000 }, async (t) => {
  const env = await startScenario(t, { name: 'browser-to-browser', files: FILE.files, daemon: false });
  const a = await env.client('A');
  assert.equal(a.ready.controlled, true, `A: the Service Worker controls it once ready: ${JSON.stringify(a.ready)}`);
  const gotA = await fetchInPage(a.page, FILE.path, { timeoutMs: 90_000 });
  assert.equal(gotA.sha256, FILE.sha256, 'A got the upstream\'s bytes');
  await sleep(HAVE_SETTLE_MS);

  const b = await env.client('B');
  assert.equal(b.ready.controlled, true, `B: the Service Worker controls it once ready: ${JSON.stringify(b.ready)}`);
  const before = await env.counters();
  const gotB = await fetchInPage(b.page, FILE.path, { timeoutMs: 90_000 });
  const d = delta(before, await env.counters());
  const statsA = await a.page.evaluate(() => window.__tuber.stats());
  const fromPeers = gotB.after.bytesFromPeers - (gotB.before?.bytesFromPeers ?? 0);
  console.log(JSON.stringify({ a: { ms: Math.round(gotA.ms), ...statsA }, b: { ms: Math.round(gotB.ms), ...gotB.after }, hub: d }));
  recordFigure('Chromium → Chromium', mbps(FILE.len, gotB.ms), 'MB/s',
    { bytes: FILE.len, ms: Math.round(gotB.ms), from_peers: fromPeers, from_origin: gotB.after.bytesFromOrigin, a_served: statsA.servedBytes });

  assert.equal(gotB.status, 200);
  assert.equal(gotB.length, FILE.len);
  assert.equal(gotB.sha256, FILE.sha256, 'B got the upstream\'s bytes');
  assert.ok(fromPeers > 0.5 * FILE.len, `most of B's bytes came from peers (only A is one): ${(fromPeers / MiB).toFixed(1)} MiB`);
  assert.ok(statsA.servedBytes > 0.5 * FILE.len, `A served most of the file: ${JSON.stringify(statsA)}`);
  assert.ok(d.origin < 0.5 * FILE.len, `the origin served less than half for B: +${d.origin} B`);
});
