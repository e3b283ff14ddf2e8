// Which requests the Service Worker considers for peer-to-peer delivery,
// before it asks the hub.
//
// The hub decides what is distributable (crates/tuber-hub/src/proxy/
// distributable.rs), but its manifest endpoint answers for any path the
// upstream serves, and computing a manifest reads the whole resource. So the
// Service Worker only asks for requests that look distributable by the
// hub's *default* rules (a copy of `DistributeConfig::default()`):
// - media elements (`<video>`, `<audio>`) always;
// - a path whose extension is one of the default extensions;
// - a plain `fetch()`/XHR of any other path only after a `HEAD` shows a body
//   of at least 1 MiB with a default content type.
// Everything else (documents, scripts, styles, fonts, images without such an
// extension, workers, …) is never touched.

/** `min_size` of the hub's defaults. */
export const MIN_SIZE = 1024 * 1024;

/** `content_types` of the hub's defaults (prefixes, lowercase). */
export const CONTENT_TYPES = [
  'video/', 'audio/', 'image/', 'application/octet-stream', 'application/zip', 'application/x-tar',
  'application/gzip', 'application/x-xz', 'application/x-7z-compressed', 'application/vnd.debian.binary-package',
  'application/x-iso9660-image', 'application/pdf', 'application/wasm',
];

/** `extensions` of the hub's defaults (lowercase, no dot). */
export const EXTENSIONS = [
  'mp4', 'm4v', 'm4s', 'm4a', 'webm', 'mkv', 'mov', 'ts', 'mp3', 'ogg', 'oga', 'ogv', 'flac', 'wav', 'opus', 'zip',
  'tar', 'gz', 'tgz', 'xz', 'bz2', 'zst', '7z', 'iso', 'img', 'dmg', 'exe', 'msi', 'deb', 'rpm', 'apk', 'appimage',
  'pdf', 'bin', 'wasm',
];

/** Request destinations that are never distributable. */
const NEVER = new Set([
  'document', 'iframe', 'frame', 'script', 'style', 'font', 'worker', 'sharedworker', 'serviceworker', 'manifest',
  'report', 'xslt', 'audioworklet', 'paintworklet', 'json', 'webidentity', 'sharedstorageworklet', 'speculationrules',
]);

/** Header the page script puts on its own origin requests: pass them through. */
export const BYPASS_HEADER = 'x-tuber-origin';

/**
 * The lowercase extension of a URL path (without the query), or ''.
 * @param {string} pathname
 */
export function extensionOf(pathname) {
  const last = pathname.slice(pathname.lastIndexOf('/') + 1);
  const dot = last.lastIndexOf('.');
  return dot > 0 ? last.slice(dot + 1).toLowerCase() : '';
}

/**
 * How the Service Worker treats a request, from what it can see without
 * any network: `skip` (never touch), `ask` (ask the hub for a manifest) or
 * `probe` (HEAD first).
 * @param {{method: string, mode: string, destination: string, url: string, headers: {has(name: string): boolean}}} req
 * @param {string} ownOrigin the Service Worker's origin
 * @returns {'skip' | 'ask' | 'probe'}
 */
export function classify(req, ownOrigin) {
  if (req.method !== 'GET' || req.mode === 'navigate' || req.mode === 'websocket') return 'skip';
  if (req.headers.has(BYPASS_HEADER)) return 'skip';
  let url;
  try {
    url = new URL(req.url);
  } catch {
    return 'skip';
  }
  if (url.origin !== ownOrigin) return 'skip';
  if (url.pathname.startsWith('/.tuber/') || url.pathname.startsWith('/.well-known/')) return 'skip';
  if (url.pathname === '/metrics') return 'skip';
  const dest = req.destination;
  if (NEVER.has(dest)) return 'skip';
  if (dest === 'video' || dest === 'audio') return 'ask';
  if (EXTENSIONS.includes(extensionOf(url.pathname))) return 'ask';
  if (dest === '') return 'probe';
  return 'skip';
}

/**
 * Whether a HEAD answer looks distributable by the default rules.
 * @param {string | null} contentType
 * @param {number | null} length
 */
export function looksDistributable(contentType, length) {
  if (length === null || !(length >= MIN_SIZE)) return false;
  const ct = (contentType ?? '').trim().toLowerCase();
  return ct !== '' && CONTENT_TYPES.some((p) => ct.startsWith(p));
}
