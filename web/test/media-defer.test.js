// The page script's half of deferred media (tuber.js): the hub moved the
// `src` of media in the HTML to `data-tuber-src`; tuber.js puts it back when
// the Service Worker controls the page, at once without one, or after its
// deadline. tuber.js runs here as it is, in a vm with a small fake DOM.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import vm from 'node:vm';

const SOURCE = readFileSync(new URL('../tuber.js', import.meta.url), 'utf8')
  // The runtime module is the test's to give (or not).
  .replace("import(base + 'client.js')", "__import(base + 'client.js')");
assert.ok(SOURCE.includes('__import('), 'tuber.js still loads client.js with import()');

class El {
  /** @param {string} localName @param {Record<string, string>} [attrs] @param {El[]} [children] */
  constructor(localName, attrs = {}, children = []) {
    this.localName = localName;
    this.attrs = new Map(Object.entries(attrs));
    /** @type {El[]} */
    this.children = [];
    /** @type {El | null} */
    this.parentElement = null;
    for (const c of children) this.appendChild(c);
  }
  getAttribute(n) { return this.attrs.has(n) ? this.attrs.get(n) : null; }
  hasAttribute(n) { return this.attrs.has(n); }
  setAttribute(n, v) { this.attrs.set(n, String(v)); }
  removeAttribute(n) { this.attrs.delete(n); }
  appendChild(c) {
    c.remove();
    c.parentElement = this;
    this.children.push(c);
    return c;
  }
  remove() {
    const p = this.parentElement;
    if (!p) return;
    p.children.splice(p.children.indexOf(this), 1);
    this.parentElement = null;
  }
  cloneNode() { return new El(this.localName, Object.fromEntries(this.attrs), this.children.map((c) => c.cloneNode())); }
  *walk() {
    for (const c of this.children) {
      yield c;
      yield* c.walk();
    }
  }
}

/** Runs tuber.js against `body`; `sw`: undefined (no Service Worker) or {controller}. */
function run(body, { sw, importFails = false } = {}) {
  /** @type {Array<{ms: number, fn: () => void}>} */
  const timers = [];
  /** @type {Array<() => void>} */
  const onControl = [];
  const document = {
    readyState: 'interactive',
    currentScript: null,
    addEventListener() {},
    querySelectorAll(sel) {
      assert.equal(sel, '[data-tuber-src]');
      return [...body.walk()].filter((e) => e.hasAttribute('data-tuber-src'));
    },
  };
  const navigator = {};
  if (sw) {
    navigator.serviceWorker = {
      controller: sw.controller ?? null,
      addEventListener(type, fn) {
        if (type === 'controllerchange') onControl.push(fn);
      },
      startMessages() {},
    };
  }
  const context = {
    document,
    navigator,
    location: { search: '' },
    localStorage: { getItem: () => null },
    console: { debug() {} },
    setTimeout: (fn, ms) => { timers.push({ ms, fn }); return timers.length; },
    __import: () => (importFails ? Promise.reject(new Error('blocked')) : new Promise(() => {})),
  };
  context.window = context;
  vm.runInNewContext(SOURCE, context);
  return {
    api: context.__tuber,
    /** The Service Worker takes control. */
    control() {
      navigator.serviceWorker.controller = {};
      for (const fn of onControl) fn();
    },
    /** Fires the timers set for `ms`. */
    fire(ms) { for (const t of timers.filter((x) => x.ms === ms)) t.fn(); },
  };
}

const page = () => {
  const video = new El('video', { 'data-tuber-src': '/media/clip.mp4', controls: '', preload: 'auto' });
  const audio = new El('audio', { controls: '' }, [
    new El('source', { src: 'https://cdn.example/a.ogg' }),
    new El('source', { 'data-tuber-src': '/a.mp3', type: 'audio/mpeg' }),
    new El('track', { src: '/a.vtt' }),
    new El('source', { 'data-tuber-src': '/a.m4a' }),
  ]);
  return { video, audio, body: new El('body', {}, [video, new El('p', {}, [audio])]) };
};

test('without a Service Worker, media gets its src back at once', () => {
  const { video, audio, body } = page();
  run(body);
  assert.equal(video.getAttribute('src'), '/media/clip.mp4');
  assert.equal(video.hasAttribute('data-tuber-src'), false);
  assert.equal(video.getAttribute('preload'), 'auto');
  // Deferred sources are re-appended in their order, after what the element tried already.
  assert.deepEqual(audio.children.map((c) => [c.localName, c.getAttribute('src'), c.hasAttribute('data-tuber-src')]), [
    ['source', 'https://cdn.example/a.ogg', false],
    ['track', '/a.vtt', false],
    ['source', '/a.mp3', false],
    ['source', '/a.m4a', false],
  ]);
  assert.equal(audio.children[2].getAttribute('type'), 'audio/mpeg');
});

test('on a first visit, src comes back when the Service Worker takes control', () => {
  const { video, audio, body } = page();
  const env = run(body, { sw: {} });
  assert.equal(video.hasAttribute('src'), false, 'nothing loads before control');
  assert.equal(video.getAttribute('data-tuber-src'), '/media/clip.mp4');
  env.control();
  assert.equal(video.getAttribute('src'), '/media/clip.mp4');
  assert.ok(env.api._restoredUnderControl.has(video), 'client.js must not take it for native media');
  assert.ok(env.api._restoredUnderControl.has(audio));
  // Later events and the deadline change nothing.
  env.control();
  env.fire(4000);
  assert.equal(audio.children.filter((c) => c.localName === 'source').length, 3);
});

test('without control in time, media loads from the network after the deadline', () => {
  const { video, body } = page();
  const env = run(body, { sw: {} });
  env.fire(10000); // `ready`'s own timeout is not the media's
  assert.equal(video.hasAttribute('src'), false);
  env.fire(4000);
  assert.equal(video.getAttribute('src'), '/media/clip.mp4');
  assert.equal(env.api._restoredUnderControl.has(video), false, 'it started on the network');
});

test('on later visits (already controlled) src comes back at once', () => {
  const { video, body } = page();
  const env = run(body, { sw: { controller: {} } });
  assert.equal(video.getAttribute('src'), '/media/clip.mp4');
  assert.ok(env.api._restoredUnderControl.has(video));
});

test('a src the page set meanwhile wins; a runtime that cannot load restores at once', async () => {
  const { video, body } = page();
  const env = run(body, { sw: {} });
  video.setAttribute('src', '/other.webm');
  env.control();
  assert.equal(video.getAttribute('src'), '/other.webm');
  assert.equal(video.hasAttribute('data-tuber-src'), false);

  const second = page();
  run(second.body, { sw: {}, importFails: true });
  await new Promise((r) => setImmediate(r));
  assert.equal(second.video.getAttribute('src'), '/media/clip.mp4');
});

test('sources of an element with its own src are given back in place; client.js can restore too', () => {
  const source = new El('source', { 'data-tuber-src': 'https://cdn.example/b.mp4' });
  const video = new El('video', { 'data-tuber-src': '/b.mp4' }, [source]);
  const env = run(new El('body', {}, [video]), { sw: {} });
  env.api._restoreMedia(); // registration failed
  assert.equal(video.getAttribute('src'), '/b.mp4');
  assert.equal(video.children[0], source);
  assert.equal(source.getAttribute('src'), 'https://cdn.example/b.mp4');
});
