// Scenario 5: five pages (five browser contexts: five browser peers) fetch
// the same 32 MiB file at once, with one permanent peer. The origin (the
// upstream's own byte counter) serves at most 1.1 × the file size for all
// five together. Prints the offload ratio.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startScenario, bigFile, fetchInPage, delta, recordFigure, mbps, MiB } from './harness.mjs';

const FILE = bigFile(0x5eed_0005);
const PAGES = 5;

test('five pages at once with one permanent peer: the origin serves ≤ 1.1 × the file', { timeout: 180_000 }, async (t) => {
  const env = await startScenario(t, { name: 'five-pages', files: FILE.files });
  const pages = [];
  for (let i = 0; i < PAGES; i++) {
    const { page, ready } = await env.client(`page${i}`);
    assert.equal(ready.controlled, true, `page ${i}: the Service Worker controls it once ready: ${JSON.stringify(ready)}`);
    pages.push(page);
  }

  const before = await env.counters();
  const t0 = Date.now();
  const results = await Promise.all(pages.map((p) => fetchInPage(p, FILE.path, { timeoutMs: 150_000 })));
  const wallMs = Date.now() - t0;
  const d = delta(before, await env.counters());
  const total = PAGES * FILE.len;
  const offload = 1 - d.upstream / total;
  console.log(JSON.stringify({ wallMs, hub: d, pages: results.map((r) => ({ ms: Math.round(r.ms), ...r.after })) }));
  recordFigure('five pages: offload ratio', offload, 'of bytes not from the origin',
    { delivered: total, upstream_bytes: d.upstream, hub_origin_bytes: d.origin, wall_ms: wallMs,
      aggregate_mb_s: Number(mbps(total, wallMs).toFixed(1)) });

  results.forEach((r, i) => {
    assert.equal(r.status, 200, `page ${i}`);
    assert.equal(r.length, FILE.len, `page ${i}`);
    assert.equal(r.sha256, FILE.sha256, `page ${i} got the upstream's bytes`);
  });
  assert.ok(d.upstream <= 1.1 * FILE.len,
    `the upstream served at most 1.1 × ${FILE.len} B = ${(1.1 * FILE.len / MiB).toFixed(1)} MiB for five pages: it served ${(d.upstream / MiB).toFixed(1)} MiB`);
});
