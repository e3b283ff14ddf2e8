// Scenario 2: a <video> plays the demo video through the Service Worker and
// seeks: the player's range requests are answered by the Service Worker
// with 206, playback passes 1 s, and after a seek to 20 s currentTime
// advances again. The video is distributable, so its bytes come from the
// trusted permanent peer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startScenario, watchResponses, clientStats, artifactPath } from './harness.mjs';

const VIDEO = '/media/clip.webm';
const PLAY_MS = 20_000;

test('a <video> plays and seeks through the Service Worker (206)', { timeout: 120_000 }, async (t) => {
  const env = await startScenario(t, { name: 'sw-video' });
  const { page, ready } = await env.client('player');
  assert.equal(ready.controlled, true, `the Service Worker controls the page once ready: ${JSON.stringify(ready)}`);
  assert.notEqual(ready.value?.degraded, true, `not degraded: ${JSON.stringify(ready)}`);

  const responses = watchResponses(page, VIDEO);
  const played = await page.evaluate(async ({ src, timeoutMs }) => {
    const v = document.getElementById('video');
    const until = (cond, what) => new Promise((resolve, reject) => {
      const t0 = performance.now();
      const tick = () => {
        if (cond()) return resolve(performance.now() - t0);
        if (performance.now() - t0 > timeoutMs) {
          return reject(new Error(`timed out waiting for ${what}: currentTime=${v.currentTime} readyState=${v.readyState} networkState=${v.networkState} error=${v.error?.code}:${v.error?.message}`));
        }
        setTimeout(tick, 50);
      };
      tick();
    });
    v.muted = true;
    v.src = src;
    await v.play();
    const startMs = await until(() => v.currentTime > 1, 'playback past 1 s');
    const before = v.currentTime;
    v.currentTime = 20;
    await until(() => !v.seeking, 'the seek to 20 s');
    const landed = v.currentTime;
    await until(() => v.currentTime >= landed + 0.5, 'playback to advance after the seek');
    return { startMs, before, landed, after: v.currentTime, duration: v.duration };
  }, { src: VIDEO, timeoutMs: PLAY_MS });
  const stats = await clientStats(page);
  await page.screenshot({ path: artifactPath('sw-video/page.png') });
  console.log(JSON.stringify({ played, responses, stats }));

  assert.ok(played.before > 1, JSON.stringify(played));
  assert.ok(played.landed >= 19.5 && played.landed <= 21, `landed near 20 s: ${JSON.stringify(played)}`);
  assert.ok(played.after >= played.landed + 0.5, JSON.stringify(played));
  assert.ok(Math.abs(played.duration - 30) < 1, JSON.stringify(played));
  const fromSw = responses.filter((r) => r.fromServiceWorker);
  assert.ok(fromSw.some((r) => r.status === 206), `206 from the Service Worker: ${JSON.stringify(responses)}`);
  assert.ok(stats.bytesFromPeers > 0, `the video came through the peers: ${JSON.stringify(stats)}`);
  assert.equal(stats.piecesCorrupt, 0);
});
