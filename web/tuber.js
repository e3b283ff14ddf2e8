// Tuber page script, injected by the hub into every HTML page as a classic
// deferred script. It sets `window.__tuber` at once:
//   ready    — resolves once the Service Worker controls this page and
//              signaling welcomed it: {degraded: false, peerId}; or, when the
//              Service Worker, WebRTC or the hub is unavailable, with
//              {degraded: true, reason} (at the latest after 10 s);
//   stats()  — {bytesFromPeers, bytesFromOrigin, piecesVerified,
//              piecesCorrupt, peersConnected, servedBytes};
//   peerId   — this page's peer id, once welcomed.
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
  /** @type {(v: {degraded: boolean, peerId?: string, reason?: string}) => void} */
  let resolveReady = () => {};
  const ready = new Promise((resolve) => {
    resolveReady = resolve;
  });
  const zero = () => ({
    bytesFromPeers: 0, bytesFromOrigin: 0, piecesVerified: 0, piecesCorrupt: 0, peersConnected: 0, servedBytes: 0,
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
    /** Puts back the `src` of media the hub deferred (client.js calls it when the Service Worker cannot register). */
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
  api._restoreMedia = restoreMedia;
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

  if (!swUsable || controlled()) {
    restoreMedia();
  } else {
    try {
      navigator.serviceWorker.addEventListener('controllerchange', restoreMedia);
    } catch {
      restoreMedia();
    }
    setTimeout(restoreMedia, MEDIA_DEADLINE_MS);
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
      restoreMedia();
      flushSiteCalls();
      for (const e of api._early.splice(0)) decline(e);
      console.debug('tuber: page runtime not started:', err);
      resolveReady({ degraded: true, reason: 'runtime failed to load' });
    });
})();
