// Tuber Service Worker, served by the hub at /.tuber/client/sw.js beside the
// modules it imports (and at /.tuber/sw.js as a one-line module that imports
// it), with `Service-Worker-Allowed: /`; registered as an ES module with
// root scope.
//
// It answers GET requests for distributable resources with a stream that
// the controlling page feeds through a MessageChannel (WebRTC cannot run in
// a Service Worker), honouring Range (206, Content-Range) so that players
// can seek, and forwarding the player's cancel to the page. Everything else
// passes through untouched: navigations (except downloads of distributable
// resources, below), non-GET, other origins, the hub's
// own /.tuber/ and /.well-known/ URLs, and whatever rules.js does not
// consider under the hub's rules (read once per worker lifetime from
// /.tuber/rules; the hub's defaults when that fails). On any failure — no page answering within 2 s, the page gone, a
// stream error — it falls back to the network: before the first byte with
// `fetch(request)`, after it with a Range request for the rest. Nothing
// goes to the network for a response nobody reads any more: one its reader
// cancelled (a player that seeks drops its request, often while a pull
// waits for the page), or one whose page, the one that asked for it, is gone.
//
// See client.js for the message protocol.
//
// A site's own worker (site-worker.js): registered at a host URL
// (`/sw.js?tuber-host=classic`), this worker runs first and the site's
// script after it in the same global (sw-classic.js imports it; a module
// host imports both). Every request Tuber does not answer goes to the
// site's fetch listeners (site-events.js), before or after Tuber looked at
// it; its other events reach the site's listeners directly. On an update of
// such a host, waiting or not is the site's choice (its `skipWaiting()`).

import {
  candidatePath, classify, DEFAULT_RULES, downloadNavigationPath, isDownload, loadRules, looksDistributable,
} from './rules.js';
import { parseRange, responseFor } from './range.js';
import { decodeManifest } from './proto/manifest.js';
import { MAX_MANIFEST_BYTES } from './proto/limits.js';
import { siteScriptOf } from './site-worker.js';
import { captureSiteFetch } from './site-events.js';

const sw = /** @type {ServiceWorkerGlobalScope} */ (/** @type {unknown} */ (self));

/** Time for the page to accept a response. */
const ACCEPT_TIMEOUT_MS = 2000;
/** Time for the page to answer one pull before the rest comes from the network. */
const PULL_TIMEOUT_MS = 30_000;
/** How often a pull that waits checks that its page still exists. */
const LIVENESS_MS = 2000;
/** How long an answer about a path is kept. */
const POSITIVE_TTL_MS = 30_000;
const NEGATIVE_TTL_MS = 5 * 60_000;
const ERROR_TTL_MS = 10_000;
/** Time a clicked download waits for the hub's manifest before it goes to the network. */
const NAV_MANIFEST_WAIT_MS = 3000;
/** Answers kept, at most. */
const MAX_DECISIONS = 1024;

/** The site's worker this one hosts, if any. */
const hosted = siteScriptOf(sw.location.href);

sw.addEventListener('install', (event) => {
  // A new version of the same host (Tuber's or the site's code changed):
  // the site's policy decides when it takes over. Anything else (no worker,
  // Tuber's alone, the site's alone before Tuber hosted it) is replaced at
  // once, so the site's worker runs from this visit on, as without Tuber.
  if (hosted && sw.registration.active?.scriptURL === sw.location.href) return;
  event.waitUntil(sw.skipWaiting());
});

sw.addEventListener('activate', (event) => {
  event.waitUntil(Promise.all([sw.clients.claim(), hubRules()]));
});

/**
 * @typedef {{until: number, p2p: false} | {until: number, p2p: true, text: string,
 *   manifest: import('./proto/manifest.js').Manifest}} Decision
 */

/** The hub's rules, once read. @type {import('./rules.js').Rules | null} */
let rules = null;
/** @type {Promise<import('./rules.js').Rules> | null} */
let loadingRules = null;

/** The hub's rules, read once per worker lifetime. */
function hubRules() {
  if (!loadingRules) {
    loadingRules = loadRules().then((r) => {
      rules = r;
      return r;
    });
  }
  return loadingRules;
}

/** path (with query) → what the hub said. @type {Map<string, Decision>} */
const decisions = new Map();
/** @type {Map<string, Promise<Decision>>} */
const deciding = new Map();

sw.addEventListener('fetch', (event) => {
  const req = event.request;
  if (req.mode === 'navigate') {
    // Downloads by click: only navigations whose path looks distributable
    // (before the hub's rules are read: by the defaults); pages never.
    let nav = null;
    try {
      nav = downloadNavigationPath(req, sw.location.origin, rules ?? DEFAULT_RULES);
    } catch {
      return passOn(event);
    }
    if (nav === null) return passOn(event);
    const known = decisions.get(nav);
    if (known && !known.p2p && known.until > Date.now()) return passOn(event);
    event.respondWith(download(event, req, nav));
    return;
  }
  /** @type {'skip' | 'ask' | 'probe' | null} */
  let kind = null;
  let path;
  try {
    path = candidatePath(req, sw.location.origin);
    if (path === null || !event.clientId) return passOn(event);
    // Before the rules are read (a worker just started), only what no rules
    // could ever consider passes untouched; the rest waits for them.
    if (rules) kind = classify(req, sw.location.origin, rules);
  } catch {
    return passOn(event);
  }
  if (kind === 'skip') return passOn(event);
  const known = decisions.get(path);
  // Known not to be distributable: not touched at all.
  if (known && !known.p2p && known.until > Date.now()) return passOn(event);
  event.respondWith(answer(event, req, path, kind));
});

/**
 * @param {FetchEvent} event @param {Request} req @param {string} path
 * @param {'ask' | 'probe' | null} kind null: not classified yet (rules unread)
 * @returns {Promise<Response>}
 */
async function answer(event, req, path, kind) {
  let d;
  try {
    const r = await hubRules();
    const k = kind ?? classify(req, sw.location.origin, r);
    if (k === 'skip') return letGo(event, req);
    d = await decide(path, k, req.url, r);
  } catch {
    d = null;
  }
  if (!d || !d.p2p) return letGo(event, req);
  // Chrome's media player refuses to mix this worker's own answers for one
  // resource with the network's: once a media resource is answered here,
  // the network's bytes for it are wrapped into our own answers too. Media
  // that started on the network before this worker took over stays there
  // (the page says `native`).
  const media = req.destination === 'video' || req.destination === 'audio';
  let wrap = media;
  try {
    const client = await sw.clients.get(event.clientId);
    if (!client || client.type !== 'window') return network(event, req, wrap);
    const m = d.manifest;
    const r = responseFor(parseRange(req.headers.get('range'), m.length), m.length, m.content_type);
    if (r.status === 416 || r.end < r.start) return new Response(null, { status: r.status, headers: r.headers });
    /** @type {ReadableStream<Uint8Array>} */
    let body;
    try {
      body = await openStream(event, client, req.url, d.text, r.start, r.end, media);
    } catch (e) {
      if (e instanceof Error && e.message === 'page declined: native') wrap = false;
      throw e;
    }
    // The origin's validator (the manifest's version), as the origin sends it.
    if (/^(?:W\/)?"[^"]*"$/.test(m.version)) r.headers.etag = m.version;
    else if (/^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/.test(m.version)) r.headers['last-modified'] = m.version;
    r.headers['x-tuber'] = 'p2p';
    return new Response(body, { status: r.status, headers: r.headers });
  } catch {
    return network(event, req, wrap);
  }
}

/**
 * A navigation to a distributable download (a click on a link): answered
 * with the resource's bytes fed by an open page of this origin (the
 * clicking page stays open while a download runs), with the origin's
 * `Content-Disposition`; the network's answer whenever it is not clearly a
 * download with a manifest, or anything fails before the first byte.
 * @param {FetchEvent} event @param {Request} req @param {string} path
 * @returns {Promise<Response>}
 */
async function download(event, req, path) {
  try {
    const r = await hubRules();
    if (downloadNavigationPath(req, sw.location.origin, r) !== path) return letGo(event, req);
    // A manifest the hub still has to compute may take long for a big
    // file: the click is not kept waiting (the answer is kept for later).
    /** @type {Decision | null} */
    const d = await Promise.race([
      decide(path, 'ask', req.url, r),
      new Promise((resolve) => { setTimeout(() => resolve(null), NAV_MANIFEST_WAIT_MS); }),
    ]);
    if (!d || !d.p2p) return letGo(event, req);
    const m = d.manifest;
    // The headers a download keeps (its file name), and a check that the
    // manifest still describes the resource.
    const head = await fetch(req.url, { method: 'HEAD', credentials: 'same-origin', cache: 'no-store' });
    const type = head.ok ? head.headers.get('content-type') ?? m.content_type : m.content_type;
    const disposition = head.ok ? head.headers.get('content-disposition') : null;
    if (!isDownload(type, disposition) || !isDownload(m.content_type, disposition)) return letGo(event, req);
    if (head.ok && !sameVersion(head.headers, m.version)) return letGo(event, req);
    const client = await feedingPage(event);
    if (!client) return letGo(event, req);
    const body = await openStream(event, client, req.url, d.text, 0, m.length - 1, false);
    /** @type {Record<string, string>} */
    const headers = {
      'content-type': m.content_type || 'application/octet-stream',
      'content-length': String(m.length),
      'x-tuber': 'p2p',
    };
    if (disposition) headers['content-disposition'] = disposition;
    if (/^(?:W\/)?"[^"]*"$/.test(m.version)) headers.etag = m.version;
    return new Response(body, { status: 200, headers });
  } catch {
    return letGo(event, req);
  }
}

/**
 * Whether a HEAD answer's validator is the manifest's version (or it has
 * none that could differ).
 * @param {Headers} h @param {string} version
 */
function sameVersion(h, version) {
  const etag = h.get('etag');
  if (etag && !etag.startsWith('W/') && /^"/.test(version)) return etag === version;
  const lm = h.get('last-modified');
  if (lm && !/^"/.test(version)) return lm === version;
  return true;
}

/**
 * The page that feeds a download: a window of this origin that this worker
 * controls (a navigation has no client of its own yet), the focused one
 * first, then a visible one.
 * @param {FetchEvent} event
 * @returns {Promise<Client | null>}
 */
async function feedingPage(event) {
  const all = await sw.clients.matchAll({ type: 'window' });
  const mine = all.filter((c) => c.id !== event.resultingClientId && new URL(c.url).origin === sw.location.origin);
  const w = /** @type {WindowClient[]} */ (mine);
  return w.find((c) => c.focused) ?? w.find((c) => c.visibilityState === 'visible') ?? w[0] ?? null;
}

/**
 * The answer to a request this worker held and lets go: the hosted site
 * worker's (its fetch listeners), else the network's. `wrap`: as this
 * worker's own response (same bytes and headers), for media answered here
 * before.
 * @param {FetchEvent} event @param {Request} req @param {boolean} wrap
 */
async function network(event, req, wrap) {
  const r = await letGo(event, req);
  if (!wrap || r.type === 'error') return r;
  return new Response(r.body, { status: r.status, statusText: r.statusText, headers: r.headers });
}

/**
 * The hosted site worker's fetch listeners (set at the end of this module,
 * after this worker's own listeners, before the site's script runs).
 * @type {import('./site-events.js').SiteFetch | null}
 */
let site = null;

/**
 * A request this worker does not take, during the browser's dispatch: the
 * hosted site worker's listeners get it (without one, the network).
 * @param {FetchEvent} event
 */
function passOn(event) {
  site?.passOn(event);
}

/**
 * A request this worker held and lets go (not distributable after all, no
 * page to feed it, a failure before the first byte): the hosted site
 * worker's answer, else the network's.
 * @param {FetchEvent} event @param {Request} req
 * @returns {Promise<Response>}
 */
function letGo(event, req) {
  return site ? site.answer(event) : fetch(req);
}

/**
 * Whether `path` is distributable, and its manifest: from memory, or by
 * asking the hub (after a HEAD for `probe` requests).
 * @param {string} path @param {'ask' | 'probe'} kind @param {string} href
 * @param {import('./rules.js').Rules} ruleset
 * @returns {Promise<Decision>}
 */
function decide(path, kind, href, ruleset) {
  const known = decisions.get(path);
  if (known && known.until > Date.now()) return Promise.resolve(known);
  let p = deciding.get(path);
  if (!p) {
    p = ask(path, kind, href, ruleset)
      .catch(() => /** @type {Decision} */ ({ until: Date.now() + ERROR_TTL_MS, p2p: false }))
      .then((d) => {
        remember(path, d);
        deciding.delete(path);
        return d;
      });
    deciding.set(path, p);
  }
  return p;
}

/** @param {string} path @param {Decision} d */
function remember(path, d) {
  if (decisions.size >= MAX_DECISIONS) {
    const now = Date.now();
    for (const [k, v] of decisions) if (v.until <= now) decisions.delete(k);
    if (decisions.size >= MAX_DECISIONS) {
      for (const k of [...decisions.keys()].slice(0, MAX_DECISIONS / 8)) decisions.delete(k);
    }
  }
  decisions.delete(path);
  decisions.set(path, d);
}

/**
 * @param {string} path @param {'ask' | 'probe'} kind @param {string} href
 * @param {import('./rules.js').Rules} ruleset
 * @returns {Promise<Decision>}
 */
async function ask(path, kind, href, ruleset) {
  const no = (/** @type {number} */ ttl) => /** @type {Decision} */ ({ until: Date.now() + ttl, p2p: false });
  if (kind === 'probe') {
    const head = await fetch(href, { method: 'HEAD', credentials: 'same-origin', cache: 'no-store' });
    const len = head.headers.get('content-length');
    if (!head.ok || !looksDistributable(head.headers.get('content-type'), len === null ? null : Number(len), ruleset)) {
      return no(NEGATIVE_TTL_MS);
    }
  }
  const r = await fetch(`/.tuber/manifest?path=${encodeURIComponent(path)}`, { cache: 'no-store', credentials: 'same-origin' });
  if (!r.ok) return no(r.status >= 500 ? ERROR_TTL_MS : NEGATIVE_TTL_MS);
  const declared = Number(r.headers.get('content-length') ?? '0');
  if (declared > MAX_MANIFEST_BYTES) return no(NEGATIVE_TTL_MS);
  const bytes = new Uint8Array(await r.arrayBuffer());
  const manifest = decodeManifest(bytes);
  if (manifest.path !== path || manifest.length === 0) return no(NEGATIVE_TTL_MS);
  const text = new TextDecoder().decode(bytes);
  return { until: Date.now() + POSITIVE_TTL_MS, p2p: true, text, manifest };
}

/**
 * Asks the page to feed bytes [start, end] of `url`; resolves with the body
 * stream once the page accepts, rejects when it declines or stays silent.
 * @param {FetchEvent} event @param {Client} client @param {string} url @param {string} manifestText
 * @param {number} start @param {number} end @param {boolean} media for a media element
 * @returns {Promise<ReadableStream<Uint8Array>>}
 */
function openStream(event, client, url, manifestText, start, end, media) {
  return new Promise((resolve, reject) => {
    const channel = new MessageChannel();
    const port = channel.port1;
    const timer = setTimeout(() => {
      port.onmessage = null;
      port.close();
      reject(new Error('no page answered'));
    }, ACCEPT_TIMEOUT_MS);
    port.onmessage = (e) => {
      clearTimeout(timer);
      port.onmessage = null;
      if (e.data && e.data.t === 'accept') {
        resolve(body(event, client.id, port, url, start, end));
      } else {
        port.close();
        reject(new Error(`page declined: ${e.data && e.data.reason}`));
      }
    };
    client.postMessage({ tuber: 'fetch', url, manifest: manifestText, start, end, media }, [channel.port2]);
  });
}

/**
 * The response body: one chunk per pull from the page; after a failure, the
 * rest from the network, unless nobody reads it any more (the reader
 * cancelled, or the page that asked for it is gone).
 * @param {FetchEvent} event @param {string} clientId the feeding page @param {MessagePort} port @param {string} url
 * @param {number} start @param {number} end
 * @returns {ReadableStream<Uint8Array>}
 */
function body(event, clientId, port, url, start, end) {
  let pos = start;
  /** @type {ReadableStreamDefaultReader<Uint8Array> | null} */
  let network = null;
  let skip = 0;
  let finished = false;
  let ended = false;
  /** The reader cancelled: nothing more is read, from the page or the network. */
  let cancelled = false;
  // The page that feeds the body asked for it (a media element, a fetch()),
  // unlike a download, which another page feeds: when that page is gone, so
  // is the body's reader.
  const ownPage = clientId === event.clientId;
  /** @type {(value?: unknown) => void} */
  let done = () => {};
  // Keep the worker alive while the body streams.
  event.waitUntil(new Promise((r) => { done = r; }));
  /** @type {((m: any) => void) | null} */
  let waiter = null;
  port.onmessage = (e) => {
    const w = waiter;
    waiter = null;
    w?.(e.data);
  };
  /** The page's part is over. */
  const finish = () => {
    if (finished) return;
    finished = true;
    port.onmessage = null;
    port.close();
  };
  /** The whole body is over: the worker may stop. */
  const over = () => {
    finish();
    if (ended) return;
    ended = true;
    done();
  };

  /**
   * The page's answer to one pull; null when the reader cancelled first.
   * @returns {Promise<any>}
   */
  const pullFromPage = () => new Promise((resolve, reject) => {
    const t0 = Date.now();
    /** @type {ReturnType<typeof setInterval> | undefined} */
    let live;
    let settled = false;
    const stop = () => {
      settled = true;
      clearInterval(live);
    };
    const w = (/** @type {any} */ m) => {
      stop();
      resolve(m);
    };
    waiter = w;
    live = setInterval(async () => {
      const gone = !(await sw.clients.get(clientId));
      if (settled) return;
      if (gone || Date.now() - t0 > PULL_TIMEOUT_MS) {
        stop();
        if (waiter === w) waiter = null;
        reject(new PageError(gone ? 'page gone' : 'page too slow', gone));
      }
    }, LIVENESS_MS);
    port.postMessage({ t: 'pull' });
  });

  /** Stops reading the network's answer, if any. */
  const dropNetwork = () => {
    network?.cancel().catch(() => {});
  };

  /** Switches to the network for bytes [pos, end]. */
  const resume = async () => {
    finish();
    const r = await fetch(url, { headers: { range: `bytes=${pos}-${end}` }, credentials: 'same-origin', cache: 'no-store' });
    if (r.status === 206) {
      const cr = /^bytes (\d+)-/.exec(r.headers.get('content-range') ?? '');
      if (!cr || Number(cr[1]) !== pos) throw new Error('network answered another range');
    } else if (r.status === 200) {
      skip = pos;
    } else {
      throw new Error(`network answered ${r.status}`);
    }
    if (!r.body) throw new Error('no body');
    network = r.body.getReader();
  };

  /** @param {ReadableStreamDefaultController<Uint8Array>} controller */
  const fromNetwork = async (controller) => {
    const reader = /** @type {ReadableStreamDefaultReader<Uint8Array>} */ (network);
    for (;;) {
      const { done: eof, value } = await reader.read();
      if (cancelled) return;
      if (eof) {
        if (pos <= end) throw new Error('network body ended early');
        over();
        controller.close();
        return;
      }
      let chunk = value;
      if (skip > 0) {
        const drop = Math.min(skip, chunk.length);
        skip -= drop;
        chunk = chunk.subarray(drop);
      }
      chunk = chunk.subarray(0, Math.max(0, end + 1 - pos));
      if (chunk.length === 0) {
        if (pos > end) {
          reader.cancel().catch(() => {});
          over();
          controller.close();
          return;
        }
        continue;
      }
      pos += chunk.length;
      controller.enqueue(chunk);
      return;
    }
  };

  return new ReadableStream({
    async pull(controller) {
      try {
        if (network) return await fromNetwork(controller);
        let m;
        let gone = false;
        try {
          m = await pullFromPage();
        } catch (e) {
          m = null;
          gone = e instanceof PageError && e.gone;
        }
        // Cancelled while the pull waited: nobody reads the rest.
        if (cancelled) return;
        if (m && m.t === 'chunk' && m.data instanceof ArrayBuffer) {
          const b = new Uint8Array(m.data);
          if (b.length > 0 && pos + b.length <= end + 1) {
            pos += b.length;
            controller.enqueue(b);
            return;
          }
        } else if (m && m.t === 'end' && pos === end + 1) {
          over();
          controller.close();
          return;
        }
        // The page failed, went away or sent nonsense: the rest from the
        // network, unless the page that went away was the reader.
        if (!finished) port.postMessage({ t: 'cancel' });
        if (gone && ownPage) throw new Error('the page that asked for it is gone');
        await resume();
        // Cancelled while the network answered.
        if (cancelled) return dropNetwork();
        return await fromNetwork(controller);
      } catch (e) {
        over();
        if (!cancelled) controller.error(e);
      }
    },
    cancel() {
      cancelled = true;
      if (!finished) port.postMessage({ t: 'cancel' });
      // A pull waiting for the page ends now (and goes nowhere else).
      const w = waiter;
      waiter = null;
      w?.(null);
      over();
      dropNetwork();
    },
  });
}

/** A pull the page did not answer: it is gone, or too slow. */
class PageError extends Error {
  /** @param {string} message @param {boolean} gone */
  constructor(message, gone) {
    super(message);
    this.gone = gone;
  }
}

// Last: the hosted site worker's script runs after this module (imported
// next), and its fetch listeners are kept for the requests Tuber lets go.
if (hosted) site = captureSiteFetch(sw);
