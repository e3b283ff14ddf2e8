// Web origins (docs/protocol.md §5.3), as crates/tuber-proto/src/origin.rs:
// `scheme://host[:port]`, scheme and host lower-cased, the default port left
// out, IPv6 in brackets; only http and https are origins (ws/wss count as
// them in sameOrigin). The browser signs nothing, but its codec must refuse
// exactly what the Rust one refuses.

import { MAX_URL_LEN } from './limits.js';

/**
 * @param {string} scheme @param {string} rest
 * @returns {string | null}
 */
function serialise(scheme, rest) {
  const authority = rest.split(/[/?#]/, 1)[0] ?? '';
  if (authority === '' || /[@\\]/.test(authority)) return null;
  let host;
  /** @type {string | undefined} */
  let port;
  if (authority.startsWith('[')) {
    const close = authority.indexOf(']');
    if (close < 0) return null;
    const inner = authority.slice(1, close);
    if (inner === '' || !/^[0-9a-fA-F:.]+$/.test(inner)) return null;
    const after = authority.slice(close + 1);
    if (after !== '') {
      if (!after.startsWith(':')) return null;
      port = after.slice(1);
    }
    host = `[${inner.toLowerCase()}]`;
  } else {
    const colon = authority.indexOf(':');
    const h = colon < 0 ? authority : authority.slice(0, colon);
    if (colon >= 0) port = authority.slice(colon + 1);
    if (h === '' || !/^[A-Za-z0-9._-]+$/.test(h)) return null;
    host = h.toLowerCase();
  }
  let p = null;
  if (port !== undefined && port !== '') {
    if (!/^[0-9]{1,5}$/.test(port)) return null;
    p = Number(port);
    if (p === 0 || p > 65535) return null;
  }
  const dflt = scheme === 'https' ? 443 : 80;
  return p !== null && p !== dflt ? `${scheme}://${host}:${p}` : `${scheme}://${host}`;
}

/** @param {string} url @returns {[string, string] | null} */
function splitScheme(url) {
  const i = url.indexOf('://');
  if (i < 0) return null;
  const s = url.slice(0, i).toLowerCase();
  const scheme = s === 'http' || s === 'ws' ? 'http' : s === 'https' || s === 'wss' ? 'https' : null;
  return scheme ? [scheme, url.slice(i + 3)] : null;
}

/**
 * The origin of an http(s) URL, or null when it has none Tuber accepts.
 * @param {string} url
 */
export function originOf(url) {
  if (url.length > MAX_URL_LEN) return null;
  const given = url.split('://', 1)[0].toLowerCase();
  if (!url.includes('://') || (given !== 'http' && given !== 'https')) return null;
  const parts = splitScheme(url);
  return parts ? serialise(parts[0], parts[1]) : null;
}

/**
 * Whether `url` (http, https, ws or wss) is on `origin`.
 * @param {string} url @param {string} origin
 */
export function sameOrigin(url, origin) {
  if (url.length > MAX_URL_LEN) return false;
  const parts = splitScheme(url);
  return parts !== null && serialise(parts[0], parts[1]) === origin;
}
