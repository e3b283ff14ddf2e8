// @ts-check
/**
 * All data access of the dashboard, in one place: Tauri commands and events
 * in the desktop window (./api-tauri.js), the headless daemon's HTTP API and
 * server-sent events in a browser (./api-http.js). Same calls, same JSON.
 */
import * as http from './api-http.js';
import * as tauri from './api-tauri.js';

export { ApiError } from './api-error.js';

/** @typedef {{up: number, down: number}} UpDown */
/** @typedef {{upload_bps: number, download_bps: number, disk_budget: number, paused: boolean}} Settings */
/** @typedef {{autostart: boolean | null, autostart_enabled: boolean, data_dir: string, data_dir_next: string | null}} DesktopView */
/** @typedef {{swarm: string, invite: string | null}} JoinLink */

/** Whether this page runs in the desktop app. */
export const desktop = tauri.available();
const b = desktop ? tauri : http;

export const NO_TOKEN = b.NO_TOKEN;
export const hasToken = () => b.hasToken();
export const status = () => b.status();
export const swarms = () => b.swarms();
/** @param {string} url @param {string} [invite] */
export const join = (url, invite) => b.join(url, invite);
/** @param {string} url */
export const leave = (url) => b.leave(url);
/** @returns {Promise<Settings>} */
export const settings = () => b.settings();
/** @param {Partial<Settings>} patch @returns {Promise<Settings>} */
export const updateSettings = (patch) => b.updateSettings(patch);
/** @returns {Promise<Settings>} */
export const pause = () => b.pause();
/** @returns {Promise<Settings>} */
export const resume = () => b.resume();
/** @returns {Promise<{newest_second: number, seconds: UpDown[], minutes: UpDown[]}>} */
export const historyData = () => b.historyData();
export const cached = () => b.cached();
/** @param {string} swarm @param {string} resource */
export const evict = (swarm, resource) => b.evict(swarm, resource);
/**
 * @param {(type: string, data: any) => void} onEvent
 * @param {(open: boolean) => void} onConnection
 * @returns {() => void}
 */
export const subscribe = (onEvent, onConnection) => b.subscribe(onEvent, onConnection);

// The desktop app's own settings (the daemon takes them on its command line).
/** @returns {Promise<DesktopView>} */
export const desktopPrefs = () => tauri.desktopPrefs();
/** @param {boolean} enabled @returns {Promise<DesktopView>} */
export const setAutostart = (enabled) => tauri.setAutostart(enabled);
/** @param {string} dir @returns {Promise<DesktopView>} */
export const setDataDir = (dir) => tauri.setDataDir(dir);
/** @returns {Promise<JoinLink | null>} */
export const takeJoinLink = () => tauri.takeJoinLink();
/** @param {() => void} cb */
export const onJoinLink = (cb) => tauri.onJoinLink(cb);
