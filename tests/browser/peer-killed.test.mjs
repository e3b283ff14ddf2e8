// Scenario 3: the permanent peer is killed (SIGKILL) in the middle of a
// page's download. The download still completes with the upstream's bytes,
// and what the peer did not deliver comes from the hub (its pieces, which
// it read from the origin once for the manifest).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startScenario, bigFile, fetchInPage, delta, MiB } from './harness.mjs';

const FILE = bigFile(0x5eed_0003);
/** Kill the peer once the page has this much from peers. */
const KILL_AT = Math.floor(FILE.len / 4);

test('the permanent peer killed mid-download: the download completes, from the origin', { timeout: 120_000 }, async (t) => {
  const env = await startScenario(t, { name: 'peer-killed', files: FILE.files });
  const { page, ready } = await env.client('downloader');
  assert.equal(ready.controlled, true, `the Service Worker controls the page once ready: ${JSON.stringify(ready)}`);

  const before = await env.counters();
  let atKill = null;
  const got = await fetchInPage(page, FILE.path, {
    timeoutMs: 90_000,
    onProgress: async (stats) => {
      if (atKill || !stats || stats.bytesFromPeers < KILL_AT) return false;
      atKill = { stats, at: Date.now() };
      await env.peer.kill();
      atKill.killedMs = Date.now() - atKill.at;
      return true;
    },
  });
  const d = delta(before, await env.counters());
  console.log(JSON.stringify({ atKill, final: got.after, ms: Math.round(got.ms), hub: d }));

  assert.ok(atKill, `the peer was killed mid-download (the page had ${got.after?.bytesFromPeers} B from peers at the end; kill threshold ${KILL_AT} B)`);
  assert.ok(atKill.stats.bytesFromPeers < FILE.len, `the page was mid-download when the peer died: ${JSON.stringify(atKill)}`);
  assert.equal(got.status, 200);
  assert.equal(got.length, FILE.len);
  assert.equal(got.sha256, FILE.sha256, 'the page got the upstream\'s bytes');
  const fromPeers = got.after.bytesFromPeers - (got.before?.bytesFromPeers ?? 0);
  const rest = FILE.len - fromPeers;
  assert.ok(rest > 0, `part of the file came after the kill: ${JSON.stringify(got.after)}`);
  assert.ok(got.after.bytesFromOrigin >= rest,
    `the page fetched the rest (${rest} B) from the origin: ${JSON.stringify(got.after)}`);
  // The hub hashed the file for its manifest: the rest comes from its pieces
  // (or, past its cache, the origin), never from nowhere.
  assert.ok(d.origin + d.fromPieces >= rest,
    `the hub served the rest: +${d.origin} B proxied from the origin, +${d.fromPieces} B from its pieces, rest ${rest} B`);
  console.log(`killed after ${(atKill.stats.bytesFromPeers / MiB).toFixed(1)} MiB from the peer; ${(rest / MiB).toFixed(1)} MiB from the origin afterwards`);
});
