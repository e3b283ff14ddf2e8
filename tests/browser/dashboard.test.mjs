// The dashboard (ui/) in headless Chromium, served by a real tuber-peer
// daemon joined and trusted in a real hub's swarm, with traffic flowing
// (the daemon prefetches its assignments, then a browser page downloads
// the file through the hub, partly from the daemon): the live graph gets a
// rate point every second, the swarm shows joined and trusted, cached
// content appears, joining a second URL through the form lists it, and the
// upload cap set in Settings reaches /api/settings. Screenshots go to
// test-artifacts/dashboard/.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  startScenario, artifactPath, deterministicBytes, sha256Hex, fetchInPage, waitFor, MiB,
} from './harness.mjs';

const PATH = '/files/dashboard-8MiB.bin';
const BODY = deterministicBytes(8 * MiB + 321, 0xda5b_0001);
const FILES = { [PATH]: { body: BODY, type: 'application/octet-stream' } };
const UI_MS = 20_000;

test('dashboard: live graph, swarm joined and trusted, cache, join by URL, settings', { timeout: 180_000 }, async (t) => {
  const env = await startScenario(t, { name: 'dashboard', files: FILES });
  const { hub, peer } = env;
  const shots = artifactPath('dashboard');
  mkdirSync(shots, { recursive: true });
  const shot = (page, name) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });

  // The daemon printed its dashboard address after the API line.
  const log = peer.log.toString();
  const apiAt = log.indexOf('tuber-peer api on ');
  const m = /tuber-peer dashboard on (http:\/\/\S+\/#token=([0-9a-f]+))/.exec(log);
  assert.ok(apiAt >= 0 && m && log.indexOf(m[0]) > apiAt, `the dashboard line follows the api line:\n${log}`);
  const token = readFileSync(join(peer.data, 'api.token'), 'utf8').trim();
  assert.equal(m[2], token);
  const dashboardUrl = m[1];
  const apiGet = async (path) => {
    const res = await fetch(peer.api + path, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200, path);
    return res.json();
  };

  // Static files: no token, a strict CSP, right MIME types.
  const index = await fetch(peer.api + '/');
  assert.equal(index.status, 200);
  assert.match(index.headers.get('content-type'), /^text\/html/);
  assert.equal(index.headers.get('content-security-policy'),
    "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'");
  await index.text();
  for (const [path, type] of [['/ui/app.js', /javascript/], ['/ui/api.js', /javascript/], ['/ui/style.css', /^text\/css/], ['/ui/vendor/uPlot.esm.js', /javascript/]]) {
    const res = await fetch(peer.api + path);
    assert.equal(res.status, 200, path);
    assert.match(res.headers.get('content-type'), type, path);
    await res.arrayBuffer();
  }

  const context = await env.browser.newContext({ viewport: { width: 1024, height: 700 } });
  env.defer(() => context.close());
  const page = await context.newPage();
  const problems = [];
  page.on('console', (msg) => {
    env.logs.push(`[dashboard] ${msg.type()}: ${msg.text()}`);
    if (msg.type() === 'error') problems.push(msg.text());
  });
  page.on('pageerror', (e) => { problems.push(String(e)); env.logs.push(`[dashboard] pageerror: ${e}`); });
  await page.goto(dashboardUrl);
  await page.waitForSelector('body[data-ready="true"]', { timeout: UI_MS });
  assert.equal(new URL(page.url()).hash, '', 'the token is removed from the address bar');
  assert.equal(await page.evaluate(() => sessionStorage.getItem('tuber.api.token')), token);

  // The live graph: a rate point a second from the `rates` events.
  const points = () => page.getAttribute('#graph', 'data-rate-points').then(Number);
  await waitFor('3 rate points on the graph', async () => (await points()) >= 3, UI_MS);
  const p1 = await points();
  await waitFor('the graph to keep moving', async () => (await points()) >= p1 + 2, UI_MS);
  assert.equal(await page.locator('#graph canvas').count(), 1, 'uPlot drew a canvas');

  // Traffic: a browser page downloads the file through the hub; the
  // trusted daemon holds every piece and uploads to it.
  const before = (await apiGet('/api/status')).total.up;
  const { page: client } = await env.client('downloader');
  const got = await fetchInPage(client, PATH, { timeoutMs: 90_000 });
  assert.equal(got.status, 200);
  assert.equal(got.sha256, sha256Hex(BODY));
  const after = (await apiGet('/api/status')).total.up;
  env.logs.push(`daemon uploaded ${after - before} B during the download`);
  if (after > before) {
    await waitFor('an upload rate on the graph', async () => Number(await page.getAttribute('#graph', 'data-peak-up')) > 0, UI_MS);
  }
  await shot(page, '1-overview');

  // Swarms: the hub's swarm is joined and trusted.
  await page.getByRole('button', { name: 'Swarms', exact: true }).click();
  const row = page.locator(`#swarm-table tr[data-url^="${hub.url}"]`);
  await waitFor('the swarm joined and trusted', async () =>
    (await row.getAttribute('data-state').catch(() => null)) === 'joined'
      && (await row.getAttribute('data-trusted')) === 'true', UI_MS);
  assert.match(await row.innerText(), /trusted/);

  // Join a second URL by keyboard through the form: it is listed (nothing
  // answers there, so it connects or retries).
  const second = 'http://127.0.0.1:9/';
  await page.locator('#join-url').focus();
  await page.keyboard.type(second);
  await page.keyboard.press('Enter');
  const row2 = page.locator(`#swarm-table tr[data-url^="http://127.0.0.1:9"]`);
  await row2.waitFor({ timeout: UI_MS });
  const state2 = await row2.getAttribute('data-state');
  assert.ok(['connecting', 'retrying', 'error'].includes(state2), state2);
  assert.ok((await apiGet('/api/swarms')).some((s) => s.url.startsWith('http://127.0.0.1:9')));
  await shot(page, '2-swarms');

  // Peers.
  await page.getByRole('button', { name: 'Peers', exact: true }).click();
  await page.locator('#view-peers').waitFor();
  await shot(page, '3-peers');

  // Cache: the file the daemon holds.
  await page.getByRole('button', { name: 'Cache', exact: true }).click();
  const cachedRow = page.locator(`#cache-table tr[data-resource="${PATH}"]`);
  await cachedRow.waitFor({ timeout: UI_MS });
  assert.match(await cachedRow.innerText(), /yes/, 'assigned');
  await shot(page, '4-cache');

  // Settings: the upload cap, through the form.
  await page.getByRole('button', { name: 'Settings', exact: true }).click();
  await page.locator('#set-up').fill('1.5 MB/s');
  await page.getByRole('button', { name: 'Save settings' }).click();
  await waitFor('the upload cap in /api/settings', async () => (await apiGet('/api/settings')).upload_bps === 1_500_000, UI_MS);
  await waitFor('the page to show the new cap', async () => /upload 1\.50 MB\/s/.test(await page.locator('#settings-current').innerText()), UI_MS);
  await shot(page, '5-settings');

  // A value the form can only show rounded (1,234,567 B/s as 1.23 MB/s)
  // keeps its exact value when another setting is saved.
  await page.locator('#set-up').fill('1234567');
  await page.getByRole('button', { name: 'Save settings' }).click();
  await waitFor('the exact cap in /api/settings', async () => (await apiGet('/api/settings')).upload_bps === 1_234_567, UI_MS);
  await waitFor('the form to show it rounded', async () => (await page.locator('#set-up').inputValue()) === '1.23 MB/s', UI_MS);
  await page.locator('#set-budget').fill('20 GB');
  await page.getByRole('button', { name: 'Save settings' }).click();
  await waitFor('the new budget in /api/settings', async () => (await apiGet('/api/settings')).disk_budget === 20_000_000_000, UI_MS);
  assert.equal((await apiGet('/api/settings')).upload_bps, 1_234_567, 'the cap left as shown is not sent back rounded');

  // A bad value says what to do; megabits are refused, as the CLI refuses
  // them, not read as megabytes.
  for (const bad of ['fast', '2Mb/s']) {
    await page.locator('#set-up').fill(bad);
    await page.getByRole('button', { name: 'Save settings' }).click();
    assert.match(await page.locator('#alert-text').innerText(), /not a rate.*megabits/);
    assert.equal((await apiGet('/api/settings')).upload_bps, 1_234_567, bad);
  }

  assert.deepEqual(problems.filter((p) => !/favicon/.test(p)), [], 'no console errors (CSP included)');
});
