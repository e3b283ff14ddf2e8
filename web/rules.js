// Which requests the Service Worker considers for peer-to-peer delivery,
// before it asks the hub.
//
// The hub decides what is distributable (crates/tuber-hub/src/proxy/
// distributable.rs) from its `[distribute]` settings, which it serves at
// `/.tuber/rules`; the Service Worker reads them once per lifetime
// (`loadRules`, falling back to the hub's defaults below) and applies them
// with the hub's semantics. Its manifest endpoint answers for any path the
// upstream serves that no `exclude` pattern matches, and computing a manifest
// reads the whole resource, so the Service Worker only asks about:
// - nothing that an `exclude` pattern matches;
// - a path an `include` pattern matches (unless its destination is one that
//   is never distributable, below);
// - media elements (`<video>`, `<audio>`) always;
// - a path whose extension is one of the rules' extensions;
// - a plain `fetch()`/XHR of any other path only after a `HEAD` shows a body
//   of at least `min_size` with one of the rules' content types.
// Everything else (documents, scripts, styles, fonts, images without such an
// extension, workers, …) is never touched.
//
// Patterns are the hub's: `*` matches any run of characters (also none, also
// `/`), everything else matches itself; a pattern that contains `?` is
// matched against the path with its query, any other against the path alone.

/**
 * The hub's distributable rules, as `/.tuber/rules` serves them.
 * @typedef {{min_size: number, content_types: string[], extensions: string[],
 *   include: string[], exclude: string[]}} Rules
 */

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

/**
 * The hub's defaults (a copy of `DistributeConfig::default()`): what applies
 * when the hub's rules cannot be read.
 * @type {Readonly<Rules>}
 */
export const DEFAULT_RULES = Object.freeze({
  min_size: MIN_SIZE, content_types: CONTENT_TYPES, extensions: EXTENSIONS, include: [], exclude: [],
});

/** Where the hub serves its rules. */
export const RULES_URL = '/.tuber/rules';

/** Time to wait for the hub's rules before using the defaults. */
const RULES_TIMEOUT_MS = 5000;

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
 * The hub's glob: `*` matches any run of characters (also none, also `/`);
 * everything else matches itself. Iterative with single-star backtracking,
 * as the hub's `glob_match`.
 * @param {string} pattern @param {string} text
 */
export function globMatch(pattern, text) {
  let pi = 0;
  let ti = 0;
  let starP = -1;
  let starT = 0;
  while (ti < text.length) {
    if (pi < pattern.length && pattern[pi] === '*') {
      starP = pi;
      starT = ti;
      pi += 1;
    } else if (pi < pattern.length && pattern[pi] === text[ti]) {
      pi += 1;
      ti += 1;
    } else if (starP >= 0) {
      // Let the last star swallow one more character and retry.
      pi = starP + 1;
      starT += 1;
      ti = starT;
    } else {
      return false;
    }
  }
  while (pi < pattern.length && pattern[pi] === '*') pi += 1;
  return pi === pattern.length;
}

/**
 * The path without `?query` (and without a `#fragment`).
 * @param {string} pathAndQuery
 */
export function stripQuery(pathAndQuery) {
  const end = pathAndQuery.search(/[?#]/);
  return end < 0 ? pathAndQuery : pathAndQuery.slice(0, end);
}

/**
 * Whether a hub pattern matches: one containing `?` against the path with its
 * query, any other against the path alone.
 * @param {string} pattern @param {string} pathAndQuery
 */
export function patternMatches(pattern, pathAndQuery) {
  return globMatch(pattern, pattern.includes('?') ? pathAndQuery : stripQuery(pathAndQuery));
}

/**
 * Validates and normalises (as the hub's `Rules::new` does) the JSON of
 * `/.tuber/rules`; `null` when it is not rules.
 * @param {unknown} json
 * @returns {Rules | null}
 */
export function parseRules(json) {
  if (typeof json !== 'object' || json === null) return null;
  const o = /** @type {Record<string, unknown>} */ (json);
  /** @param {unknown} v @returns {v is string[]} */
  const strings = (v) => Array.isArray(v) && v.every((s) => typeof s === 'string');
  const { min_size: minSize, content_types: types, extensions, include, exclude } = o;
  if (typeof minSize !== 'number' || !Number.isFinite(minSize) || minSize < 0) return null;
  if (!strings(types) || !strings(extensions) || !strings(include) || !strings(exclude)) return null;
  return {
    min_size: minSize,
    content_types: types.map((t) => t.trim().toLowerCase()).filter((t) => t !== ''),
    extensions: extensions.map((e) => e.trim().replace(/^\.+/, '').toLowerCase()).filter((e) => e !== ''),
    include: [...include],
    exclude: [...exclude],
  };
}

/**
 * The hub's rules from `/.tuber/rules`, or the defaults when they cannot be
 * read (network error, timeout, not JSON, not rules).
 * @param {(input: string, init?: RequestInit) => Promise<Response>} [fetchImpl]
 * @returns {Promise<Rules>}
 */
export async function loadRules(fetchImpl = (input, init) => fetch(input, init)) {
  try {
    const r = await fetchImpl(RULES_URL, {
      cache: 'no-store', credentials: 'same-origin', signal: AbortSignal.timeout(RULES_TIMEOUT_MS),
    });
    if (!r.ok) return DEFAULT_RULES;
    return parseRules(await r.json()) ?? DEFAULT_RULES;
  } catch {
    return DEFAULT_RULES;
  }
}

/**
 * The request's path with its query when the Service Worker may consider it
 * at all, whatever the rules: a same-origin GET that is not a navigation, not
 * the hub's own, and not of a destination that is never distributable;
 * otherwise `null`.
 * @param {{method: string, mode: string, destination: string, url: string, headers: {has(name: string): boolean}}} req
 * @param {string} ownOrigin the Service Worker's origin
 * @returns {string | null}
 */
export function candidatePath(req, ownOrigin) {
  if (req.method !== 'GET' || req.mode === 'navigate' || req.mode === 'websocket') return null;
  if (req.headers.has(BYPASS_HEADER)) return null;
  let url;
  try {
    url = new URL(req.url);
  } catch {
    return null;
  }
  if (url.origin !== ownOrigin) return null;
  if (url.pathname.startsWith('/.tuber/') || url.pathname.startsWith('/.well-known/')) return null;
  if (url.pathname === '/metrics') return null;
  if (NEVER.has(req.destination)) return null;
  return url.pathname + url.search;
}

/**
 * How the Service Worker treats a request, from what it can see without
 * any network: `skip` (never touch), `ask` (ask the hub for a manifest) or
 * `probe` (HEAD first).
 * @param {{method: string, mode: string, destination: string, url: string, headers: {has(name: string): boolean}}} req
 * @param {string} ownOrigin the Service Worker's origin
 * @param {Readonly<Rules>} [rules] the hub's rules (default: its defaults)
 * @returns {'skip' | 'ask' | 'probe'}
 */
export function classify(req, ownOrigin, rules = DEFAULT_RULES) {
  const path = candidatePath(req, ownOrigin);
  if (path === null) return 'skip';
  if (rules.exclude.some((p) => patternMatches(p, path))) return 'skip';
  if (rules.include.some((p) => patternMatches(p, path))) return 'ask';
  const dest = req.destination;
  if (dest === 'video' || dest === 'audio') return 'ask';
  if (rules.extensions.includes(extensionOf(stripQuery(path)))) return 'ask';
  if (dest === '') return 'probe';
  return 'skip';
}

/**
 * Whether a HEAD answer looks distributable by the rules: at least
 * `min_size` bytes of one of their content types.
 * @param {string | null} contentType
 * @param {number | null} length
 * @param {Readonly<Rules>} [rules] the hub's rules (default: its defaults)
 */
export function looksDistributable(contentType, length, rules = DEFAULT_RULES) {
  if (length === null || !(length >= rules.min_size)) return false;
  const ct = (contentType ?? '').trim().toLowerCase();
  return ct !== '' && rules.content_types.some((p) => ct.startsWith(p));
}

/**
 * The path (with query) of a navigation that the Service Worker may answer
 * as a download fed by peers: a same-origin GET navigation, not to the
 * hub's own URLs, whose path looks distributable by the rules alone (no
 * `exclude` matches; an `include` pattern or one of the `extensions`
 * does), as the hub decides for media in pages. `null` for every other
 * navigation: pages are never touched. The Service Worker then still needs
 * a manifest and `isDownload` before it answers.
 * @param {{method: string, mode: string, url: string}} req
 * @param {string} ownOrigin the Service Worker's origin
 * @param {Readonly<Rules>} [rules] the hub's rules (default: its defaults)
 * @returns {string | null}
 */
export function downloadNavigationPath(req, ownOrigin, rules = DEFAULT_RULES) {
  if (req.method !== 'GET' || req.mode !== 'navigate') return null;
  let url;
  try {
    url = new URL(req.url);
  } catch {
    return null;
  }
  if (url.origin !== ownOrigin) return null;
  if (url.pathname.startsWith('/.tuber/') || url.pathname.startsWith('/.well-known/') || url.pathname === '/metrics') {
    return null;
  }
  const path = url.pathname + url.search;
  if (rules.exclude.some((p) => patternMatches(p, path))) return null;
  if (rules.include.some((p) => patternMatches(p, path))) return path;
  return rules.extensions.includes(extensionOf(url.pathname)) ? path : null;
}

/** Content types browsers show in the tab rather than download (essences, or prefixes ending in `/`). */
const SHOWN = ['text/', 'image/', 'video/', 'audio/', 'multipart/', 'application/pdf', 'application/xhtml+xml',
  'application/xml', 'application/json', 'application/javascript', 'application/ecmascript', 'application/x-javascript',
  'message/'];

/**
 * Whether a navigation answered with this content type and
 * `Content-Disposition` becomes a download (which leaves the clicking page
 * open, so that page can feed it): `attachment`, or a type no browser shows
 * in the tab. HTML never is.
 * @param {string | null} contentType
 * @param {string | null} disposition
 */
export function isDownload(contentType, disposition) {
  const ct = (contentType ?? '').split(';')[0].trim().toLowerCase();
  if (ct === 'text/html' || ct === 'application/xhtml+xml') return false;
  if (/^\s*attachment\s*(?:;|$)/i.test(disposition ?? '')) return true;
  if (ct === '' || !ct.includes('/')) return false;
  if (ct.endsWith('+xml') || ct.endsWith('+json')) return false;
  return !SHOWN.some((s) => (s.endsWith('/') ? ct.startsWith(s) : ct === s));
}
