// A site's own Service Worker, hosted by Tuber's (pure; the page runtime and
// the Service Worker share it).
//
// One registration per scope can exist, and it runs one script. So when a
// page registers its own worker (`navigator.serviceWorker.register('/sw.js')`),
// the page script registers, in its place, *host* script URL: the site's
// script URL with `tuber-host=classic` (or `=module`) appended to its query,
// `/sw.js?tuber-host=classic`. The hub answers such a URL itself, with
// Tuber's worker: the classic bundle (`sw-classic.js`), which ends with
// `importScripts('/sw.js')`, or for a module worker a two-line module that
// imports Tuber's `sw.js` and then the site's. The site's script is fetched
// from the origin as it is, and runs in the same global after Tuber's. The
// host lives at the site script's own path, so the site's relative URLs
// resolve as without Tuber, and the browser's own scope rules apply (at most
// the script's directory: the hub sends no `Service-Worker-Allowed`).

/** The query parameter (always last) that makes a script URL a host. */
export const HOST_PARAM = 'tuber-host';
/** Longest site worker script URL hosted. */
export const MAX_SCRIPT_URL = 2048;

const HOST_SUFFIX = /^(.*?)[?&]tuber-host=(classic|module)$/;

/**
 * The host script URL for the site's worker at `siteHref` (absolute, no
 * fragment): its query gets `tuber-host=TYPE` as the last parameter (an
 * empty query or a trailing `&` is dropped first).
 * @param {string} siteHref @param {'classic' | 'module'} type
 */
export function hostScriptURL(siteHref, type) {
  const base = siteHref.replace(/[?&]+$/, '');
  return `${base}${base.includes('?') ? '&' : '?'}${HOST_PARAM}=${type}`;
}

/**
 * The site's worker that a host script URL stands for: `{url, type}`, or
 * `null` when `href` is not a host (or stands for one of the hub's own URLs).
 * @param {string} href
 * @returns {{url: string, type: 'classic' | 'module'} | null}
 */
export function siteScriptOf(href) {
  const m = HOST_SUFFIX.exec(href);
  if (!m) return null;
  let url;
  try {
    url = new URL(m[1]);
  } catch {
    return null;
  }
  if (url.hash || url.pathname.startsWith('/.tuber/') || HOST_SUFFIX.test(m[1])) return null;
  return { url: m[1], type: /** @type {'classic' | 'module'} */ (m[2]) };
}

/**
 * Whether a worker script URL is Tuber's: its own worker (under `/.tuber/`)
 * or a host of a site's. Anything else on the origin is a site's own worker
 * running without Tuber.
 * @param {string} href @param {string} origin
 */
export function isTuberScript(href, origin) {
  try {
    const url = new URL(href);
    return url.origin === origin && (url.pathname.startsWith('/.tuber/') || siteScriptOf(href) !== null);
  } catch {
    return false;
  }
}

/**
 * `updateViaCache` for a host: the site's script is an imported script of
 * the host, so the HTTP cache is bypassed for it as it was for the site's
 * main script ('none'), unless the site asked for 'all'.
 * @param {unknown} asked
 * @returns {'all' | 'none'}
 */
export function hostUpdateViaCache(asked) {
  return asked === 'all' ? 'all' : 'none';
}

/**
 * What to register instead of the site's worker `href` (absolute, as the
 * page resolved it) with the site's `options`: `{url, options}`, or `null`
 * to register what the site asked as it is (another origin, the hub's own
 * URLs, a host already, options the browser would refuse, an overlong URL).
 * @param {string} href
 * @param {{scope?: string, type?: string, updateViaCache?: string} | undefined | null} options
 * @param {string} origin the page's origin
 * @returns {{url: string, options: {scope?: string, type: 'classic' | 'module', updateViaCache: 'all' | 'none'}} | null}
 */
export function hostPlan(href, options, origin) {
  const o = options ?? {};
  if (typeof o !== 'object') return null;
  const type = o.type === undefined ? 'classic' : o.type;
  if (type !== 'classic' && type !== 'module') return null;
  const cache = o.updateViaCache;
  if (cache !== undefined && cache !== 'imports' && cache !== 'all' && cache !== 'none') return null;
  let url;
  try {
    url = new URL(href);
  } catch {
    return null;
  }
  if (url.origin !== origin || (url.protocol !== 'https:' && url.protocol !== 'http:')) return null;
  if (url.pathname.startsWith('/.tuber/') || siteScriptOf(url.href) !== null) return null;
  url.hash = '';
  if (url.href.length > MAX_SCRIPT_URL) return null;
  /** @type {{scope?: string, type: 'classic' | 'module', updateViaCache: 'all' | 'none'}} */
  const plan = { type, updateViaCache: hostUpdateViaCache(cache) };
  if (o.scope !== undefined) plan.scope = String(o.scope);
  return { url: hostScriptURL(url.href, type), options: plan };
}
