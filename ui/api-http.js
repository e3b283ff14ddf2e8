// @ts-check
/**
 * The dashboard's data access in a browser: the headless daemon's local API
 * (JSON over HTTP) and its server-sent events. ./api-tauri.js is the same
 * for the desktop window; ./api.js picks one.
 *
 * The token comes from the page address `#token=…` (what `tuber-peer run`
 * prints); it is kept in sessionStorage and removed from the address bar.
 */

import { ApiError } from './api-error.js';

/** @typedef {import('./api.js').Settings} Settings */
/** @typedef {import('./api.js').UpDown} UpDown */

const KEY = 'tuber.api.token';

/** @returns {string | null} the token, taken from the fragment once. */
function takeToken() {
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem(KEY, decodeURIComponent(m[1]));
    history.replaceState(null, '', location.pathname + location.search);
  }
  return sessionStorage.getItem(KEY);
}

let token = takeToken();

/** @returns {boolean} whether a token is known. */
export function hasToken() { return !!token; }

export const NO_TOKEN = 'This page has no API token. Open the address that `tuber-peer run` printed '
  + '(it ends in #token=…), or add #token= followed by the contents of api.token in the data folder.';

/**
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 * @returns {Promise<any>}
 */
async function call(method, path, body) {
  if (!token) throw new ApiError(NO_TOKEN, 401);
  /** @type {Response} */
  let res;
  try {
    res = await fetch(path, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    });
  } catch {
    throw new ApiError('The tuber-peer daemon does not answer. Check that `tuber-peer run` is still running, then reload this page.', 0);
  }
  const text = await res.text();
  /** @type {any} */
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  if (!res.ok) {
    const said = json?.error ?? (text || res.statusText);
    if (res.status === 401) {
      sessionStorage.removeItem(KEY);
      token = null;
      throw new ApiError(`The daemon refused the API token (${said}). ${NO_TOKEN}`, 401);
    }
    throw new ApiError(said, res.status);
  }
  return json;
}

export const status = () => call('GET', '/api/status');
export const swarms = () => call('GET', '/api/swarms');
/** @param {string} url @param {string} [invite] */
export const join = (url, invite) => call('POST', '/api/swarms', invite ? { url, invite } : { url });
/** @param {string} url */
export const leave = (url) => call('DELETE', '/api/swarms', { url });
/** @returns {Promise<Settings>} */
export const settings = () => call('GET', '/api/settings');
/** @param {Partial<Settings>} patch @returns {Promise<Settings>} */
export const updateSettings = (patch) => call('PATCH', '/api/settings', patch);
/** @returns {Promise<Settings>} */
export const pause = () => call('POST', '/api/pause');
/** @returns {Promise<Settings>} */
export const resume = () => call('POST', '/api/resume');
/** @returns {Promise<{newest_second: number, seconds: UpDown[], minutes: UpDown[]}>} */
export const historyData = () => call('GET', '/api/history');
export const cached = () => call('GET', '/api/cached');
/** @param {string} swarm @param {string} resource */
export const evict = (swarm, resource) => call('POST', '/api/evict', { swarm, resource });

const EVENT_TYPES = ['rates', 'swarm', 'trusted', 'peer', 'settings', 'stored', 'budget_reached', 'bad_piece', 'lagged', 'error'];

/**
 * Subscribes to the engine's events. `onEvent(type, data)` for each;
 * `onConnection(true|false)` when the stream opens or drops (it reconnects
 * by itself). Returns a function that closes the stream.
 * @param {(type: string, data: any) => void} onEvent
 * @param {(open: boolean) => void} onConnection
 * @returns {() => void}
 */
export function subscribe(onEvent, onConnection) {
  if (!token) { onConnection(false); return () => {}; }
  const es = new EventSource(`/api/events?token=${encodeURIComponent(token)}`);
  es.onopen = () => onConnection(true);
  es.onerror = () => onConnection(false);
  for (const type of EVENT_TYPES) {
    es.addEventListener(type, (e) => {
      let data;
      try { data = JSON.parse(/** @type {MessageEvent} */ (e).data); } catch { return; }
      onEvent(type, data);
    });
  }
  return () => es.close();
}
