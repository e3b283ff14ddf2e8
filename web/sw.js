// Tuber Service Worker, served by the hub at /.tuber/sw.js with root scope.
//
// Placeholder until the browser peer lands: it installs, takes control of
// open pages at once, and lets every request go to the network untouched,
// so a site behind the hub behaves exactly as without it.
self.addEventListener('install', (event) => {
  event.waitUntil(self.skipWaiting());
});

self.addEventListener('activate', (event) => {
  event.waitUntil(self.clients.claim());
});
