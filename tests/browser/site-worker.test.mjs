// Sites with their own Service Worker keep it (issue #12), with real parts:
// Debian's nginx serves a site whose page registers its own worker at `/`
// (`/sw.js`, a typical offline cache: on install it caches `offline.html`,
// by a relative URL; on fetch it answers `/hello` itself and falls back to
// the cache for navigations when offline; it answers messages) and a 16 MiB
// distributable file; the hub is in front of it and a trusted permanent peer
// holds the file. The baseline is the same page straight from nginx: what
// the site's worker does there, it must do through the hub too, on a first
// visit and after a reload (`/hello` answered by it, `offline.html` in its
// cache, its message answer, its offline page, `register()` and
// `getRegistration()` resolving), while the 16 MiB file fetched by the page
// arrives verified and ≥ 90% from the peer. Two more ways in: a site worker
// registered before the site was behind the hub (an existing visitor's) is
// taken over as a host on the next visit, and a module worker
// (`type: 'module'`, importing a module of its own) is hosted too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  startHub, startPeerDaemon, launchChromium, newClientContext, clientStats, fetchInPage, watchResponses,
  recordFigure, artifactPath, deterministicBytes, sha256Hex, MiB, READY_MS,
} from './harness.mjs';
import { NGINX_BIN, startNginx } from './nginx.mjs';

const NAME = 'site-worker';
const FILE = '/files/data.bin';
const FILE_LEN = 16 * MiB;
const HELLO = 'from the site worker';

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>An offline-ready site</title></head>
<body>
<h1>An offline-ready site</h1>
<script>
  // As many sites do: register the worker once the page has loaded
  // (\`?module\`: the module worker).
  const asModule = new URLSearchParams(location.search).has('module');
  window.siteWorker = new Promise((resolve) => {
    addEventListener('load', () => {
      navigator.serviceWorker.register(asModule ? '/sw-module.js' : '/sw.js', asModule ? { type: 'module' } : undefined).then(
        (r) => resolve({ ok: true, scope: r.scope }),
        (e) => resolve({ ok: false, error: String(e) }));
    });
  });
</script>
</body></html>
`;

const OFFLINE = `<!doctype html>
<html><head><meta charset="utf-8"><title>Offline</title></head>
<body><h1 id="offline">You are offline</h1></body></html>
`;

// A classic worker, as most sites' are; `offline.html` is relative to the
// worker's own URL, as in the usual offline-page recipe.
const SITE_WORKER = `const CACHE = 'site-v1';
const OFFLINE_URL = 'offline.html';
self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE)
    .then((cache) => cache.add(new Request(OFFLINE_URL, { cache: 'reload' })))
    .then(() => self.skipWaiting()));
});
self.addEventListener('activate', (event) => {
  event.waitUntil(self.clients.claim());
});
self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (url.pathname === '/hello') {
    event.respondWith(new Response(${JSON.stringify(HELLO)}, { headers: { 'content-type': 'text/plain' } }));
    return;
  }
  if (event.request.mode === 'navigate') {
    event.respondWith(fetch(event.request).catch(() => caches.match(OFFLINE_URL)));
  }
});
self.addEventListener('message', (event) => {
  event.source.postMessage({ site: 'pong', got: event.data, scope: self.registration.scope });
});
`;

// A module worker, with an import of its own.
const SITE_MODULE_WORKER = `import { HELLO } from './hello-text.js';
self.addEventListener('install', (event) => event.waitUntil(self.skipWaiting()));
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));
self.addEventListener('fetch', (event) => {
  if (new URL(event.request.url).pathname === '/hello') event.respondWith(new Response(HELLO));
});
self.addEventListener('message', (event) => {
  event.source.postMessage({ site: 'pong', got: event.data, scope: self.registration.scope });
});
`;

/** Waits (in the page) until a Tuber host controls it; resolves to the controller's URL. */
async function hostInControl(page) {
  return page.evaluate(async (ms) => {
    const t0 = performance.now();
    while (!/[?&]tuber-host=(?:classic|module)$/.test(navigator.serviceWorker.controller?.scriptURL ?? '')) {
      if (performance.now() - t0 > ms) return navigator.serviceWorker.controller?.scriptURL ?? null;
      await new Promise((r) => setTimeout(r, 50));
    }
    return navigator.serviceWorker.controller.scriptURL;
  }, 10_000);
}

/** What the page sees of the site's worker (run in the page). */
async function siteChecks(page) {
  return page.evaluate(async (ms) => {
    const within = (p, what) => Promise.race([p, new Promise((_, reject) => {
      setTimeout(() => reject(new Error(`${what} took over ${ms} ms`)), ms);
    })]);
    const c = navigator.serviceWorker;
    const controlledAtStart = c.controller ? c.controller.scriptURL : null;
    const register = await within(window.siteWorker, 'register()');
    const ready = await within(c.ready, 'navigator.serviceWorker.ready');
    // The site's worker claims its clients: wait until the page is controlled by it.
    const t0 = performance.now();
    while (!(c.controller && ready.active && c.controller.scriptURL === ready.active.scriptURL)) {
      if (performance.now() - t0 > ms) throw new Error(`not controlled by the active worker: ${c.controller?.scriptURL} vs ${ready.active?.scriptURL}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const res = await fetch('/hello');
    const hello = { status: res.status, text: await res.text() };
    const got = await within(c.getRegistration(), 'getRegistration()');
    const cachedRes = await caches.match('/offline.html');
    const cached = cachedRes ? (await cachedRes.text()).includes('You are offline') : false;
    const pong = await within(new Promise((resolve) => {
      const onMessage = (e) => {
        if (e.data && e.data.site === 'pong') { c.removeEventListener('message', onMessage); resolve(e.data); }
      };
      c.addEventListener('message', onMessage);
      c.controller.postMessage({ ping: 42 });
    }), 'the site worker\'s message answer');
    return {
      controlledAtStart,
      register,
      hello,
      registration: got ? { scope: got.scope, active: got.active?.scriptURL ?? null } : null,
      controller: c.controller.scriptURL,
      cached,
      pong,
    };
  }, 10_000);
}

/** Offline: a navigation the site's worker answers from its cache. */
async function offlinePage(context, url) {
  await context.setOffline(true);
  const page = await context.newPage();
  try {
    await page.goto(url + '/elsewhere.html', { timeout: 10_000 });
    return await page.evaluate(() => document.getElementById('offline')?.textContent ?? document.title);
  } catch (e) {
    return `failed: ${e.message.split('\n')[0]}`;
  } finally {
    await page.close();
    await context.setOffline(false);
  }
}

test('a site\'s own Service Worker keeps working behind the hub, and its media still come from peers', { timeout: 90_000 }, async (t) => {
  if (!existsSync(NGINX_BIN)) throw new Error(`${NGINX_BIN} does not exist: apt-get install nginx-light`);
  const t0 = Date.now();
  const cleanups = [];
  const logs = [];
  const logFiles = [];
  const defer = (fn) => cleanups.push(fn);
  const dir = mkdtempSync(join(tmpdir(), 'tuber-site-worker-'));
  t.after(async () => {
    for (const fn of cleanups.reverse()) {
      try { await fn(); } catch (e) { console.error(`cleanup: ${e}`); }
    }
    const out = artifactPath(NAME);
    mkdirSync(out, { recursive: true });
    for (const [f, log] of logFiles) writeFileSync(join(out, f), log.toString());
    writeFileSync(join(out, 'browser.log'), logs.join('\n') + '\n');
    for (const f of ['access.log', 'error.log', 'nginx.conf']) {
      if (existsSync(join(dir, f))) copyFileSync(join(dir, f), join(out, `nginx-${f}`));
    }
    rmSync(dir, { recursive: true, force: true });
  });
  // nginx's workers may run as another user when it starts as root.
  chmodSync(dir, 0o755);
  const root = join(dir, 'site');
  mkdirSync(join(root, 'files'), { recursive: true });
  writeFileSync(join(root, 'index.html'), PAGE);
  writeFileSync(join(root, 'offline.html'), OFFLINE);
  writeFileSync(join(root, 'sw.js'), SITE_WORKER);
  writeFileSync(join(root, 'sw-module.js'), SITE_MODULE_WORKER);
  writeFileSync(join(root, 'hello-text.js'), `export const HELLO = ${JSON.stringify(HELLO)};\n`);
  writeFileSync(join(root, 'robots.txt'), 'User-agent: *\n');
  const data = deterministicBytes(FILE_LEN, 0x5173);
  writeFileSync(join(root, FILE), data);
  const dataSha = sha256Hex(data);

  const nginx = await startNginx(dir, root);
  defer(() => nginx.stop());
  const hub = await startHub({ upstream: nginx.url });
  defer(() => hub.stop());
  logFiles.push(['hub.log', hub.log]);
  const { pieces } = await hub.announce(FILE);
  const peer = await startPeerDaemon({ hub, invite: await hub.invite('site-worker donor') });
  defer(() => peer.stop());
  logFiles.push(['tuber-peer.log', peer.log]);
  await peer.waitHolding({ minPieces: pieces });
  const browser = await launchChromium();
  defer(() => browser.close());
  const setupMs = Date.now() - t0;

  // The hub hands the site's worker script through untouched.
  const direct = await fetch(hub.url + '/sw.js');
  const directText = await direct.text();
  assert.equal(direct.status, 200);
  assert.equal(directText, SITE_WORKER, 'the hub serves the site\'s worker script unmodified');
  assert.match(direct.headers.get('content-type') ?? '', /javascript/);

  // Baseline: the page straight from nginx, no hub.
  const plainContext = await browser.newContext();
  defer(() => plainContext.close());
  plainContext.on('console', (m) => logs.push(`[baseline console.${m.type()}] ${m.text()}`));
  const plain = await plainContext.newPage();
  await plain.goto(nginx.url + '/');
  const baseline = await siteChecks(plain);
  await plain.reload();
  const baselineAgain = await siteChecks(plain);
  const baselineOffline = await offlinePage(plainContext, nginx.url);
  logs.push(`baseline: ${JSON.stringify({ baseline, baselineAgain, baselineOffline })}`);

  // Through the hub: a first visit, then a reload.
  const context = await newClientContext(browser, hub.url, { logs, label: 'visitor' });
  // The page script's debug log (why a link closed, why a piece went to the
  // origin) lands in browser.log: the figure alone does not say why it fell.
  await context.addInitScript(() => { try { localStorage.setItem('tuber-debug', '1'); } catch { /* storage off */ } });
  defer(() => context.close());
  const page = await context.newPage();
  await page.goto(hub.url + '/');
  const first = await siteChecks(page);
  await page.reload();
  const again = await siteChecks(page);
  const tuber = await page.evaluate((ms) => Promise.race([window.__tuber.ready,
    new Promise((_, reject) => setTimeout(() => reject(new Error('__tuber.ready did not resolve')), ms))]), READY_MS);
  const responses = watchResponses(page, FILE);
  const got = await fetchInPage(page, FILE, { timeoutMs: 30_000 });
  const stats = await clientStats(page);
  const offline = await offlinePage(context, hub.url);
  await page.screenshot({ path: artifactPath(`${NAME}/page.png`) });

  // An existing visitor: the site's worker registered before the site was
  // behind the hub (here from a document Tuber is not in), then a visit.
  const existing = await newClientContext(browser, hub.url, { logs, label: 'existing' });
  defer(() => existing.close());
  const txt = await existing.newPage();
  await txt.goto(hub.url + '/robots.txt');
  const before = await txt.evaluate(async () => {
    const reg = await ServiceWorkerContainer.prototype.register.call(navigator.serviceWorker, '/sw.js');
    const t0 = performance.now();
    while (!reg.active && performance.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 50));
    return { tuber: !!window.__tuber, active: reg.active?.scriptURL ?? null };
  });
  await txt.close();
  const visit = await existing.newPage();
  await visit.goto(hub.url + '/');
  const adoptedBy = await hostInControl(visit);
  const adopted = await siteChecks(visit);
  const adoptedReady = await visit.evaluate(() => window.__tuber.ready);

  // A module worker.
  const modular = await newClientContext(browser, hub.url, { logs, label: 'module' });
  defer(() => modular.close());
  const mpage = await modular.newPage();
  await mpage.goto(hub.url + '/?module');
  const moduleFirst = await siteChecks(mpage);
  await mpage.reload();
  const moduleAgain = await siteChecks(mpage);
  const moduleReady = await mpage.evaluate(() => window.__tuber.ready);
  const siteScriptFetches = nginx.accessLog().filter((e) => e.uri === '/sw.js');
  const result = {
    setupMs, baseline, baselineAgain, baselineOffline, first, again, offline, tuber,
    download: { ...got, responses }, stats, siteScriptFetches,
    existing: { before, adoptedBy, adopted, ready: adoptedReady },
    module: { first: moduleFirst, again: moduleAgain, ready: moduleReady },
  };
  console.log(JSON.stringify(result, null, 1));
  writeFileSync(artifactPath(`${NAME}/result.json`), JSON.stringify(result, null, 1));
  recordFigure('site-worker: bytes from peers with the site\'s own worker', stats.bytesFromPeers / MiB, 'MiB',
    { share: stats.bytesFromPeers / FILE_LEN });
  recordFigure('site-worker wall time', (Date.now() - t0) / 1000, 's', { setupMs });

  // The baseline: what the site's worker does without the hub.
  for (const b of [baseline, baselineAgain]) {
    assert.deepEqual(b.register, { ok: true, scope: nginx.url + '/' });
    assert.deepEqual(b.hello, { status: 200, text: HELLO }, `baseline: ${JSON.stringify(b)}`);
    assert.equal(b.cached, true);
    assert.equal(b.pong.got.ping, 42);
  }
  assert.equal(baselineOffline, 'You are offline', 'baseline: the offline page');

  // Through the hub, the same, on the first visit and after the reload.
  for (const [label, v] of [['first visit', first], ['after a reload', again]]) {
    assert.deepEqual(v.register, { ok: true, scope: hub.url + '/' }, `${label}: register() resolves: ${JSON.stringify(v)}`);
    assert.deepEqual(v.hello, baseline.hello, `${label}: the site's fetch handler answered /hello: ${JSON.stringify(v)}`);
    assert.ok(v.registration && v.registration.scope === hub.url + '/', `${label}: getRegistration(): ${JSON.stringify(v)}`);
    assert.equal(v.cached, true, `${label}: the site's install handler cached offline.html (by its relative URL)`);
    assert.equal(v.pong.got.ping, 42, `${label}: the site's message handler answered`);
    assert.equal(v.pong.scope, hub.url + '/');
  }
  assert.ok(again.controlledAtStart, `after a reload the page is controlled from the start: ${JSON.stringify(again)}`);
  assert.equal(offline, 'You are offline', 'through the hub: the site\'s offline page');
  assert.equal(tuber.degraded, false, `Tuber is not degraded: ${JSON.stringify(tuber)}`);
  assert.ok(siteScriptFetches.length > 0 && siteScriptFetches.every((e) => e.status === 200 || e.status === 304),
    `nginx served the site's worker script: ${JSON.stringify(siteScriptFetches)}`);

  // An existing visitor's site worker is taken over as a host, and still answers.
  assert.deepEqual(before, { tuber: false, active: `${hub.url}/sw.js` }, 'the site\'s own worker, registered without Tuber');
  assert.equal(adoptedBy, `${hub.url}/sw.js?tuber-host=classic`, 'a host took over');
  assert.deepEqual(adopted.hello, baseline.hello, `the site's worker still answers: ${JSON.stringify(adopted)}`);
  assert.equal(adopted.controller, adoptedBy);
  assert.equal(adoptedReady.degraded, false, `Tuber is not degraded: ${JSON.stringify(adoptedReady)}`);

  // A module worker is hosted as a module.
  for (const [label, v] of [['module, first visit', moduleFirst], ['module, after a reload', moduleAgain]]) {
    assert.deepEqual(v.register, { ok: true, scope: hub.url + '/' }, `${label}: ${JSON.stringify(v)}`);
    assert.equal(v.controller, `${hub.url}/sw-module.js?tuber-host=module`, `${label}: ${JSON.stringify(v)}`);
    assert.deepEqual(v.hello, baseline.hello, `${label}: ${JSON.stringify(v)}`);
    assert.equal(v.pong.got.ping, 42, label);
  }
  assert.equal(moduleReady.degraded, false, `Tuber is not degraded: ${JSON.stringify(moduleReady)}`);

  // Distributable media on the page still come from peers.
  assert.equal(got.status, 200);
  assert.equal(got.length, FILE_LEN);
  assert.equal(got.sha256, dataSha, 'the page got the file\'s bytes');
  assert.ok(responses.length > 0 && responses.every((r) => r.fromServiceWorker), `answered by the Service Worker: ${JSON.stringify(responses)}`);
  const fromPeers = got.after.bytesFromPeers - (got.before?.bytesFromPeers ?? 0);
  assert.ok(fromPeers >= 0.9 * FILE_LEN, `≥ 90% from peers: ${JSON.stringify(got)}`);
  assert.equal(stats.piecesCorrupt, 0);
});
