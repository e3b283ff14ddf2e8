// The Service Worker's response bodies (sw.js `body()`), run as the classic
// bundle in a vm with a fake page: a pull the page has not answered when
// the reader cancels (a player that seeks drops its request) never goes to
// the network, nor does a body whose own page is gone; a page that fails
// while the reader still reads gives the rest from the network.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import vm from 'node:vm';

const O = 'https://site.example';
const URL_ = `${O}/media/clip.mp4`;
const PIECE = 16384;
const LENGTH = 4 * PIECE;
const MANIFEST = JSON.stringify({
  path: '/media/clip.mp4', length: LENGTH, content_type: 'video/mp4', version: '"v1"', piece_size: PIECE,
  pieces: ['a', 'b', 'c', 'd'].map((c) => c.repeat(64)),
});
/** The liveness checks (every 2 s in the worker) run this many times faster. */
const FASTER = 100;

/**
 * The worker at /.tuber/client/sw-classic.js with a network and one page
 * (`page-1`) that accepts every response and answers the first `chunks`
 * pulls with 1 KiB each, then `then`: 'hold' (never answers) or 'error'.
 */
function worker({ chunks, then }) {
  /** @type {Map<string, Function[]>} */
  const listeners = new Map();
  /** Requests the worker made, as `METHOD url range`. @type {string[]} */
  const requests = [];
  const page = { alive: true, pulls: 0, cancels: 0 };
  const client = {
    id: 'page-1',
    type: 'window',
    url: `${O}/`,
    /** The page runtime's side of the protocol (client.js). */
    postMessage(msg, ports) {
      const port = ports[0];
      let sent = 0;
      port.onmessage = (e) => {
        if (e.data.t === 'cancel') {
          page.cancels++;
          port.close();
        } else if (e.data.t === 'pull') {
          page.pulls++;
          if (sent < chunks) {
            sent++;
            const b = new Uint8Array(1024).fill(sent);
            port.postMessage({ t: 'chunk', data: b.buffer }, [b.buffer]);
          } else if (then === 'error') {
            port.postMessage({ t: 'error', message: 'broken' });
          }
        }
      };
      port.postMessage({ t: 'accept' });
      assert.equal(msg.tuber, 'fetch');
    },
  };
  const g = {
    addEventListener(type, fn) { listeners.set(type, [...(listeners.get(type) ?? []), fn]); },
    location: { href: `${O}/.tuber/client/sw-classic.js`, origin: O },
    registration: { scope: `${O}/`, active: null },
    skipWaiting: async () => {},
    clients: {
      claim: async () => {},
      get: async (id) => (id === client.id && page.alive ? client : null),
      matchAll: async () => (page.alive ? [client] : []),
    },
    fetch: async (input, init) => {
      const url = typeof input === 'string' ? input : input.url;
      const range = init?.headers?.range ?? (typeof input === 'string' ? null : input.headers.get('range'));
      requests.push(`${init?.method ?? 'GET'} ${url} ${range ?? '-'}`);
      if (url.startsWith('/.tuber/manifest')) return new Response(MANIFEST, { headers: { 'content-type': 'application/json' } });
      if (url === URL_ && range) {
        const [, a] = /^bytes=(\d+)-/.exec(range);
        return new Response(new Uint8Array(LENGTH - Number(a)), {
          status: 206, headers: { 'content-range': `bytes ${a}-${LENGTH - 1}/${LENGTH}` },
        });
      }
      return new Response('not here', { status: 404 });
    },
    setInterval: (fn, ms) => setInterval(fn, Math.max(1, ms / FASTER)),
    // Messages arrive in this realm's types (MessageChannel is this realm's).
    ArrayBuffer, Uint8Array,
    URL, Request, Response, Headers, TextDecoder, TextEncoder, MessageChannel, ReadableStream, DOMException,
    setTimeout, clearTimeout, clearInterval, console, crypto, AbortSignal, AbortController,
  };
  g.self = g;
  vm.createContext(g);
  vm.runInContext(readFileSync(new URL('../sw-classic.js', import.meta.url), 'utf8'), g);

  /** A media element's request for the clip; resolves to the reader of its body. */
  const play = async () => {
    const event = {
      request: { method: 'GET', mode: 'no-cors', destination: 'video', url: URL_, headers: new Headers({ range: 'bytes=0-' }) },
      clientId: client.id,
      resultingClientId: '',
      /** @type {Promise<Response> | null} */
      responded: null,
      respondWith(r) { this.responded = Promise.resolve(r); },
      waitUntil() {},
    };
    for (const fn of listeners.get('fetch') ?? []) fn.call(g, event);
    assert.ok(event.responded, 'the worker answers the clip');
    const r = await event.responded;
    assert.equal(r.status, 206);
    assert.equal(r.headers.get('x-tuber'), 'p2p');
    return /** @type {ReadableStreamDefaultReader<Uint8Array>} */ (r.body.getReader());
  };
  const media = () => requests.filter((r) => r.startsWith(`GET ${URL_}`));
  return { page, requests, media, play };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** Longer than a few liveness checks. */
const CHECKS = (3 * 2000) / FASTER + 50;

test('a response cancelled while a pull waits for the page never goes to the network', async () => {
  const w = worker({ chunks: 2, then: 'hold' });
  const reader = await w.play();
  assert.equal((await reader.read()).value.length, 1024);
  assert.equal((await reader.read()).value.length, 1024);
  const pending = reader.read(); // the page holds this pull (waits for a piece)
  await sleep(10);
  assert.equal(w.page.pulls, 3);
  await reader.cancel(); // the player seeks elsewhere
  assert.deepEqual(await pending, { done: true, value: undefined });
  await sleep(10);
  assert.equal(w.page.cancels, 1, 'the page is told');
  // Later the page goes (the viewer leaves): still nothing from the network.
  await sleep(CHECKS);
  w.page.alive = false;
  await sleep(CHECKS);
  assert.deepEqual(w.media(), [], `no network request for the clip: ${JSON.stringify(w.requests)}`);
});

test('a response whose own page is gone ends without the network', async () => {
  const w = worker({ chunks: 1, then: 'hold' });
  const reader = await w.play();
  assert.equal((await reader.read()).value.length, 1024);
  const pending = reader.read();
  await sleep(10);
  w.page.alive = false; // closed while its media element still loads
  await assert.rejects(pending, /gone/);
  await sleep(CHECKS);
  assert.deepEqual(w.media(), [], `no network request for the clip: ${JSON.stringify(w.requests)}`);
});

test('a page that fails while its reader reads: the rest from the network', async () => {
  const w = worker({ chunks: 2, then: 'error' });
  const reader = await w.play();
  let got = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    got += value.length;
  }
  assert.equal(got, LENGTH);
  assert.deepEqual(w.media(), [`GET ${URL_} bytes=2048-${LENGTH - 1}`]);
});
