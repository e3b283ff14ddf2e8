// Scenario 6: a trusted peer that serves corrupted data (peer-process with
// the test-only --corrupt switch, joined with its own invite, seeded, and
// named by the hub as a provider of every piece) next to the honest
// permanent peer. The browser detects the bad pieces (stats.piecesCorrupt),
// still ends with the upstream's bytes from another source, and the hub
// bans the liar.
//
// Every reporter here is one browser, so the hub runs with ban_threshold = 1
// (and ban_reporters = "distinct_peers", as every client is on 127.0.0.1):
// one browser's report is enough to ban. The default threshold of 3 groups
// is the planner's own tests' business (tests/tests/peer_liar_banned.rs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startScenario, startPeerProcess, bigFile, fetchInPage, delta, sleep } from './harness.mjs';

const FILE = bigFile(0x5eed_0006);
const BAN_MS = 15_000;

test('a lying peer is detected by the browser, routed around, and banned', { timeout: 180_000 }, async (t) => {
  const env = await startScenario(t, { name: 'liar-banned', files: FILE.files, hubConfig: { planner: { ban_threshold: 1 } } });
  const liar = await startPeerProcess({
    hub: env.hub, path: FILE.path, invite: await env.hub.invite('liar'), corrupt: true,
  });
  env.defer(() => liar.stop());
  env.saveLog('liar.log', liar.log);
  assert.equal(await env.hub.metric('tuber_trusted_peers'), 2, 'the liar is trusted too');

  const { page, ready } = await env.client('victim');
  assert.equal(ready.controlled, true, `the Service Worker controls the page once ready: ${JSON.stringify(ready)}`);
  const before = await env.counters();
  const got = await fetchInPage(page, FILE.path, { timeoutMs: 120_000 });
  let d = delta(before, await env.counters());
  const t0 = Date.now();
  while (d.bans < 1 && Date.now() - t0 < BAN_MS) {
    await sleep(200);
    d = delta(before, await env.counters());
  }
  console.log(JSON.stringify({ liar: liar.id, ms: Math.round(got.ms), page: got.after, hub: d, banMs: Date.now() - t0 }));

  assert.equal(got.status, 200);
  assert.equal(got.length, FILE.len);
  assert.equal(got.sha256, FILE.sha256, 'the page ended with the upstream\'s bytes');
  assert.ok(got.after.piecesCorrupt > 0, `the page detected corrupt pieces: ${JSON.stringify(got.after)}`);
  assert.ok(d.bans >= 1, `the hub banned the liar within ${BAN_MS} ms of the download's end (tuber_bans +${d.bans})`);
  assert.match(liar.log.toString(), /banned/i, 'the liar was told it is banned');
  const honest = await env.peer.swarm();
  assert.deepEqual(honest.swarm.phase, { state: 'joined', trusted: true }, 'the honest peer is not banned');
});
