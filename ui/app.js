// @ts-check
/**
 * The dashboard: views, the live graph, forms. Data comes only from
 * ./api.js; updates are pushed (server-sent events), never polled.
 */
import uPlot from './vendor/uPlot.esm.js';
import * as api from './api.js';
import { bytes, rate, cap, parseRate, parseSize } from './format.js';
import { initDesktop } from './desktop.js';

const RATE_HINT = 'a rate: write it like 2 MB/s, 500 kB/s, 1 MiB/s or 0 (unlimited); MB is megabytes, Mb would be megabits';

/** Seconds shown by the live graph. */
const LIVE_SECONDS = 120;

/** @param {string} id @returns {any} */
const $ = (id) => /** @type {any} */ (document.getElementById(id));

/**
 * @param {string} tag
 * @param {Record<string, any>} [props]
 * @param {(Node | string)[]} [children]
 * @returns {HTMLElement}
 */
function el(tag, props = {}, children = []) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('data-') || k.startsWith('aria-')) e.setAttribute(k, String(v));
    else /** @type {any} */ (e)[k] = v;
  }
  for (const c of children) e.append(c);
  return e;
}

// ---------------------------------------------------------------------------
// Messages.

/** @param {unknown} e */
function showError(e) {
  const msg = e instanceof Error ? e.message : String(e);
  $('alert-text').textContent = msg;
  $('alert').hidden = false;
}
$('alert-close').addEventListener('click', () => { $('alert').hidden = true; });

/**
 * Runs `fn`, showing its failure.
 * @template T
 * @param {() => Promise<T>} fn
 * @returns {Promise<T | undefined>}
 */
async function attempt(fn) {
  try { return await fn(); } catch (e) { showError(e); return undefined; }
}

// ---------------------------------------------------------------------------
// Views.

let view = 'overview';
const tabs = /** @type {HTMLButtonElement[]} */ ([...document.querySelectorAll('.tabs button')]);
/** @param {string} name */
function showView(name) {
  view = name;
  for (const t of tabs) {
    const on = t.dataset.view === name;
    if (on) t.setAttribute('aria-current', 'page'); else t.removeAttribute('aria-current');
    $(`view-${t.dataset.view}`).hidden = !on;
  }
  if (name === 'overview') resizeGraph();
  if (name === 'cache') refreshCache();
  if (name === 'peers' || name === 'overview') refreshStatus();
}
for (const t of tabs) t.addEventListener('click', () => showView(/** @type {string} */ (t.dataset.view)));

// ---------------------------------------------------------------------------
// The graph.

/** @type {[number[], number[], number[]]} live data: seconds, up, down */
const live = [[], [], []];
let ratePoints = 0;
let peakUp = 0;
let range = 'live';
const graphEl = $('graph');

const plot = new uPlot({
  width: Math.max(400, graphEl.clientWidth - 2),
  height: 250,
  scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(max, 1024)] } },
  axes: [{}, { values: (_u, ticks) => ticks.map((v) => rate(v)), size: 80 }],
  series: [
    {},
    { label: 'Upload', stroke: '#1a7f37', width: 2, fill: 'rgba(26,127,55,.08)', value: (_u, v) => (v == null ? '—' : rate(v)) },
    { label: 'Download', stroke: '#0969da', width: 2, fill: 'rgba(9,105,218,.08)', value: (_u, v) => (v == null ? '—' : rate(v)) },
  ],
}, [[], [], []], graphEl);

function resizeGraph() {
  const w = graphEl.clientWidth - 2;
  if (w > 0) plot.setSize({ width: w, height: 250 });
}
window.addEventListener('resize', resizeGraph);

/**
 * One second of rates from the event stream.
 * @param {{at: number, rate: {up: number, down: number}, total: {up: number, down: number}}} ev
 */
function onRates(ev) {
  const [xs, ups, downs] = live;
  // Fill missed seconds with zeros so the graph scrolls evenly.
  const last = xs.length ? xs[xs.length - 1] : ev.at - 1;
  if (ev.at <= last && xs.length) return;
  for (let s = last + 1; s < ev.at && s > ev.at - LIVE_SECONDS; s += 1) { xs.push(s); ups.push(0); downs.push(0); }
  xs.push(ev.at); ups.push(ev.rate.up); downs.push(ev.rate.down);
  while (xs.length > LIVE_SECONDS) { xs.shift(); ups.shift(); downs.shift(); }
  ratePoints += 1;
  peakUp = Math.max(peakUp, ev.rate.up);
  graphEl.dataset.ratePoints = String(ratePoints);
  graphEl.dataset.peakUp = String(peakUp);
  if (range === 'live') plot.setData([xs, ups, downs]);
  $('now-up').textContent = rate(ev.rate.up);
  $('now-down').textContent = rate(ev.rate.down);
  $('total-up').textContent = bytes(ev.total.up);
  $('total-down').textContent = bytes(ev.total.down);
}

let backfilled = false;
/**
 * Seeds the live graph with the seconds the engine remembers, once, so a
 * window opened now shows the last two minutes instead of starting empty.
 */
async function backfillLive() {
  if (backfilled) return;
  backfilled = true;
  const h = await attempt(api.historyData);
  if (!h) return;
  const [xs, ups, downs] = live;
  const first = xs.length ? xs[0] : Infinity;
  const n = h.seconds.length;
  /** @type {[number[], number[], number[]]} */
  const seed = [[], [], []];
  for (let i = Math.max(0, n - LIVE_SECONDS); i < n; i += 1) {
    const at = h.newest_second - (n - 1 - i);
    if (at >= first) break;
    seed[0].push(at); seed[1].push(h.seconds[i].up); seed[2].push(h.seconds[i].down);
  }
  xs.unshift(...seed[0]); ups.unshift(...seed[1]); downs.unshift(...seed[2]);
  while (xs.length > LIVE_SECONDS) { xs.shift(); ups.shift(); downs.shift(); }
  if (range === 'live') plot.setData(live);
}

/** @param {string} r */
async function setRange(r) {
  range = r;
  for (const b of document.querySelectorAll('.ranges button')) {
    b.setAttribute('aria-pressed', String(/** @type {HTMLElement} */ (b).dataset.range === r));
  }
  if (r === 'live') { plot.setData(live); return; }
  const h = await attempt(api.historyData);
  if (!h || range !== r) return;
  /** @type {number[]} */ const xs = [];
  /** @type {number[]} */ const ups = [];
  /** @type {number[]} */ const downs = [];
  if (r === 'hour') {
    const n = h.seconds.length;
    h.seconds.forEach((b, i) => { xs.push(h.newest_second - (n - 1 - i)); ups.push(b.up); downs.push(b.down); });
  } else {
    const minutes = r === 'day' ? h.minutes.slice(-1440) : h.minutes;
    const step = r === 'day' ? 1 : 10; // the week in 10-minute steps
    const newestMinute = Math.floor(h.newest_second / 60);
    const n = minutes.length;
    for (let i = 0; i < n; i += step) {
      const chunk = minutes.slice(i, i + step);
      const secs = chunk.length * 60;
      xs.push((newestMinute - (n - 1 - i)) * 60);
      ups.push(chunk.reduce((a, b) => a + b.up, 0) / secs);
      downs.push(chunk.reduce((a, b) => a + b.down, 0) / secs);
    }
  }
  plot.setData([xs, ups, downs]);
}
for (const b of document.querySelectorAll('.ranges button')) {
  b.addEventListener('click', () => setRange(/** @type {string} */ (/** @type {HTMLElement} */ (b).dataset.range)));
}

// ---------------------------------------------------------------------------
// Status: totals, store, swarms, peers.

/** @param {any} phase @returns {{text: string, cls: string, reason: string}} */
function describe(phase) {
  switch (phase?.state) {
    case 'connecting': return { text: 'Connecting', cls: 'connecting', reason: '' };
    case 'joined': return { text: phase.trusted ? 'Joined · trusted' : 'Joined (not trusted)', cls: 'joined', reason: phase.trusted ? '' : 'Join again with an invite from the site to become trusted.' };
    case 'retrying': return { text: 'Retrying', cls: 'retrying', reason: `${phase.error} — next attempt in ${Math.ceil(phase.retry_in_ms / 1000)} s. Check the address and your connection.` };
    case 'error': return { text: `Error: ${phase.code}`, cls: 'error', reason: `${phase.message} — leave the swarm and join again to retry.` };
    default: return { text: String(phase?.state ?? 'unknown'), cls: 'connecting', reason: '' };
  }
}

/** @param {{up: number, down: number}} ud @param {(n: number) => string} f */
const pair = (ud, f) => `${f(ud.up)} / ${f(ud.down)}`;

/** @param {any[]} list */
function renderSwarms(list) {
  const body = $('swarm-table').tBodies[0];
  body.replaceChildren(...list.map((s) => {
    const d = describe(s.phase);
    const leave = el('button', { type: 'button', class: 'danger', textContent: 'Leave', 'aria-label': `Leave ${s.url}` });
    leave.addEventListener('click', () => attempt(async () => { await api.leave(s.url); await refreshStatus(); }));
    const state = el('td', { class: `state-${d.cls}`, 'data-state': s.phase?.state ?? '' }, [d.text]);
    if (d.reason) state.append(el('span', { class: 'reason', textContent: d.reason }));
    return el('tr', { 'data-url': s.url, 'data-state': s.phase?.state ?? '', 'data-trusted': String(!!s.phase?.trusted) }, [
      el('td', { class: 'url' }, [s.name ? `${s.name} — ${s.url}` : s.url]),
      state,
      el('td', { class: 'num', textContent: String(s.peers) }),
      el('td', { class: 'num', textContent: `${s.assigned_held} / ${s.assigned_pieces}` }),
      el('td', { class: 'num', textContent: pair(s.rate, rate) }),
      el('td', { class: 'num', textContent: pair(s.bytes, bytes) }),
      el('td', {}, [leave]),
    ]);
  }));
  $('swarms-empty').hidden = list.length > 0;
  $('total-swarms').textContent = String(list.length);
}

/** @param {any[]} list */
function renderPeers(list) {
  $('peer-table').tBodies[0].replaceChildren(...list.map((p) => el('tr', { 'data-peer': p.peer }, [
    el('td', { textContent: p.peer.slice(0, 12) + '…', title: p.peer }),
    el('td', { class: 'url', textContent: p.swarm }),
    el('td', { textContent: p.role ?? 'unknown' }),
    el('td', { textContent: p.trusted == null ? 'unknown' : p.trusted ? 'yes' : 'no' }),
    el('td', { class: 'num', textContent: pair(p.rate, rate) }),
    el('td', { class: 'num', textContent: pair(p.bytes, bytes) }),
  ])));
  $('peers-empty').hidden = list.length > 0;
  $('total-peers').textContent = String(list.length);
}

/** @param {any} store */
function renderStore(store) {
  const m = $('store-meter');
  m.max = Math.max(store.budget, 1);
  // What the disk holds: the figure the donor's budget is about.
  m.value = store.disk_bytes;
  m.high = store.budget * 0.9;
  $('store-text').textContent = `${bytes(store.disk_bytes)} on disk of ${bytes(store.budget)} budget; ${bytes(store.bytes)} in ${store.pieces} pieces, ${bytes(store.pinned_bytes)} assigned`;
}

/** The settings form's fields: input id, settings key, name, reader, hint. */
const SETTING_FIELDS = /** @type {const} */ ([
  ['set-up', 'upload_bps', 'upload cap', parseRate, RATE_HINT],
  ['set-down', 'download_bps', 'download cap', parseRate, RATE_HINT],
  ['set-budget', 'disk_budget', 'disk budget', parseSize, 'a size: write it like 10 GB, 512 MiB or 1.5 TB'],
]);

/** @param {api.Settings} s */
function renderSettings(s) {
  const b = $('pause-toggle');
  b.textContent = s.paused ? 'Resume sharing' : 'Pause sharing';
  b.setAttribute('aria-pressed', String(s.paused));
  $('settings-current').textContent = `Now: upload ${cap(s.upload_bps)}, download ${cap(s.download_bps)}, disk budget ${bytes(s.disk_budget)}${s.paused ? ', sharing paused' : ''}.`;
  const form = $('settings-form');
  if (!form.contains(document.activeElement)) {
    for (const [id, key] of SETTING_FIELDS) $(id).value = shown(key, s);
  }
  settingsNow = s;
}

/**
 * A setting as the form shows it: rounded to three digits, so it is sent
 * back only if the owner changed it (1,234,567 B/s shows as 1.23 MB/s,
 * which would read back as 1,230,000).
 * @param {'upload_bps' | 'download_bps' | 'disk_budget'} key
 * @param {api.Settings} s
 */
function shown(key, s) {
  if (key === 'disk_budget') return bytes(s.disk_budget);
  return s[key] ? rate(s[key]) : '0';
}
/** @type {api.Settings | null} */
let settingsNow = null;

let statusBusy = false;
let statusAgain = false;
/** Re-reads the status (one request at a time). */
async function refreshStatus() {
  if (statusBusy) { statusAgain = true; return; }
  statusBusy = true;
  try {
    const s = await attempt(api.status);
    if (s) {
      renderSwarms(s.swarms);
      renderPeers(s.peers);
      renderStore(s.store);
      renderSettings(s.settings);
      $('total-up').textContent = bytes(s.total.up);
      $('total-down').textContent = bytes(s.total.down);
    }
  } finally {
    statusBusy = false;
    if (statusAgain) { statusAgain = false; refreshStatus(); }
  }
}

// ---------------------------------------------------------------------------
// Cache.

async function refreshCache() {
  const list = await attempt(api.cached);
  if (!list) return;
  $('cache-table').tBodies[0].replaceChildren(...list.map((/** @type {any} */ c) => {
    const evict = el('button', { type: 'button', class: 'danger', textContent: 'Evict', 'aria-label': `Evict ${c.resource}` });
    evict.addEventListener('click', () => attempt(async () => { await api.evict(c.swarm, c.resource); await refreshCache(); await refreshStatus(); }));
    return el('tr', { 'data-resource': c.resource }, [
      el('td', { class: 'url', textContent: c.resource }),
      el('td', { class: 'url', textContent: c.swarm }),
      el('td', { class: 'num', textContent: String(c.pieces) }),
      el('td', { class: 'num', textContent: bytes(c.bytes) }),
      el('td', { class: 'num', textContent: String(c.hits) }),
      el('td', { class: 'num', textContent: bytes(c.bytes_served) }),
      el('td', { textContent: c.assigned ? 'yes' : 'no' }),
      el('td', {}, [evict]),
    ]);
  }));
  $('cache-empty').hidden = list.length > 0;
}
let cacheQueued = false;
/** Coalesces bursts of `stored` events into one re-read. */
function cacheSoon() {
  if (cacheQueued) return;
  cacheQueued = true;
  requestAnimationFrame(() => { cacheQueued = false; if (view === 'cache') refreshCache(); });
}

// ---------------------------------------------------------------------------
// Forms.

$('join-form').addEventListener('submit', (/** @type {SubmitEvent} */ e) => {
  e.preventDefault();
  const url = $('join-url').value.trim();
  const invite = $('join-invite').value.trim();
  attempt(async () => {
    try {
      await api.join(url, invite || undefined);
    } catch (err) {
      if (err instanceof api.ApiError && err.status === 409) throw new api.ApiError(`Already in ${url}. To join with an invite, leave it first.`, 409);
      if (err instanceof api.ApiError && err.status === 400) throw new api.ApiError(`Could not join ${url}: ${err.message}. Check the address (it starts with http:// or https://).`, 400);
      throw err;
    }
    $('join-url').value = '';
    $('join-invite').value = '';
    $('join-note').hidden = true;
    $('alert').hidden = true;
    await refreshStatus();
  });
});

$('settings-form').addEventListener('submit', (/** @type {SubmitEvent} */ e) => {
  e.preventDefault();
  /** @type {Record<string, number>} */
  const patch = {};
  for (const [id, key, what, parse, example] of SETTING_FIELDS) {
    // Left as shown: not sent, so its exact value stays.
    if (settingsNow && $(id).value.trim() === shown(key, settingsNow)) continue;
    const v = parse($(id).value);
    if (Number.isNaN(v)) {
      showError(`The ${what} "${$(id).value}" is not ${example}.`);
      $(id).focus();
      return;
    }
    patch[key] = v;
  }
  attempt(async () => {
    const s = await api.updateSettings(patch);
    /** @type {HTMLElement} */ (document.activeElement)?.blur?.();
    renderSettings(s);
    $('alert').hidden = true;
  });
});

$('pause-toggle').addEventListener('click', () => attempt(async () => {
  renderSettings(settingsNow?.paused ? await api.resume() : await api.pause());
}));

// ---------------------------------------------------------------------------
// Events.

/** @param {string} type @param {any} data */
function onEvent(type, data) {
  switch (type) {
    case 'rates':
      onRates(data);
      // Peers' rates change every second: re-read while they are shown.
      if (view === 'peers' || view === 'swarms') refreshStatus();
      break;
    case 'swarm': case 'trusted': case 'peer':
      refreshStatus();
      break;
    case 'settings':
      renderSettings(data.settings);
      break;
    case 'stored':
      cacheSoon();
      break;
    case 'budget_reached':
      showError(`The disk budget is reached: ${data.evicted} pieces were evicted. Raise the disk budget in Settings to keep more.`);
      refreshStatus(); cacheSoon();
      break;
    case 'bad_piece':
      refreshStatus();
      break;
    case 'lagged':
      refreshStatus(); cacheSoon();
      break;
    case 'error':
      showError(data.message);
      break;
    default:
  }
}

/** @param {boolean} open */
function onConnection(open) {
  const c = $('conn');
  c.className = `conn ${open ? 'live' : 'down'}`;
  c.textContent = open ? 'Live' : 'Disconnected — reconnecting…';
  if (open) { refreshStatus(); backfillLive(); if (view === 'cache') refreshCache(); }
}

if (!api.hasToken()) {
  showError(api.NO_TOKEN);
  onConnection(false);
} else {
  api.subscribe(onEvent, onConnection);
  refreshStatus();
}
initDesktop({ showView, attempt });
document.body.dataset.ready = 'true';
