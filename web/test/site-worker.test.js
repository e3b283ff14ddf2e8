// A site's own Service Worker hosted by Tuber's: the host URLs
// (site-worker.js), the site's fetch listeners kept and fed (site-events.js),
// the classic bundle (sw-classic.js, up to date, run here in a vm as a
// Service Worker global with a site worker imported after it), and the page
// script's register() hand-over (tuber.js).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import vm from 'node:vm';
import { hostPlan, hostScriptURL, isTuberScript, siteScriptOf, MAX_SCRIPT_URL } from '../site-worker.js';
import { captureSiteFetch } from '../site-events.js';
import { build, bundle } from '../scripts/build-sw-classic.mjs';

const O = 'https://site.example';

test('host URLs: the site script URL with tuber-host last, and back', () => {
  assert.equal(hostScriptURL(`${O}/sw.js`, 'classic'), `${O}/sw.js?tuber-host=classic`);
  assert.equal(hostScriptURL(`${O}/app/sw.js?v=3`, 'module'), `${O}/app/sw.js?v=3&tuber-host=module`);
  assert.equal(hostScriptURL(`${O}/sw.js?`, 'classic'), `${O}/sw.js?tuber-host=classic`);
  for (const site of [`${O}/sw.js`, `${O}/a/b/sw.js?v=3&x=%20y`, `${O}/`]) {
    for (const type of /** @type {const} */ (['classic', 'module'])) {
      assert.deepEqual(siteScriptOf(hostScriptURL(site, type)), { url: site, type });
    }
  }
  assert.equal(siteScriptOf(`${O}/sw.js`), null);
  assert.equal(siteScriptOf(`${O}/sw.js?tuber-host=other`), null);
  assert.equal(siteScriptOf(`${O}/sw.js?tuber-host=classic&v=1`), null, 'only as the last parameter');
  assert.equal(siteScriptOf(`${O}/.tuber/client/sw.js?tuber-host=classic`), null, 'never the hub\'s own');
  assert.equal(siteScriptOf(`${O}/sw.js#x?tuber-host=classic`), null, 'a fragment is no query');
  assert.equal(siteScriptOf('/sw.js?tuber-host=classic'), null, 'absolute URLs only');

  assert.ok(isTuberScript(`${O}/.tuber/client/sw.js`, O));
  assert.ok(isTuberScript(`${O}/sw.js?tuber-host=classic`, O));
  assert.ok(!isTuberScript(`${O}/sw.js`, O));
  assert.ok(!isTuberScript('https://other.example/.tuber/client/sw.js', O));
});

test('hostPlan: same-origin site workers are hosted, with their options', () => {
  assert.deepEqual(hostPlan(`${O}/sw.js`, undefined, O), {
    url: `${O}/sw.js?tuber-host=classic`, options: { type: 'classic', updateViaCache: 'none' },
  });
  assert.deepEqual(hostPlan(`${O}/app/sw.mjs#frag`, { scope: `${O}/app/`, type: 'module', updateViaCache: 'all' }, O), {
    url: `${O}/app/sw.mjs?tuber-host=module`, options: { type: 'module', updateViaCache: 'all', scope: `${O}/app/` },
  });
  assert.equal(hostPlan(`${O}/sw.js`, { updateViaCache: 'imports' }, O)?.options.updateViaCache, 'none');
  // Registered as asked: other origins, the hub's own, hosts, what the browser refuses, overlong URLs.
  assert.equal(hostPlan('https://cdn.example/sw.js', {}, O), null);
  assert.equal(hostPlan(`${O}/.tuber/client/sw.js`, {}, O), null);
  assert.equal(hostPlan(`${O}/sw.js?tuber-host=classic`, {}, O), null);
  assert.equal(hostPlan(`${O}/sw.js`, { type: 'shared' }, O), null);
  assert.equal(hostPlan(`${O}/sw.js`, { updateViaCache: 'sometimes' }, O), null);
  assert.equal(hostPlan(`${O}/sw.js?${'a'.repeat(MAX_SCRIPT_URL)}`, {}, O), null);
  assert.equal(hostPlan('not a url', {}, O), null);
});

/** A fake worker global: listeners, dispatch. */
function fakeGlobal() {
  /** @type {Map<string, Function[]>} */
  const listeners = new Map();
  const g = {
    addEventListener(type, fn) { listeners.set(type, [...(listeners.get(type) ?? []), fn]); },
    removeEventListener(type, fn) { listeners.set(type, (listeners.get(type) ?? []).filter((f) => f !== fn)); },
    /** The browser's dispatch: every listener, in order. */
    dispatch(type, ev) { for (const fn of listeners.get(type) ?? []) fn.call(g, ev); },
    listeners,
  };
  return g;
}

/** A fetch event as the host sees it; `responded` is what went to respondWith. */
function fetchEvent(url, { mode = 'cors', destination = '', clientId = 'client-1' } = {}) {
  const ev = {
    request: { method: 'GET', mode, destination, url, headers: new Headers() },
    clientId,
    resultingClientId: '',
    /** @type {any} */
    responded: null,
    lifetimes: [],
    stopped: false,
    defaultPrevented: false,
    respondWith(r) {
      if (this.responded) throw new Error('respondWith twice');
      this.responded = r;
    },
    waitUntil(p) { this.lifetimes.push(p); },
    stopImmediatePropagation() { this.stopped = true; },
    preventDefault() { this.defaultPrevented = true; },
  };
  return ev;
}

test('the site\'s fetch listeners: passed on at once, or answering a request Tuber let go', async () => {
  const g = fakeGlobal();
  const seen = [];
  /** @type {unknown[]} */
  const reported = [];
  const site = captureSiteFetch(g, {
    fetch: async (r) => new Response(`network ${r.url}`),
    report: (e) => reported.push(e),
  });
  g.addEventListener('install', () => seen.push('install'));
  assert.equal(g.listeners.get('install')?.length, 1, 'other events are the browser\'s');
  const thrower = () => { throw new Error('site bug'); };
  g.addEventListener('fetch', thrower);
  g.addEventListener('fetch', (ev) => {
    seen.push(`a ${ev.request.url}`);
    if (ev.request.url.endsWith('/hello')) ev.respondWith(new Response('from the site worker'));
    if (ev.request.url.endsWith('/blocked')) ev.preventDefault();
    if (ev.request.url.endsWith('/stop')) ev.stopImmediatePropagation();
    if (ev.request.url.endsWith('/late')) setTimeout(() => assert.throws(() => ev.respondWith(new Response('x'))), 0);
  });
  g.addEventListener('fetch', { handleEvent: (ev) => seen.push(`b ${ev.request.url}`) });
  const once = () => seen.push('once');
  g.addEventListener('fetch', once, { once: true });
  g.addEventListener('fetch', once, { once: true }); // the same listener twice: once
  assert.equal(g.listeners.get('fetch'), undefined, 'the site\'s fetch listeners are kept, not the browser\'s');
  assert.equal(site.count(), 4);

  // Passed on during the browser's dispatch: the browser's own event.
  const nav = fetchEvent(`${O}/page`, { mode: 'navigate' });
  site.passOn(nav);
  assert.deepEqual(seen.splice(0), [`a ${O}/page`, `b ${O}/page`, 'once']);
  assert.equal(reported.length, 1, 'a throwing listener is reported, the next ones run');
  assert.equal(nav.responded, null);

  // Let go after Tuber looked: the site's answer, else the network's.
  assert.equal(await (await site.answer(fetchEvent(`${O}/hello`))).text(), 'from the site worker');
  assert.equal(await (await site.answer(fetchEvent(`${O}/other`))).text(), `network ${O}/other`);
  assert.equal((await site.answer(fetchEvent(`${O}/blocked`))).type, 'error', 'preventDefault() without an answer');
  seen.length = 0;
  await site.answer(fetchEvent(`${O}/stop`));
  assert.deepEqual(seen.splice(0), [`a ${O}/stop`], 'stopImmediatePropagation() stops the site\'s listeners');
  await site.answer(fetchEvent(`${O}/late`));
  await new Promise((r) => setTimeout(r, 5));

  // removeEventListener and onfetch.
  g.removeEventListener('fetch', thrower);
  assert.equal(site.count(), 2);
  /** @type {any} */ (g).onfetch = (ev) => ev.respondWith(new Response('onfetch'));
  assert.equal(await (await site.answer(fetchEvent(`${O}/x`))).text(), 'onfetch');
  /** @type {any} */ (g).onfetch = null;
  assert.equal(site.count(), 2);
  const bad = captureSiteFetch(fakeGlobal());
  const g2 = fakeGlobal();
  const s2 = captureSiteFetch(g2);
  g2.addEventListener('fetch', (ev) => ev.respondWith(Promise.resolve('not a response')));
  await assert.rejects(s2.answer(fetchEvent(`${O}/y`)), TypeError);
  assert.equal(bad.count(), 0);
});

test('sw-classic.js is the bundle of sw.js and its modules (npm run build:sw)', () => {
  assert.equal(readFileSync(new URL('../sw-classic.js', import.meta.url), 'utf8'), build(),
    'web/sw-classic.js is stale: run `npm run build:sw` in web/');
  // The linker refuses what it cannot bundle faithfully.
  const files = { 'a.js': "import { b } from './b.js';\nexport let x = b;\n", 'b.js': 'export const b = 1;\n' };
  assert.throws(() => bundle((p) => files[p], 'a.js'), /cannot bundle/);
  const cycle = { 'a.js': "import { b } from './b.js';\nexport const a = 1;\n", 'b.js': "import { a } from './a.js';\nexport const b = a;\n" };
  assert.throws(() => bundle((p) => cycle[p], 'a.js'), /cycle/);
});

/**
 * Runs sw-classic.js as the worker at `href`, the site's script being
 * `siteScript(global)` (what importScripts runs); `active`: the
 * registration's active worker's URL.
 */
function runHost(href, { siteScript = () => {}, active = null, network } = {}) {
  const g = fakeGlobal();
  const imported = [];
  let skipped = 0;
  const url = new URL(href);
  Object.assign(g, {
    location: { href, origin: url.origin },
    registration: { scope: `${url.origin}/`, active: active ? { scriptURL: active } : null },
    skipWaiting: async () => { skipped += 1; },
    clients: { claim: async () => {}, get: async () => null, matchAll: async () => [] },
    importScripts: (u) => { imported.push(u); siteScript(g); },
    fetch: network ?? (async () => new Response('not here', { status: 404 })),
    URL, Request, Response, Headers, TextDecoder, TextEncoder, MessageChannel, ReadableStream, DOMException,
    setTimeout, clearTimeout, setInterval, clearInterval, console, crypto, AbortSignal, AbortController,
  });
  g.self = g;
  vm.createContext(g);
  vm.runInContext(readFileSync(new URL('../sw-classic.js', import.meta.url), 'utf8'), g);
  return { g, imported, skipped: () => skipped };
}

test('the classic host: Tuber first, then the site\'s script, which gets what Tuber lets go', async () => {
  const requests = [];
  const host = runHost(`${O}/sw.js?tuber-host=classic`, {
    siteScript: (g) => {
      g.addEventListener('install', () => {});
      g.addEventListener('fetch', (ev) => {
        const u = new URL(ev.request.url);
        if (u.pathname === '/hello') ev.respondWith(new g.Response('from the site worker'));
        else if (ev.request.mode === 'navigate') ev.respondWith(new g.Response('offline page'));
      });
    },
    network: async (input, init) => {
      requests.push(`${init?.method ?? 'GET'} ${typeof input === 'string' ? input : input.url}`);
      return new Response('not here', { status: 404 });
    },
  });
  assert.deepEqual(host.imported, [`${O}/sw.js`], 'the site\'s own script, by its own URL');
  assert.equal(host.g.listeners.get('fetch')?.length, 1, 'Tuber\'s fetch listener alone is the browser\'s');
  assert.equal(host.g.listeners.get('install')?.length, 2, 'Tuber\'s and the site\'s install listeners');

  // A page navigation: Tuber lets it pass at once; the site answers (its own event).
  const nav = fetchEvent(`${O}/elsewhere`, { mode: 'navigate' });
  host.g.dispatch('fetch', nav);
  assert.equal(await nav.responded.text(), 'offline page');

  // A fetch() Tuber has to look at (a HEAD): not distributable, so the site's.
  const hello = fetchEvent(`${O}/hello`);
  host.g.dispatch('fetch', hello);
  assert.ok(hello.responded, 'Tuber held it');
  assert.equal(await (await hello.responded).text(), 'from the site worker');
  assert.ok(requests.includes(`HEAD ${O}/hello`), JSON.stringify(requests));
  // Known now not to be distributable: passed on at once.
  const again = fetchEvent(`${O}/hello`);
  host.g.dispatch('fetch', again);
  assert.equal(await again.responded.text(), 'from the site worker');
  // Nobody answers: the network's.
  const other = fetchEvent(`${O}/other`);
  host.g.dispatch('fetch', other);
  assert.equal((await other.responded).status, 404);

  // Install: a first install (or replacing Tuber's own worker) takes over at once; an update of the same host is the site's call.
  host.g.dispatch('install', { waitUntil() {} });
  assert.equal(host.skipped(), 1);
  const update = runHost(`${O}/sw.js?tuber-host=classic`, { active: `${O}/sw.js?tuber-host=classic` });
  update.g.dispatch('install', { waitUntil() {} });
  assert.equal(update.skipped(), 0);
  const replacing = runHost(`${O}/sw.js?tuber-host=classic`, { active: `${O}/.tuber/client/sw.js` });
  replacing.g.dispatch('install', { waitUntil() {} });
  assert.equal(replacing.skipped(), 1);
});

test('the classic bundle alone (no host URL) is Tuber\'s worker and imports nothing', () => {
  const plain = runHost(`${O}/.tuber/client/sw-classic.js`);
  assert.deepEqual(plain.imported, []);
  plain.g.dispatch('install', { waitUntil() {} });
  assert.equal(plain.skipped(), 1);
  assert.equal(plain.g.listeners.get('fetch')?.length, 1);
  // A module host's site script is imported by the module, not here.
  assert.deepEqual(runHost(`${O}/sw.js?tuber-host=module`).imported, []);
});

// ---- tuber.js: the page's own register() ----------------------------------

const TUBER = readFileSync(new URL('../tuber.js', import.meta.url), 'utf8')
  .replace("import(base + 'client.js')", "__import(base + 'client.js')");

/** Runs tuber.js with a fake ServiceWorkerContainer; `runtime`: the import's promise. */
function runPage(runtime) {
  const calls = [];
  class Container {
    get ready() { return this._ready; }
  }
  const container = new Container();
  /** @type {(r: any) => void} */
  let readyNow = () => {};
  container._ready = new Promise((r) => { readyNow = r; });
  container.controller = null;
  container.addEventListener = () => {};
  container.startMessages = () => {};
  container.register = async (url, options) => {
    calls.push([String(url), options]);
    return { scope: `${O}/`, url: String(url) };
  };
  const timers = [];
  const context = {
    document: { readyState: 'complete', currentScript: null, baseURI: `${O}/dir/page.html`, addEventListener() {}, querySelectorAll: () => [] },
    navigator: { serviceWorker: container },
    location: { search: '' },
    localStorage: { getItem: () => null },
    console: { debug() {} },
    URL,
    // Short waits run (ready's polling); long ones wait for fire().
    setTimeout: (fn, ms) => { timers.push({ fn, ms }); return ms <= 100 ? setTimeout(fn, ms) : timers.length; },
    __import: () => runtime,
  };
  context.window = context;
  vm.runInNewContext(TUBER, context);
  return { api: context.__tuber, container, calls, readyNow, fire: (ms) => { for (const t of timers.filter((x) => x.ms === ms)) t.fn(); } };
}

test('tuber.js: the page\'s own register() waits for client.js, which registers', async () => {
  const page = runPage(new Promise(() => {}));
  const p = page.container.register('sw.js', { scope: './' });
  assert.deepEqual(page.calls, [], 'nothing registered before client.js');
  const plain = (v) => JSON.parse(JSON.stringify(v)); // out of the vm's realm
  assert.deepEqual(plain(page.api._siteCalls.map((c) => [c.href, c.options])), [[`${O}/dir/sw.js`, { scope: `${O}/dir/` }]],
    'resolved against the document when called');
  page.api._registerSite = async (href, options) => ({ hosted: href, options });
  const c = page.api._siteCalls.splice(0)[0];
  page.api._registerSite(c.href, c.options).then(c.resolve, c.reject);
  assert.deepEqual(plain(await p), { hosted: `${O}/dir/sw.js`, options: { scope: `${O}/dir/` } });
  // From now on directly.
  assert.deepEqual(await page.container.register('/other.js'), { hosted: `${O}/other.js`, options: undefined });
});

test('tuber.js: without client.js the page\'s register() goes to the browser as made', async () => {
  const page = runPage(Promise.reject(new Error('blocked')));
  const p = page.container.register('/sw.js', { type: 'classic' });
  const reg = await p;
  assert.deepEqual(page.calls, [[`${O}/sw.js`, { type: 'classic' }]]);
  assert.equal(reg.url, `${O}/sw.js`);
  // client.js stuck: after 10 s too.
  const stuck = runPage(new Promise(() => {}));
  const q = stuck.container.register('/sw.js');
  stuck.fire(10000);
  await q;
  assert.deepEqual(stuck.calls, [[`${O}/sw.js`, undefined]]);
});

test('tuber.js: ready waits for the host the page asked for', async () => {
  const page = runPage(new Promise(() => {}));
  const reg = { active: { scriptURL: `${O}/.tuber/client/sw.js` } };
  page.api._hostsPending = 1;
  let resolved = false;
  page.container.ready.then(() => { resolved = true; });
  assert.equal(page.container.ready, page.container.ready, 'the same promise every time');
  page.readyNow(reg);
  await new Promise((r) => setTimeout(r, 120));
  assert.equal(resolved, false, 'Tuber\'s own worker is not the site\'s');
  reg.active = { scriptURL: `${O}/sw.js?tuber-host=classic` };
  await new Promise((r) => setTimeout(r, 120));
  assert.equal(resolved, true);

  // No site worker asked for: the browser's ready as it is.
  const plain = runPage(new Promise(() => {}));
  const r2 = { active: { scriptURL: `${O}/.tuber/client/sw.js` } };
  plain.readyNow(r2);
  assert.equal(await plain.container.ready, r2);
});
