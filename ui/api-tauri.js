// @ts-check
/**
 * The dashboard's data access in the desktop window: Tauri commands (the
 * same calls as the daemon's HTTP API, forwarded to the desktop core; see
 * src-tauri/src/window/commands.rs) and the `engine` event (the same JSON
 * as the daemon's server-sent events).
 */
import { ApiError } from './api-error.js';

/** @returns {any} the API Tauri injects (`app.withGlobalTauri`) */
const tauri = () => /** @type {any} */ (window).__TAURI__;

/** @returns {boolean} whether this page runs in the desktop app. */
export const available = () => !!tauri()?.core?.invoke;

/**
 * @param {string} cmd
 * @param {Record<string, unknown>} [args]
 * @returns {Promise<any>}
 */
async function call(cmd, args) {
  try {
    return await tauri().core.invoke(cmd, args);
  } catch (e) {
    // Commands reject with {message, status}; Tauri itself with a string.
    const err = /** @type {any} */ (e);
    if (err && typeof err.message === 'string') throw new ApiError(err.message, Number(err.status) || 500);
    throw new ApiError(`The desktop app did not answer (${String(e)}). Close this window and open it again from the tray icon.`, 0);
  }
}

export const hasToken = () => true;
export const NO_TOKEN = '';
export const status = () => call('status');
export const swarms = () => call('swarms');
/** @param {string} url @param {string} [invite] */
export const join = (url, invite) => call('join', { url, invite: invite ?? null });
/** @param {string} url */
export const leave = (url) => call('leave', { url });
export const settings = () => call('settings');
/** @param {Record<string, unknown>} patch */
export const updateSettings = (patch) => call('update_settings', { patch });
export const pause = () => call('pause');
export const resume = () => call('resume');
export const historyData = () => call('history');
export const cached = () => call('cached');
/** @param {string} swarm @param {string} resource */
export const evict = (swarm, resource) => call('evict', { swarm, resource });

export const desktopPrefs = () => call('desktop_prefs');
/** @param {boolean} enabled */
export const setAutostart = (enabled) => call('set_autostart', { enabled });
/** @param {string} dir */
export const setDataDir = (dir) => call('set_data_dir', { dir });
export const takeJoinLink = () => call('take_join_link');

/**
 * Calls `cb` whenever the app has a `tuber://join` link for the page.
 * @param {() => void} cb
 */
export function onJoinLink(cb) {
  tauri().event.listen('join-link', () => cb());
}

/**
 * The engine's events, as `onEvent(type, data)`.
 * @param {(type: string, data: any) => void} onEvent
 * @param {(open: boolean) => void} onConnection
 * @returns {() => void}
 */
export function subscribe(onEvent, onConnection) {
  /** @type {(() => void)[]} */
  const unlisten = [];
  let closed = false;
  /** @param {Promise<() => void>} p */
  const keep = (p) => p.then((u) => { if (closed) u(); else unlisten.push(u); }, () => onConnection(false));
  // The window process relays the core's event stream; it says when that
  // stream drops (the core stopped) and comes back.
  keep(tauri().event.listen('engine-connection', (/** @type {{payload: boolean}} */ e) => onConnection(!!e.payload)));
  const events = keep(tauri().event.listen('engine', (/** @type {{payload: any}} */ e) => {
    if (e.payload && typeof e.payload.type === 'string') onEvent(e.payload.type, e.payload);
  }));
  // The stream may have come up before this page listened.
  events.then(() => call('events_connected')).then((up) => { if (!closed) onConnection(!!up); }, () => onConnection(false));
  return () => { closed = true; for (const u of unlisten) u(); };
}
