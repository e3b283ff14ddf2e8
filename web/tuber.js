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
  };
  w.__tuber = api;
  setTimeout(() => resolveReady({ degraded: true, reason: 'timeout' }), 10000);
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
      for (const e of api._early.splice(0)) decline(e);
      console.debug('tuber: page runtime not started:', err);
      resolveReady({ degraded: true, reason: 'runtime failed to load' });
    });
})();
