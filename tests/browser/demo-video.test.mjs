// `tuber-hub demo` serves the demo site through its proxy, and the video
// plays and seeks in real headless Chromium (206 responses for its ranges).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startDemoHub, launchChromium, artifactPath } from './harness.mjs';

const PLAY_MS = 20_000;

test('the demo video plays and seeks through the hub', async (t) => {
  const hub = await startDemoHub();
  t.after(hub.stop);
  const browser = await launchChromium();
  t.after(() => browser.close());
  const page = await browser.newPage();

  const statuses = [];
  page.on('response', (r) => {
    if (r.url().endsWith('/media/clip.webm')) statuses.push(r.status());
  });
  const response = await page.goto(hub.url + '/');
  assert.equal(response.status(), 200);
  // The hub injected its page script into the site's HTML.
  assert.equal(await page.locator('script[src="/.tuber/client/tuber.js"]').count(), 1);

  const played = await page.evaluate(async (timeoutMs) => {
    const v = document.getElementById('video');
    v.muted = true;
    const until = (cond, what) => new Promise((resolve, reject) => {
      const t0 = performance.now();
      const tick = () => {
        if (cond()) return resolve();
        if (performance.now() - t0 > timeoutMs) return reject(new Error(`timed out waiting for ${what}; error=${v.error?.message}`));
        setTimeout(tick, 50);
      };
      tick();
    });
    await v.play();
    await until(() => v.currentTime > 1, 'playback past 1 s');
    const before = v.currentTime;
    v.currentTime = 20;
    await until(() => !v.seeking && v.currentTime >= 20.5, 'playback after seeking to 20 s');
    return { before, after: v.currentTime, duration: v.duration };
  }, PLAY_MS);

  await page.screenshot({ path: artifactPath('demo-video.png') });
  assert.ok(played.before > 1, JSON.stringify(played));
  assert.ok(played.after >= 20.5, JSON.stringify(played));
  assert.ok(Math.abs(played.duration - 30) < 1, JSON.stringify(played));
  assert.ok(statuses.includes(206), `range responses: ${statuses}`);
});
