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
 * @property {string | undefined} peerId
 * @property {(value: {degraded: boolean, peerId?: string, reason?: string}) => void} _resolveReady
 * @property {Array<MessageEvent>} _early Service Worker messages that came before this module
 * @property {((e: MessageEvent) => void) | null} _onMessage
 * @property {() => void} [_restoreMedia] puts back the `src` of media the hub deferred
 * @property {WeakSet<Element>} [_restoredUnderControl] media whose `src` came back under the Service Worker
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
    ? waitForControl(() => {
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
    peersConnected: swarm ? swarm.peersConnected : 0,
    servedBytes: swarm ? swarm.servedBytes : 0,
  });
  swarm?.start();
  if (swarm) setInterval(() => swarm?.reapIdle(), 15_000);

  /** @type {Set<ResourceStream>} */
  const streams = new Set();
  /** @type {Map<string, import('./fetcher.js').Resource>} */
  const resources = new Map();

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
        res = { manifest, url: d.url };
        resources.set(key, res);
      }
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
 * @param {() => void} onTakeover
 * @returns {Promise<boolean>}
 */
async function waitForControl(onTakeover) {
  const container = navigator.serviceWorker;
  const changed = new Promise((resolve) => container.addEventListener('controllerchange', () => {
    try {
      onTakeover();
    } catch {
      // best effort
    }
    resolve(undefined);
  }, { once: true }));
  try {
    const script = new URL('./sw.js', import.meta.url).href;
    await container.register(script, { scope: '/', type: 'module', updateViaCache: 'none' });
  } catch (e) {
    console.debug('tuber: service worker not registered:', e);
    return false;
  }
  if (container.controller) return true;
  await Promise.race([changed, new Promise((r) => setTimeout(r, READY_TIMEOUT_MS))]);
  return container.controller !== null;
}
