// Tuber page script, injected by the hub into every HTML page as a classic
// script: synchronous, before the page's first `<script>` (so it runs
// before any page code), or deferred; it works as either. It sets
// `window.__tuber` at once:
//   ready    — resolves once the Service Worker controls this page and
//              signaling welcomed it: {degraded: false, peerId}; or, when the
//              Service Worker, WebRTC or the hub is unavailable, with
//              {degraded: true, reason} (at the latest after 10 s);
//   stats()  — {bytesFromPeers, bytesFromOrigin, piecesVerified,
//              piecesCorrupt, piecesHedged, hedgeWonByOrigin,
//              peersConnected, servedBytes};
//   peerId   — this page's peer id, once welcomed;
//   held     — {count, waiting, maxMs, released, releasedAt}: the early
//              requests held (below), how many wait now, the longest hold
//              in ms, why and when (`performance.now()`) the hold ended;
// and loads the runtime (client.js, an ES module beside this file). It
// catches the Service Worker's messages from the start, so none is lost
// while the module loads; if the module cannot load, the Service Worker's
// requests are declined and go to the network. Nothing here throws into
// the page.
//
// First visits: the hub moves the `src` of `<video>`/`<audio>` elements
// (and of their `<source>` children) whose URL looks distributable to
// `data-tuber-src`, so they fetch nothing before the Service Worker
// controls the page. This script puts every such `src` back as soon as it
// does (`controllerchange`; at once when it already does, on later
// visits), at once when there is no Service Worker or it cannot be
// registered or the runtime cannot load, and after MEDIA_DEADLINE_MS in
// any case (then the media loads from the network, as without Tuber).
// A media element's `src` goes back as an attribute (which starts its load
// algorithm; `autoplay` and `preload` take effect then, and a `play()` the
// page called meanwhile stays pending and resolves); deferred `<source>`s
// are replaced by copies with `src`, appended in order, which resumes the
// element's wait for a source without resetting it.
//
// Early requests: a player that feeds MSE (hls.js, dash.js, Shaka) makes
// its own XMLHttpRequest/fetch() requests at page load, which would go to
// the network before the Service Worker controls the page. When the page
// is not controlled at start and a Service Worker is usable, this script
// wraps `XMLHttpRequest.prototype.open/send/abort` and `window.fetch`: a
// same-origin GET (URL against `document.baseURI`; not `/.tuber/*` or
// `/.well-known/*`) whose path ends in one of the hub's distributable
// extensions (the script tag's `data-tuber-ext="mp4 m4s …"`, else the
// hub's defaults) is held, and every held request goes out, in the order
// it was made, at the same moments as deferred media: `controllerchange`
// (then the Service Worker answers it as any other), MEDIA_DEADLINE_MS
// after this script started (then the network), or at once when the
// Service Worker cannot be registered or the runtime cannot load. From
// then on the wrappers pass straight through. Never held: synchronous
// XHR, other methods and origins, and fetch()es that carry the runtime's
// own `x-tuber-origin` header. A held XHR keeps everything the page set
// on it (headers, `responseType`, `timeout`, `withCredentials`,
// listeners) since its native send() runs on release; `abort()` or a new
// `open()` drops it (it is never sent; `abort` fires `abort` and
// `loadend`). A held fetch() honours its signal while it waits; on
// release it is the native `fetch(input, init)` as the page made it. On
// any internal error a wrapper makes the native call. Not held:
// cross-origin requests, and those of workers and of frames without
// this script.
//
// A site's own Service Worker: the page's `navigator.serviceWorker.register()`
// is handed to client.js, which registers Tuber's worker hosting the site's
// (site-worker.js) and resolves with that real registration; calls made
// before client.js is there wait for it, and go to the browser as the page
// made them when it cannot load (or after 10 s). `navigator.serviceWorker.
// ready` then resolves once the host is active, as it would once the site's
// own worker is (at most 10 s later than the browser's own `ready`).
(() => {
  'use strict';
  /** @type {any} */
  const w = window;
  if (w.__tuber) return;
  /** A clock for the page (`performance.now()`), Date.now() without one. */
  const now = () => (typeof performance !== 'undefined' ? performance.now() : Date.now());
  /** @type {(v: {degraded: boolean, peerId?: string, reason?: string}) => void} */
  let resolveReady = () => {};
  const ready = new Promise((resolve) => {
    resolveReady = resolve;
  });
  const zero = () => ({
    bytesFromPeers: 0, bytesFromOrigin: 0, piecesVerified: 0, piecesCorrupt: 0, piecesHedged: 0, hedgeWonByOrigin: 0,
    peersConnected: 0, servedBytes: 0,
  });
  const api = {
    ready,
    stats: zero,
    /** @type {string | undefined} */
    peerId: undefined,
    debug: false,
    _resolveReady: resolveReady,
    /** @type {MessageEvent[]} */
    _early: [],
    /** @type {((e: MessageEvent) => void) | null} */
    _onMessage: null,
    _failed: false,
    /** Releases held requests and puts back the `src` of media the hub deferred (client.js calls it when the Service Worker cannot register). */
    _restoreMedia: () => {},
    /** @type {WeakSet<Element>} media whose `src` came back while the Service Worker controlled the page */
    _restoredUnderControl: new WeakSet(),
    /** @type {Array<{href: string, options: any, resolve: (r: any) => void, reject: (e: unknown) => void}>} the page's own register() calls that wait for client.js */
    _siteCalls: [],
    /** @type {((href: string, options: any) => Promise<any>) | null} client.js's register() for the page's own worker */
    _registerSite: null,
    /** @type {((url: string | URL, options?: any) => Promise<any>) | null} the browser's register() */
    _nativeRegister: null,
    /** Host registrations under way (client.js counts them). */
    _hostsPending: 0,
    /** A host registration succeeded in this page. */
    _hostWanted: false,
    /**
     * Early requests held until the Service Worker controls the page: how many, how many wait now, the longest
     * hold (ms), why the hold ended (`control`, `deadline`, `no service worker`, `runtime failed`; null while it
     * lasts or when nothing was wrapped) and when (`performance.now()`).
     * @type {{count: number, waiting: number, maxMs: number, released: string | null, releasedAt: number | null}}
     */
    held: { count: 0, waiting: 0, maxMs: 0, released: null, releasedAt: null },
  };
  w.__tuber = api;
  setTimeout(() => resolveReady({ degraded: true, reason: 'timeout' }), 10000);

  // ---- Deferred media (data-tuber-src) ----------------------------------
  const DEFERRED_ATTR = 'data-tuber-src';
  const MEDIA_DEADLINE_MS = 4000;
  /** Media elements given back their `src` while the Service Worker controlled the page. */
  const underControl = new WeakSet();
  let mediaDue = false;
  /** @param {Element | null} el @returns {el is HTMLMediaElement} */
  const isMedia = (el) => !!el && (el.localName === 'video' || el.localName === 'audio');
  const controlled = () => {
    try {
      return !!navigator.serviceWorker.controller;
    } catch {
      return false;
    }
  };
  /** Puts back every deferred `src` (idempotent; later calls only see what is left). */
  const restoreMedia = () => {
    mediaDue = true;
    try {
      const under = 'serviceWorker' in navigator && controlled();
      /** @type {Map<HTMLMediaElement, Array<[Element, string]>>} */
      const sources = new Map();
      for (const el of Array.from(document.querySelectorAll('[' + DEFERRED_ATTR + ']'))) {
        const url = el.getAttribute(DEFERRED_ATTR) ?? '';
        el.removeAttribute(DEFERRED_ATTR);
        if (isMedia(el)) {
          // A page script may have set a src meanwhile: it wins.
          if (!el.hasAttribute('src')) el.setAttribute('src', url);
          if (under) underControl.add(el);
        } else if (el.localName === 'source' && isMedia(el.parentElement) && !el.parentElement.hasAttribute('src')) {
          const media = el.parentElement;
          const list = sources.get(media) ?? [];
          list.push([el, url]);
          sources.set(media, list);
        } else if (!el.hasAttribute('src')) {
          el.setAttribute('src', url);
        }
      }
      for (const [media, list] of sources) {
        if (under) underControl.add(media);
        for (const [el, url] of list) {
          const copy = /** @type {Element} */ (el.cloneNode(true));
          copy.setAttribute('src', url);
          el.remove();
          media.appendChild(copy);
        }
      }
    } catch (e) {
      console.debug('tuber: deferred media not restored:', e);
    }
  };
  api._restoredUnderControl = underControl;
  // With a non-deferred script, elements parsed after it are restored too.
  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', () => { if (mediaDue) restoreMedia(); }, { once: true });
  }
  let swUsable = false;
  try {
    swUsable = 'serviceWorker' in navigator && !!navigator.serviceWorker;
  } catch {
    swUsable = false;
  }

  // ---- Early requests (XMLHttpRequest, fetch) ----------------------------
  // A player's own requests for media (MSE: hls.js, dash.js, Shaka) made
  // before the Service Worker controls the page would go to the network:
  // same-origin GETs of a distributable extension wait for control instead.
  /** The hub's default `extensions` (`EXTENSIONS` in rules.js; web/test/early-requests.test.js keeps them equal). */
  const FALLBACK_EXTENSIONS = 'mp4 m4v m4s m4a webm mkv mov ts mp3 ogg oga ogv flac wav opus zip tar gz tgz xz bz2 zst 7z iso img dmg exe msi deb rpm apk appimage pdf bin wasm';
  /** Header of the runtime's own origin requests (`BYPASS_HEADER` in rules.js): never held. */
  const BYPASS_HEADER = 'x-tuber-origin';
  /** @typedef {{t0: number, go: () => void}} Held */
  /** @type {Held[]} requests held, in the order they were made */
  const queue = [];
  let holding = false;
  const held = api.held;
  /** @param {string} why */
  const releaseRequests = (why) => {
    if (!holding) return;
    holding = false;
    const t = now();
    held.released = why;
    held.releasedAt = t;
    held.waiting = 0;
    for (const h of queue.splice(0)) {
      held.maxMs = Math.max(held.maxMs, t - h.t0);
      try {
        h.go();
      } catch (e) {
        console.debug('tuber: a held request failed to start:', e);
      }
    }
  };
  /** @param {Held} h */
  const unqueue = (h) => {
    const i = queue.indexOf(h);
    if (i < 0) return false;
    queue.splice(i, 1);
    held.waiting = queue.length;
    held.maxMs = Math.max(held.maxMs, now() - h.t0);
    return true;
  };
  /** @param {Held} h */
  const enqueue = (h) => {
    queue.push(h);
    held.count += 1;
    held.waiting = queue.length;
  };
  if (swUsable && !controlled()) {
    try {
      /** @type {Set<string>} */
      let extensions = new Set(FALLBACK_EXTENSIONS.split(' '));
      const script = /** @type {HTMLScriptElement | null} */ (document.currentScript);
      const attr = script && script.getAttribute ? script.getAttribute('data-tuber-ext') : null;
      if (attr !== null && attr !== undefined) {
        extensions = new Set(String(attr).toLowerCase().split(/\s+/).map((e) => e.replace(/^\.+/, '')).filter((e) => e !== ''));
      }
      const origin = location.origin;
      const protocol = location.protocol;
      /** Whether a request waits for control: a same-origin GET of a distributable extension (as the hub's `extension()`). @param {unknown} method @param {unknown} url */
      const holdable = (method, url) => {
        if (String(method).toUpperCase() !== 'GET') return false;
        const u = new URL(String(url), document.baseURI);
        if (u.protocol !== protocol || u.origin !== origin) return false;
        const path = u.pathname.toLowerCase();
        if (path.startsWith('/.tuber/') || path.startsWith('/.well-known/')) return false;
        const last = path.slice(path.lastIndexOf('/') + 1);
        const dot = last.lastIndexOf('.');
        return dot > 0 && extensions.has(last.slice(dot + 1));
      };
      if (extensions.size > 0) {
        holding = true;
        if (typeof XMLHttpRequest === 'function') wrapXhr(XMLHttpRequest.prototype, holdable);
        if (typeof w.fetch === 'function') wrapFetch(holdable);
      }
    } catch (e) {
      console.debug('tuber: early requests are not held:', e);
    }
  }

  /**
   * XMLHttpRequest: an asynchronous open() of a holdable request marks it;
   * its send() is held (the native send() runs on release, so headers,
   * `responseType`, `timeout`, `withCredentials` and listeners, all set on
   * the real object, apply as set). abort() or a new open() drops it. A
   * held request that is aborted fires `abort` and `loadend` as a sent one
   * would (its `readyState` stays 1: it never left).
   * @param {XMLHttpRequest} proto @param {(method: unknown, url: unknown) => boolean} holdable
   */
  function wrapXhr(proto, holdable) {
    const nativeOpen = proto.open;
    const nativeSend = proto.send;
    const nativeAbort = proto.abort;
    /** XHRs whose current open() is holdable. @type {WeakSet<XMLHttpRequest>} */
    const marked = new WeakSet();
    /** @type {WeakMap<XMLHttpRequest, Held>} */
    const heldOf = new WeakMap();
    /** Drops a held send of `xhr`. @param {XMLHttpRequest} xhr */
    const drop = (xhr) => {
      const h = heldOf.get(xhr);
      if (!h) return false;
      heldOf.delete(xhr);
      return unqueue(h);
    };
    /** @this {XMLHttpRequest} @param {any[]} args */
    const open = function open(...args) {
      if (!holding) return nativeOpen.apply(this, /** @type {any} */ (args));
      try {
        marked.delete(this);
        drop(this);
      } catch {
        // pass through
      }
      const r = nativeOpen.apply(this, /** @type {any} */ (args));
      try {
        const async = args.length < 3 || !!args[2];
        if (async && holdable(args[0], args[1])) marked.add(this);
      } catch {
        // not held
      }
      return r;
    };
    /** @this {XMLHttpRequest} @param {any[]} args */
    const send = function send(...args) {
      if (!holding) return nativeSend.apply(this, /** @type {any} */ (args));
      if (heldOf.has(this)) {
        // As the native send() of a request already sent.
        throw new DOMException("Failed to execute 'send' on 'XMLHttpRequest': The object's state must be OPENED.", 'InvalidStateError');
      }
      try {
        if (marked.has(this)) {
          marked.delete(this);
          const xhr = this;
          /** @type {Held} */
          const h = {
            t0: now(),
            go: () => {
              heldOf.delete(xhr);
              nativeSend.apply(xhr, /** @type {any} */ (args));
            },
          };
          heldOf.set(xhr, h);
          enqueue(h);
          return undefined;
        }
      } catch {
        // pass through
      }
      return nativeSend.apply(this, /** @type {any} */ (args));
    };
    /** @this {XMLHttpRequest} */
    const abort = function abort() {
      if (!holding) return nativeAbort.call(this);
      let dropped = false;
      try {
        marked.delete(this);
        dropped = drop(this);
      } catch {
        // pass through
      }
      const r = nativeAbort.call(this);
      if (dropped) {
        try {
          for (const type of ['abort', 'loadend']) this.dispatchEvent(new ProgressEvent(type));
        } catch {
          // no events then
        }
      }
      return r;
    };
    proto.open = /** @type {any} */ (open);
    proto.send = send;
    proto.abort = abort;
  }

  /**
   * fetch(): a holdable request's promise waits; on release it follows
   * `nativeFetch(input, init)` as given. Its signal (`init.signal`, else the
   * Request's) rejects it while it waits, with the signal's reason.
   * @param {(method: unknown, url: unknown) => boolean} holdable
   */
  function wrapFetch(holdable) {
    const nativeFetch = w.fetch;
    /** @this {unknown} @param {any[]} args */
    const fetch = function fetch(...args) {
      if (!holding) return nativeFetch.apply(this, args);
      /** @type {AbortSignal | null} */
      let signal = null;
      try {
        const [input, init] = args;
        const req = typeof Request === 'function' && input instanceof Request ? input : null;
        const url = req ? req.url : input;
        const method = init && init.method !== undefined ? init.method : req ? req.method : 'GET';
        let hold = holdable(method, url);
        if (hold && req && req.headers.has(BYPASS_HEADER)) hold = false;
        if (hold && init && init.headers !== undefined && new Headers(init.headers).has(BYPASS_HEADER)) hold = false;
        if (hold) {
          signal = init && init.signal !== undefined ? init.signal : req ? req.signal : null;
          if (signal && signal.aborted) hold = false; // the native call rejects at once
        }
        if (hold) {
          const self = this;
          const s = signal;
          /** @type {(r: Promise<Response>) => void} */
          let resolve = () => {};
          /** @type {(e: unknown) => void} */
          let reject = () => {};
          /** @type {Promise<Response>} */
          const promise = new Promise((res, rej) => {
            resolve = res;
            reject = rej;
          });
          /** @type {Held} */
          const h = {
            t0: now(),
            go: () => {
              if (s) s.removeEventListener('abort', onAbort);
              try {
                resolve(nativeFetch.apply(self, args));
              } catch (e) {
                reject(e);
              }
            },
          };
          const onAbort = () => {
            if (!unqueue(h)) return;
            reject(s && s.reason !== undefined ? s.reason : new DOMException('The user aborted a request.', 'AbortError'));
          };
          if (s) s.addEventListener('abort', onAbort);
          enqueue(h);
          return promise;
        }
      } catch {
        // pass through
      }
      return nativeFetch.apply(this, args);
    };
    w.fetch = fetch;
  }
  // ---- The site's own Service Worker ------------------------------------
  const HOST_URL = /[?&]tuber-host=(?:classic|module)$/;
  /** The page's own register() calls, to the browser as made (no client.js). */
  const flushSiteCalls = () => {
    const native = api._nativeRegister;
    for (const c of api._siteCalls.splice(0)) {
      try {
        if (native) native(c.href, c.options).then(c.resolve, c.reject);
      } catch (e) {
        c.reject(e);
      }
    }
  };
  if (swUsable) {
    try {
      const container = navigator.serviceWorker;
      const nativeRegister = container.register;
      if (typeof nativeRegister === 'function') {
        /** @param {string | URL} url @param {any} [options] */
        const native = (url, options) => nativeRegister.call(container, url, options);
        api._nativeRegister = native;
        /** @param {string | URL} url @param {RegistrationOptions} [options] */
        const register = function register(url, options) {
          let href;
          let opts = options;
          try {
            href = new URL(String(url), document.baseURI).href;
            // Relative to this document now, whenever client.js registers.
            if (options && typeof options === 'object' && options.scope !== undefined) {
              opts = { ...options, scope: new URL(String(options.scope), document.baseURI).href };
            }
          } catch {
            return native(url, options);
          }
          if (api._registerSite) return api._registerSite(href, opts);
          if (api._failed) return native(url, options);
          return new Promise((resolve, reject) => {
            api._siteCalls.push({ href, options: opts, resolve, reject });
          });
        };
        Object.defineProperty(container, 'register', { value: register, writable: true, configurable: true });
        setTimeout(() => { if (!api._registerSite) flushSiteCalls(); }, 10000);
      }
      const readyOf = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(container), 'ready')?.get;
      if (readyOf) {
        /** @param {ServiceWorkerRegistration} reg */
        const hostActive = async (reg) => {
          const t0 = Date.now();
          while ((api._hostsPending > 0 || api._siteCalls.length > 0 || api._hostWanted)
            && !(reg.active && HOST_URL.test(reg.active.scriptURL)) && Date.now() - t0 < 10000) {
            await new Promise((r) => setTimeout(r, 50));
          }
          return reg;
        };
        /** @type {Promise<ServiceWorkerRegistration> | null} */
        let ready = null;
        Object.defineProperty(container, 'ready', {
          configurable: true,
          enumerable: true,
          get() {
            if (!ready) ready = readyOf.call(container).then(hostActive);
            return ready;
          },
        });
      }
    } catch (e) {
      console.debug('tuber: the page\'s own register() is not wrapped:', e);
    }
  }

  /** Releases held requests and puts back deferred media. @param {string} why */
  const giveBack = (why) => {
    releaseRequests(why);
    restoreMedia();
  };
  api._restoreMedia = () => giveBack('no service worker');
  if (!swUsable || controlled()) {
    restoreMedia();
  } else {
    try {
      navigator.serviceWorker.addEventListener('controllerchange', () => giveBack('control'));
    } catch {
      giveBack('no service worker');
    }
    setTimeout(() => giveBack('deadline'), MEDIA_DEADLINE_MS);
  }
  try {
    api.debug = /(?:^|[?&])tuber-debug(?:=|&|$)/.test(location.search) || localStorage.getItem('tuber-debug') === '1';
  } catch {
    // storage may be blocked
  }

  /** @param {MessageEvent} e */
  const decline = (e) => {
    const port = e.ports && e.ports[0];
    if (!port) return;
    try {
      port.postMessage({ t: 'decline', reason: 'page runtime unavailable' });
      port.close();
    } catch {
      // gone
    }
  };

  if ('serviceWorker' in navigator) {
    try {
      navigator.serviceWorker.addEventListener('message', (e) => {
        if (!e.data || e.data.tuber !== 'fetch') return;
        if (api._onMessage) api._onMessage(e);
        else if (api._failed || api._early.length >= 64) decline(e);
        else api._early.push(e);
      });
      navigator.serviceWorker.startMessages();
    } catch {
      // no Service Worker here: the page works as without Tuber
    }
  }

  let base = '/.tuber/client/';
  try {
    const src = document.currentScript && /** @type {HTMLScriptElement} */ (document.currentScript).src;
    if (src) base = new URL('.', src).href;
  } catch {
    // keep the default
  }
  import(base + 'client.js')
    .then((m) => m.start(api))
    .catch((err) => {
      api._failed = true;
      giveBack('runtime failed');
      flushSiteCalls();
      for (const e of api._early.splice(0)) decline(e);
      console.debug('tuber: page runtime not started:', err);
      resolveReady({ degraded: true, reason: 'runtime failed to load' });
    });
})();
