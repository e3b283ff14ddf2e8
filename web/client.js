// The page runtime, loaded by tuber.js: joins the swarm as a browser peer,
// answers the Service Worker's requests for distributable resources with
// verified pieces (from peers, else the origin), keeps recent pieces in
// memory and serves them to other peers.
//
// The Service Worker ↔ page protocol (one MessageChannel per response):
//   SW → page (postMessage to the client, port attached):
//     {tuber: 'fetch', url, manifest: <manifest JSON text>, start, end}
//   page → SW on the port: {t: 'accept'} or {t: 'decline', reason}
//   SW → page: {t: 'pull'} (one chunk per pull), {t: 'cancel'}
//   page → SW: {t: 'chunk', data: ArrayBuffer} (transferred), {t: 'end'},
//     {t: 'error', message}
// `start`/`end` are the inclusive byte range of the response body.

import { decodeDescriptor } from './proto/descriptor.js';
import { decodeManifest } from './proto/manifest.js';
import { ByteLru } from './lru.js';
import { Swarm } from './swarm.js';
import { PieceFetcher, ResourceStream, Stats } from './fetcher.js';
import { errorText } from './peer.js';
import { hostPlan, hostScriptURL, hostUpdateViaCache, isTuberScript } from './site-worker.js';

/** Memory for recent verified pieces (served to other peers too). */
export const CACHE_BYTES = 64 * 1024 * 1024;
/** Responses being fed at once, at most; more are declined (network). */
const MAX_STREAMS = 16;
/** A response whose Service Worker stopped pulling for this long is dropped. */
const STREAM_IDLE_MS = 60_000;
/** Resources (manifest + URL) remembered for sharing between reads. */
const MAX_RESOURCES = 64;
const READY_TIMEOUT_MS = 10_000;

/**
 * @typedef {object} TuberApi
 * @property {Promise<{degraded: boolean, peerId?: string, reason?: string}>} ready
 * @property {() => Record<string, number>} stats
 * @property {() => Promise<Array<Record<string, unknown>>>} [paths] the ICE path of each open link (tests)
 * @property {string | undefined} peerId
 * @property {(value: {degraded: boolean, peerId?: string, reason?: string}) => void} _resolveReady
 * @property {Array<MessageEvent>} _early Service Worker messages that came before this module
 * @property {((e: MessageEvent) => void) | null} _onMessage
 * @property {() => void} [_restoreMedia] puts back the `src` of media the hub deferred
 * @property {WeakSet<Element>} [_restoredUnderControl] media whose `src` came back under the Service Worker
 * @property {Array<{href: string, options: any, resolve: (r: any) => void, reject: (e: unknown) => void}>} [_siteCalls]
 *   the page's own register() calls made before this module ran
 * @property {((href: string, options: any) => Promise<any>) | null} [_registerSite] handles the page's own register()
 * @property {((url: string | URL, options?: any) => Promise<any>) | null} [_nativeRegister] the browser's register()
 * @property {number} [_hostsPending] host registrations under way
 * @property {boolean} [_hostWanted] a host registration succeeded in this page
 * @property {boolean} [debug]
 */

/**
 * @param {TuberApi} api
 */
export async function start(api) {
  const log = (/** @type {unknown[]} */ ...args) => {
    if (api.debug) console.debug('tuber:', ...args);
  };
  const hasRtc = typeof globalThis.RTCPeerConnection === 'function';
  const hasSw = 'serviceWorker' in navigator;
  const stats = new Stats();
  /** @type {Swarm | null} */
  let swarm = null;
  /** @type {ByteLru<Uint8Array>} */
  const cache = new ByteLru(CACHE_BYTES, (key) => swarm?.announceLost(key));

  let controlled = false;
  let welcomed = false;
  let settled = false;
  /** @param {boolean} degraded @param {string} [reason] */
  const settle = (degraded, reason) => {
    if (settled) return;
    settled = true;
    /** @type {{degraded: boolean, peerId?: string, reason?: string}} */
    const v = { degraded };
    if (api.peerId) v.peerId = api.peerId;
    if (reason) v.reason = reason;
    api._resolveReady(v);
  };
  setTimeout(() => settle(true, 'timeout'), READY_TIMEOUT_MS);

  // Media elements that started loading before the Service Worker took
  // over (the first visit): Chrome refuses to mix the network's answers for
  // one media resource with the worker's own, so they stay on the network.
  // Media the hub deferred (data-tuber-src) and tuber.js gave back its
  // `src` under the worker's control never started on the network.
  /** @type {Set<string>} */
  const nativeMedia = new Set();
  const restored = api._restoredUnderControl;
  /** @type {Promise<boolean>} */
  const swControl = hasSw
    ? waitForControl(api, log, () => {
      for (const el of document.querySelectorAll('video, audio')) {
        const m = /** @type {HTMLMediaElement} */ (el);
        if (restored?.has(m) || m.hasAttribute('data-tuber-src')) continue;
        if (m.networkState !== HTMLMediaElement.NETWORK_EMPTY && m.currentSrc) nativeMedia.add(m.currentSrc);
      }
    })
    : Promise.resolve(false);
  // No Service Worker after all: deferred media loads from the network now.
  swControl.then((ok) => {
    if (!ok) api._restoreMedia?.();
  });

  // The swarm descriptor: signaling URL, ICE servers, piece size.
  /** @type {import('./proto/descriptor.js').SwarmDescriptor | null} */
  let descriptor = null;
  try {
    const r = await fetch('/.well-known/tuber', { credentials: 'same-origin', cache: 'no-cache' });
    if (r.ok) descriptor = decodeDescriptor(new Uint8Array(await r.arrayBuffer()));
    else log('no swarm descriptor:', r.status);
  } catch (e) {
    log('swarm descriptor refused:', errorText(e));
  }

  if (hasRtc && descriptor) {
    swarm = new Swarm({
      descriptor,
      pieces: cache,
      log,
      onWelcome: (id) => {
        api.peerId = id;
        welcomed = true;
        if (controlled) settle(false);
        else if (!hasSw) settle(true, 'no service worker');
      },
      onLinkReady: (peer) => fetcher.linkChanged(peer, true),
      onLinkClosed: (peer, why) => fetcher.linkChanged(peer, false, why),
    });
  }
  const fetcher = new PieceFetcher({ swarm, cache, stats, pieceSize: descriptor?.piece_size ?? 262144, log });
  api.stats = () => ({
    bytesFromPeers: stats.bytesFromPeers,
    bytesFromOrigin: stats.bytesFromOrigin,
    piecesVerified: stats.piecesVerified,
    piecesCorrupt: stats.piecesCorrupt,
    piecesHedged: stats.piecesHedged,
    hedgeWonByOrigin: stats.hedgeWonByOrigin,
    peersConnected: swarm ? swarm.peersConnected : 0,
    servedBytes: swarm ? swarm.servedBytes : 0,
  });
  api.paths = () => (swarm ? swarm.paths() : Promise.resolve([]));
  swarm?.start();
  if (swarm) setInterval(() => swarm?.reapIdle(), 15_000);

  /** @type {Set<ResourceStream>} */
  const streams = new Set();
  /** @type {Map<string, import('./fetcher.js').Resource>} */
  const resources = new Map();
  /** Paths of HLS/DASH segments (the hub's `SEGMENT_EXTENSIONS`, plus fMP4's `.mp4`). */
  const SEGMENT_PATH = /\.(?:ts|m4s|cmfv|cmfa|aac|mp4|m4a|m4v)$/i;

  /**
   * @param {{url: string, manifest: string, start: number, end: number, media?: boolean}} d
   * @param {MessagePort} port
   */
  const onFetch = (d, port) => {
    /** @param {string} reason */
    const decline = (reason) => {
      port.postMessage({ t: 'decline', reason });
      port.close();
    };
    if (d.media && nativeMedia.has(d.url)) return decline('native');
    if (streams.size >= MAX_STREAMS) return decline('too many responses at once');
    let res;
    try {
      const manifest = decodeManifest(d.manifest);
      const key = `${d.url}\n${manifest.version}\n${manifest.length}\n${manifest.pieces[0] ?? ''}`;
      res = resources.get(key);
      if (!res) {
        if (resources.size >= MAX_RESOURCES) resources.delete(/** @type {string} */ (resources.keys().next().value));
        res = { manifest, url: d.url, hedge: false };
        resources.set(key, res);
      }
      // Hedge late pieces only for stream segments an MSE player fetches
      // (hls.js and the like hold a segment or two of buffer, and a late
      // segment stalls them): a media element reading a whole file
      // buffers far ahead and a download only gets slower, and hedging
      // those would turn a peer that is merely slow into hub traffic
      // (measured: 12 hedges in one <video> under load, 2.4 MB).
      if (!d.media && SEGMENT_PATH.test(new URL(d.url).pathname)) res.hedge = true;
      if (!(Number.isSafeInteger(d.start) && Number.isSafeInteger(d.end) && d.start >= 0 && d.end < manifest.length)) {
        return decline('bad range');
      }
    } catch (e) {
      return decline(`bad manifest: ${errorText(e)}`);
    }
    const stream = new ResourceStream(fetcher, res, d.start, d.end);
    streams.add(stream);
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    let idle;
    const close = () => {
      clearTimeout(idle);
      stream.cancel();
      streams.delete(stream);
      port.onmessage = null;
      port.close();
    };
    const touch = () => {
      clearTimeout(idle);
      idle = setTimeout(close, STREAM_IDLE_MS);
    };
    touch();
    port.onmessage = (e) => {
      touch();
      const t = e.data && e.data.t;
      if (t === 'cancel') {
        close();
      } else if (t === 'pull') {
        stream.pull().then(
          (chunk) => {
            if (stream.cancelled) return;
            if (chunk === null) {
              port.postMessage({ t: 'end' });
              close();
              return;
            }
            const copy = chunk.slice();
            port.postMessage({ t: 'chunk', data: copy.buffer }, [copy.buffer]);
          },
          (err) => {
            if (stream.cancelled) return;
            port.postMessage({ t: 'error', message: errorText(err) });
            close();
          },
        );
      }
    };
    port.postMessage({ t: 'accept' });
  };

  /** @param {MessageEvent} e */
  const onMessage = (e) => {
    const d = e.data;
    const port = e.ports && e.ports[0];
    if (!d || d.tuber !== 'fetch' || !port) return;
    try {
      onFetch(d, port);
    } catch (err) {
      log('cannot answer the service worker', err);
      try {
        port.postMessage({ t: 'decline', reason: errorText(err) });
      } catch {
        // the port is gone
      }
    }
  };
  api._onMessage = onMessage;
  for (const e of api._early.splice(0)) onMessage(e);

  addEventListener('pagehide', () => swarm?.stop());

  controlled = await swControl;
  if (!controlled) settle(true, hasSw ? 'service worker not in control' : 'no service worker');
  else if (!hasRtc) settle(true, 'no WebRTC');
  else if (!descriptor) settle(true, 'no swarm descriptor');
  else if (welcomed) settle(false);
}

/**
 * Registers the Service Worker (root scope) and waits until it controls
 * this page (`controllerchange` after its `clients.claim()`), at most 10 s.
 * `onTakeover` runs when control arrives during this page's life.
 *
 * A site's own worker is hosted, never replaced (site-worker.js): the
 * page's own `register()` calls (tuber.js hands them here) register the
 * host in its place, and a site worker already registered for this page
 * without Tuber (registered before Tuber fronted the site, or by a page
 * script that ran before tuber.js) is re-registered as a host, classic
 * first, then as a module. Tuber's own worker is registered only where no
 * site worker is (a site worker Tuber cannot host, for instance one whose
 * scope is wider than its directory, keeps its registration, and Tuber
 * stays out of those pages).
 * @param {TuberApi} api @param {(...args: unknown[]) => void} log
 * @param {() => void} onTakeover
 * @returns {Promise<boolean>} whether a Tuber worker (its own or a host) controls the page
 */
async function waitForControl(api, log, onTakeover) {
  const container = navigator.serviceWorker;
  const origin = location.origin;
  const ours = (/** @type {ServiceWorker | null | undefined} */ w) => !!w && isTuberScript(w.scriptURL, origin);
  const changed = new Promise((resolve) => {
    const on = () => {
      if (!ours(container.controller)) return;
      container.removeEventListener('controllerchange', on);
      try {
        onTakeover();
      } catch {
        // best effort
      }
      resolve(undefined);
    };
    container.addEventListener('controllerchange', on);
  });
  const native = api._nativeRegister ?? ((/** @type {string | URL} */ url, /** @type {any} */ options) => container.register(url, options));
  /** Site worker scripts Tuber tried to host in this page. @type {Set<string>} */
  const tried = new Set();
  /** @param {() => Promise<any>} fn */
  const counted = async (fn) => {
    api._hostsPending = (api._hostsPending ?? 0) + 1;
    try {
      const reg = await fn();
      if (reg) api._hostWanted = true;
      return reg;
    } finally {
      api._hostsPending = (api._hostsPending ?? 1) - 1;
    }
  };
  /** The page's own register(): the host in its place; what it asked when that fails. @param {string} href @param {any} options */
  const registerSite = async (href, options) => {
    const plan = hostPlan(href, options, origin);
    if (!plan) return native(href, options);
    tried.add(href.split('#')[0]);
    try {
      return await counted(() => native(plan.url, plan.options));
    } catch (e) {
      log('cannot host the site\'s worker, registering it as it asked:', errorText(e));
      return native(href, options);
    }
  };
  /** A site worker registered without Tuber: re-registered as a host. @param {ServiceWorkerRegistration} reg @param {ServiceWorker} worker */
  const adopt = (reg, worker) => counted(async () => {
    const script = worker.scriptURL;
    if (tried.has(script) || !hostPlan(script, {}, origin)) return null;
    tried.add(script);
    for (const type of /** @type {const} */ (['classic', 'module'])) {
      try {
        return await native(hostScriptURL(script, type), { scope: reg.scope, type, updateViaCache: hostUpdateViaCache(reg.updateViaCache) });
      } catch (e) {
        log(`cannot host the site's worker ${script} as ${type}:`, errorText(e));
      }
    }
    return null;
  });
  const newest = (/** @type {ServiceWorkerRegistration} */ r) => r.installing ?? r.waiting ?? r.active;
  /** @type {WeakSet<ServiceWorkerRegistration>} */
  const watched = new WeakSet();
  /** A site worker that starts installing without Tuber is hosted. @param {ServiceWorkerRegistration} reg */
  const watch = (reg) => {
    if (watched.has(reg)) return;
    watched.add(reg);
    reg.addEventListener('updatefound', () => {
      const w = reg.installing;
      if (w && !ours(w)) adopt(reg, w).catch(() => {});
    });
  };

  let own = true;
  try {
    let reg = await container.getRegistration();
    // Registered, but no worker yet: someone's registration is under way.
    if (reg && !newest(reg)) {
      const r = reg;
      await new Promise((resolve) => {
        r.addEventListener('updatefound', resolve, { once: true });
        setTimeout(resolve, 3000);
      });
      reg = await container.getRegistration();
    }
    const w = reg && newest(reg);
    if (reg && w) {
      watch(reg);
      if (!ours(w)) {
        // The site's own worker, without Tuber: hosted (or left alone).
        own = false;
        await adopt(reg, w);
      } else if (reg.scope === `${origin}/` && !w.scriptURL.includes('/.tuber/')) {
        own = false; // a host at the root already
      }
    }
  } catch (e) {
    log('registrations not readable:', errorText(e));
  }
  // The page's own register() calls from now on, and those that waited.
  const waiting = api._siteCalls?.splice(0) ?? [];
  api._registerSite = registerSite;
  if (waiting.length > 0) own = false;
  for (const c of waiting) registerSite(c.href, c.options).then(c.resolve, c.reject);
  if (own) {
    try {
      const script = new URL('./sw.js', import.meta.url).href;
      const reg = await native(script, { scope: '/', type: 'module', updateViaCache: 'none' });
      watch(reg);
    } catch (e) {
      console.debug('tuber: service worker not registered:', e);
      if (waiting.length === 0) return false;
    }
  }
  if (ours(container.controller)) return true;
  await Promise.race([changed, new Promise((r) => setTimeout(r, READY_TIMEOUT_MS))]);
  return ours(container.controller);
}
