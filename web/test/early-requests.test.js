// The page script's early requests (tuber.js): on a first visit, same-origin
// GETs of a distributable extension made with XMLHttpRequest or fetch()
// before the Service Worker controls the page wait for it (or for the
// deadline, or for the runtime to fail), and then go out in order.
// tuber.js runs here as it is, in a vm with fake XHR, fetch and DOM.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import vm from 'node:vm';
import { EXTENSIONS, BYPASS_HEADER } from '../rules.js';

const RAW = readFileSync(new URL('../tuber.js', import.meta.url), 'utf8');
const SOURCE = RAW.replace("import(base + 'client.js')", "__import(base + 'client.js')");
assert.ok(SOURCE.includes('__import('), 'tuber.js still loads client.js with import()');

test('the fallback extensions are rules.js EXTENSIONS (the hub\'s defaults)', () => {
  const m = /const FALLBACK_EXTENSIONS = '([^']*)';/.exec(RAW);
  assert.ok(m, 'tuber.js declares FALLBACK_EXTENSIONS as one string literal');
  assert.deepEqual(m[1].split(' '), EXTENSIONS);
  const b = /const BYPASS_HEADER = '([^']*)';/.exec(RAW);
  assert.equal(b?.[1], BYPASS_HEADER);
});

const ORIGIN = 'https://site.example';

/**
 * Runs tuber.js. `controller`: the page is controlled at start; `ext`: the
 * script tag's data-tuber-ext (undefined: no attribute); `sw: false`: no
 * Service Worker at all.
 */
function run({ controller = null, ext, sw = true, importFails = false } = {}) {
  /** Everything that left for the network, in order. */
  const sent = [];
  const timers = [];
  const onControl = [];
  class FakeXHR {
    constructor() { this.events = []; this.headers = {}; }
    open(method, url, async = true) { this.method = method; this.url = url; this.async = async; this.readyState = 1; }
    setRequestHeader(k, v) { this.headers[k] = v; }
    send(body) { sent.push({ via: 'xhr', method: this.method, url: this.url, headers: { ...this.headers }, responseType: this.responseType, body }); }
    abort() { this.events.push('native abort'); }
    dispatchEvent(e) { this.events.push(e.type); return true; }
  }
  const nativeFetch = function fetch(input, init) {
    sent.push({ via: 'fetch', input, init, self: this });
    return Promise.resolve({ ok: true, input });
  };
  const navigator = {};
  if (sw) {
    navigator.serviceWorker = {
      controller,
      addEventListener(type, fn) { if (type === 'controllerchange') onControl.push(fn); },
      startMessages() {},
    };
  }
  const context = {
    document: {
      readyState: 'interactive',
      baseURI: `${ORIGIN}/watch/page.html`,
      currentScript: { src: `${ORIGIN}/.tuber/client/tuber.js`, getAttribute: (n) => (n === 'data-tuber-ext' && ext !== undefined ? ext : null) },
      addEventListener() {},
      querySelectorAll: () => [],
    },
    navigator,
    location: { origin: ORIGIN, protocol: 'https:', search: '' },
    localStorage: { getItem: () => null },
    console: { debug() {} },
    setTimeout: (fn, ms) => { timers.push({ ms, fn }); return timers.length; },
    XMLHttpRequest: FakeXHR,
    fetch: nativeFetch,
    Request,
    Headers,
    URL,
    DOMException,
    ProgressEvent: class ProgressEvent { constructor(type) { this.type = type; } },
    performance,
    __import: () => (importFails ? Promise.reject(new Error('blocked')) : new Promise(() => {})),
  };
  context.window = context;
  const open = FakeXHR.prototype.open;
  vm.runInNewContext(SOURCE, context);
  return {
    wrapped: () => FakeXHR.prototype.open !== open || context.fetch !== nativeFetch,
    api: context.__tuber,
    sent,
    nativeFetch,
    FakeXHR,
    xhr: () => new context.XMLHttpRequest(),
    fetch: (...args) => context.fetch(...args),
    control() {
      navigator.serviceWorker.controller = {};
      for (const fn of onControl) fn();
    },
    fire(ms) { for (const t of timers.filter((x) => x.ms === ms)) t.fn(); },
  };
}

const urls = (sent) => sent.map((s) => (s.via === 'xhr' ? s.url : String(s.input?.url ?? s.input)));

test('on a first visit, distributable GETs wait for control and then go out in order', async () => {
  const env = run();
  assert.equal(env.wrapped(), true);
  const a = env.xhr();
  a.open('GET', 'seg-1.M4S?token=1'); // relative to document.baseURI, any case
  a.setRequestHeader('x-page', '1');
  a.responseType = 'arraybuffer';
  a.send();
  const f1 = env.fetch('/media/clip.mp4', { headers: { range: 'bytes=0-' } });
  const req = new Request(`${ORIGIN}/media/b.webm`);
  const f2 = env.fetch(req);
  const f3 = env.fetch(new URL('/pkg.zip', ORIGIN));
  // Not held: other extensions, methods, origins, sync XHR, Tuber's own paths.
  const b = env.xhr();
  b.open('GET', '/api/x.json');
  b.send();
  const c = env.xhr();
  c.open('GET', '/media/sync.mp4', false);
  c.send();
  const d = env.xhr();
  d.open('POST', '/upload.mp4');
  d.send('body');
  await env.fetch('https://cdn.example/a.mp4');
  await env.fetch('/media/x.mp4', { method: 'HEAD' });
  await env.fetch(new Request(`${ORIGIN}/media/y.mp4`, { method: 'POST', body: 'x' }));
  await env.fetch('/.tuber/client/x.wasm');
  await env.fetch('/.well-known/x.bin');
  await env.fetch('/media/z.mp4', { headers: { [BYPASS_HEADER]: '1' } });
  await env.fetch('/media/', {});
  await env.fetch('/media/.mp4');
  assert.deepEqual(urls(env.sent), [
    '/api/x.json', '/media/sync.mp4', '/upload.mp4', 'https://cdn.example/a.mp4', '/media/x.mp4',
    `${ORIGIN}/media/y.mp4`, '/.tuber/client/x.wasm', '/.well-known/x.bin', '/media/z.mp4', '/media/', '/media/.mp4',
  ]);
  assert.equal(env.api.held.count, 4);
  assert.equal(env.api.held.waiting, 4);
  assert.equal(env.api.held.released, null);

  env.sent.length = 0;
  env.control();
  assert.equal(env.api.held.released, 'control');
  assert.equal(env.api.held.waiting, 0);
  assert.ok(env.api.held.maxMs >= 0);
  assert.deepEqual(urls(env.sent), ['seg-1.M4S?token=1', '/media/clip.mp4', `${ORIGIN}/media/b.webm`, `${ORIGIN}/pkg.zip`]);
  // The XHR as the page set it up; fetch as the page called it.
  assert.deepEqual(env.sent[0].headers, { 'x-page': '1' });
  assert.equal(env.sent[0].responseType, 'arraybuffer');
  assert.deepEqual(env.sent[1].init, { headers: { range: 'bytes=0-' } });
  assert.equal(env.sent[2].input, req);
  assert.deepEqual((await f1).input, '/media/clip.mp4');
  assert.equal((await f2).input, req);
  assert.ok((await f3).input instanceof URL);

  // From now on everything passes straight through.
  env.sent.length = 0;
  const e = env.xhr();
  e.open('GET', '/later.mp4');
  e.send();
  await env.fetch('/later.ts');
  assert.deepEqual(urls(env.sent), ['/later.mp4', '/later.ts']);
  assert.equal(env.api.held.count, 4);
  env.fire(4000);
  assert.equal(env.api.held.released, 'control');
});

test('abort() or a new open() drops a held XHR; it is never sent', () => {
  const env = run();
  const a = env.xhr();
  a.open('GET', '/a.mp4');
  a.send();
  assert.throws(() => a.send(), { name: 'InvalidStateError' }, 'as the native send() of a sent request');
  a.abort();
  assert.deepEqual(a.events, ['native abort', 'abort', 'loadend']);
  const b = env.xhr();
  b.open('GET', '/b.mp4');
  b.send();
  b.open('GET', '/c.json'); // a new request on the same object
  b.send();
  assert.deepEqual(urls(env.sent), ['/c.json']);
  const c = env.xhr();
  c.open('GET', '/d.mp4');
  c.abort(); // never sent: no events of a sent request
  assert.deepEqual(c.events, ['native abort']);
  c.open('GET', '/d.mp4');
  c.send();
  assert.equal(env.api.held.count, 3);
  assert.equal(env.api.held.waiting, 1);
  env.control();
  assert.deepEqual(urls(env.sent), ['/c.json', '/d.mp4']);
});

test('a held fetch() honours its signal', async () => {
  const env = run();
  const ctl = new AbortController();
  const p = env.fetch('/a.mp4', { signal: ctl.signal });
  ctl.abort(new Error('gone'));
  await assert.rejects(p, /gone/);
  const ctl2 = new AbortController();
  const p2 = env.fetch(new Request(`${ORIGIN}/b.mp4`, { signal: ctl2.signal }));
  ctl2.abort();
  await assert.rejects(p2, { name: 'AbortError' });
  // Already aborted: the native call, which rejects at once.
  const ctl3 = new AbortController();
  ctl3.abort();
  env.fetch('/c.mp4', { signal: ctl3.signal });
  assert.deepEqual(urls(env.sent), ['/c.mp4']);
  const ctl4 = new AbortController();
  const p4 = env.fetch('/d.mp4', { signal: ctl4.signal });
  env.control();
  ctl4.abort(); // after release the native fetch has the signal
  assert.ok(await p4);
  assert.deepEqual(urls(env.sent), ['/c.mp4', '/d.mp4']);
  assert.equal(env.api.held.count, 3);
});

test('without control in time, held requests go to the network at the deadline', () => {
  const env = run();
  env.fetch('/a.mp4');
  env.fire(10000);
  assert.equal(env.sent.length, 0);
  env.fire(4000);
  assert.equal(env.api.held.released, 'deadline');
  assert.deepEqual(urls(env.sent), ['/a.mp4']);
});

test('a runtime that cannot load, or a registration that fails, releases at once', async () => {
  const env = run({ importFails: true });
  env.fetch('/a.mp4');
  await new Promise((r) => setImmediate(r));
  assert.equal(env.api.held.released, 'runtime failed');
  assert.deepEqual(urls(env.sent), ['/a.mp4']);

  const env2 = run();
  env2.fetch('/a.mp4');
  env2.api._restoreMedia(); // what client.js calls when registration fails
  assert.equal(env2.api.held.released, 'no service worker');
  assert.deepEqual(urls(env2.sent), ['/a.mp4']);
});

test('nothing is wrapped when the page is controlled at start or has no Service Worker', () => {
  for (const opts of [{ controller: {} }, { sw: false }, { ext: '' }]) {
    const env = run(opts);
    assert.equal(env.wrapped(), false, JSON.stringify(opts));
    const a = env.xhr();
    a.open('GET', '/a.mp4');
    a.send();
    env.fetch('/b.mp4');
    assert.deepEqual(urls(env.sent), ['/a.mp4', '/b.mp4'], JSON.stringify(opts));
    assert.equal(env.api.held.count, 0);
  }
});

test('the script tag\'s data-tuber-ext names the extensions', () => {
  const env = run({ ext: 'm3u8  .MPD bin' });
  env.fetch('/a.mp4');
  env.fetch('/live/index.m3u8');
  env.fetch('/a.mpd?x');
  env.fetch('/a.bin');
  assert.deepEqual(urls(env.sent), ['/a.mp4']);
  assert.equal(env.api.held.count, 3);
});

test('any internal error makes the native call', async () => {
  const env = run();
  env.fetch('http://[bad'); // URL parsing throws in the wrapper: the native fetch judges it
  env.fetch('/a.mp4', { headers: 42 }); // Headers throws: native
  const a = env.xhr();
  a.open('GET', { toString() { throw new Error('no'); } });
  a.send();
  assert.equal(env.sent.length, 3);
  assert.equal(env.api.held.count, 0);
});
