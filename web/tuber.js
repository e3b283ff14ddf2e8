// Tuber page script, injected by the hub into every HTML page.
//
// Placeholder until the browser peer lands: it registers the Service Worker
// (root scope) and does nothing else. Failure to register (old browser,
// private mode, plain-HTTP origin) is harmless: the page works as before.
(() => {
  'use strict';
  if (!('serviceWorker' in navigator)) return;
  navigator.serviceWorker
    .register('/.tuber/sw.js', { scope: '/' })
    .catch((err) => console.debug('tuber: service worker not registered:', err));
})();
