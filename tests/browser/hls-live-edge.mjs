// The live edge of a `TUBER_HLS_TRACE=1 node --test hls.test.mjs` run, from
// its artifacts (test-artifacts/hls/live/): for each segment, when it was on
// disk and first in the playlist, the first playlist request through the
// front after that (the hub learns of segments from the playlists it
// proxies), the hub's origin GET (origin nginx, no User-Agent), the
// permanent peer's `/.tuber/piece/` reads (front nginx, no User-Agent), and
// per viewer its first request for the segment (hls.js's loader) and where
// each of its pieces came from: D = the permanent peer, 1–5 = that viewer
// (over WebRTC, from the page's wire trace), H = the hub (a Range read
// marked `x-tuber-origin`, the runtime's debug log), ? = not seen.
// nginx's `t` ($msec) is when the request ended.
//
//   node hls-live-edge.mjs [ARTIFACT_DIR]
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[2] ?? new URL('../../test-artifacts/hls/live/', import.meta.url).pathname;
const results = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8'));
const log = (f) => readFileSync(join(dir, f), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
const front = log('front-nginx-access.log');
const origin = log('origin-nginx-access.log');
const browserLog = readFileSync(join(dir, 'browser.log'), 'utf8').split('\n');
const edge = results.edge;
if (!edge?.pieces) throw new Error('no trace in results.json: run with TUBER_HLS_TRACE=1');
const ms = (t) => Math.round(t * 1000);

// Pieces per segment.
const piecesOf = {};
for (const [hash, [path, i]] of Object.entries(edge.pieces)) (piecesOf[path] ??= [])[i] = hash;

// Peer ids: the donor, each viewer.
const who = new Map();
if (edge.donorPeerId) who.set(edge.donorPeerId, 'D');
results.results.forEach((r, i) => { if (r.trace?.peerId) who.set(r.trace.peerId, String(i + 1)); });
const welcome = (r) => r.trace?.ws?.find((m) => m.type === 'welcome')?.peer_id;
results.results.forEach((r, i) => { const id = welcome(r); if (id) who.set(id, String(i + 1)); });
// The donor's id, when the daemon's status did not give it: the permanent provider.
for (const r of results.results) {
  for (const m of r.trace?.ws ?? []) {
    for (const p of m.providers ?? []) if (p.role === 'permanent' && !who.has(p.peer)) who.set(p.peer, 'D');
  }
}

/** Per viewer: pc id → peer label, from the ICE ufrags of its offers/answers. */
function pcPeers(trace) {
  const byUfrag = new Map();
  for (const m of trace.ws ?? []) {
    if ((m.type === 'offer' || m.type === 'answer') && m.ufrag) byUfrag.set(`${m.dir}:${m.ufrag}`, m.dir === 'out' ? m.to : m.from);
  }
  const out = {};
  for (const [id, pc] of Object.entries(trace.pcs ?? {})) {
    const peer = byUfrag.get(`out:${pc.local}`) ?? byUfrag.get(`in:${pc.remote}`);
    out[id] = peer ? (who.get(peer) ?? peer.slice(0, 8)) : '?';
  }
  return out;
}

/** Per viewer: piece hash → { from, at } for the pieces it got over WebRTC. */
function peerPieces(trace) {
  const pcs = pcPeers(trace);
  const out = new Map();
  for (const s of trace.sent ?? []) {
    const g = trace.got?.[`${s.pc}:${s.id}`];
    if (!g || g.bytes < s.length) continue;
    if (!out.has(s.piece)) out.set(s.piece, { from: pcs[s.pc] ?? '?', asked: s.at, at: g.last });
  }
  return out;
}

/** Per viewer label: [{ at, path, first, last, reason }] origin reads from the debug log. */
const hubReads = {};
for (const line of browserLog) {
  const m = /^(\d\d):(\d\d):(\d\d)\.(\d{3}) \[(viewer\d+) console\.debug\] tuber: origin (\S+) pieces (\d+)\.\.(\d+): (.*)$/.exec(line);
  if (!m) continue;
  (hubReads[m[5]] ??= []).push({ hms: (Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3])) * 1000 + Number(m[4]),
    path: m[6], first: Number(m[7]), last: Number(m[8]), reason: m[9] });
}
const dayMs = (t) => { const d = new Date(t); return ((d.getUTCHours() * 60 + d.getUTCMinutes()) * 60 + d.getUTCSeconds()) * 1000 + d.getUTCMilliseconds(); };

/** Per viewer: path → { want, providers, listed } for its first `want` naming a piece of that path. */
function wants(trace) {
  const out = new Map();
  const ws = trace?.ws ?? [];
  for (const m of ws) {
    if (m.dir !== 'out' || m.type !== 'want') continue;
    const paths = new Set(m.pieces.map((h) => edge.pieces[h]?.[0]).filter(Boolean));
    for (const path of paths) {
      if (out.has(path)) continue;
      const a = ws.find((x) => x.dir === 'in' && x.type === 'providers' && x.req === m.req);
      const listed = a ? a.providers.filter((p) => p.pieces.some((i) => edge.pieces[m.pieces[i]]?.[0] === path))
        .map((p) => who.get(p.peer) ?? p.peer.slice(0, 6)) : null;
      out.set(path, { want: m.at, providers: a ? a.at : null, listed });
    }
  }
  return out;
}

const viewers = results.results.map((r, i) => ({
  label: r.label, n: String(i + 1), requests: r.rec.requests ?? [], pieces: r.trace ? peerPieces(r.trace) : new Map(),
  hub: hubReads[r.label] ?? [], wants: wants(r.trace),
}));

const segs = Object.keys(edge.onDisk).sort().map((f) => `/live/${f}`);
const rows = [];
const deltas = [];
for (const path of segs) {
  const f = path.slice('/live/'.length);
  const disk = edge.onDisk[f];
  const listedAt = edge.listed[f] ?? null;
  const pl = listedAt === null ? null : front.find((e) => e.uri === '/live/index.m3u8' && ms(e.t) >= listedAt);
  const og = origin.filter((e) => e.uri === path).map((e) => ({ t: ms(e.t), method: e.method, ua: e.ua, range: e.range, bytes: e.body_bytes_sent }));
  const hashes = piecesOf[path] ?? [];
  const donorReads = front.filter((e) => !e.ua && e.uri.startsWith('/.tuber/piece/') && edge.pieces[e.uri.slice(14)]?.[0] === path).map((e) => ms(e.t));
  const frontSeg = front.filter((e) => e.uri === path).map((e) => ({ t: ms(e.t), range: e.range, ua: !!e.ua, bytes: e.body_bytes_sent }));
  const donorDone = donorReads.length ? Math.max(...donorReads) : null;
  const per = viewers.map((v) => {
    const req = v.requests.filter((q) => new URL(q.url).pathname === path).map((q) => q.wall);
    if (!req.length) return null;
    const src = hashes.map((h, i) => {
      const p = v.pieces.get(h);
      if (p) return p.from;
      const wall = dayMs(req[0]);
      const hub = v.hub.find((x) => x.path === path && x.first <= i && i <= x.last && x.hms >= wall - 1000);
      return hub ? 'H' : '?';
    }).join('');
    const hubReason = v.hub.find((x) => x.path === path)?.reason ?? null;
    const w = v.wants.get(path) ?? null;
    if (donorDone !== null) {
      deltas.push({ seg: f, viewer: v.n, d: Math.min(...req) - donorDone, want: w ? w.want - donorDone : null,
        answered: w?.providers ? w.providers - w.want : null, listed: w?.listed ?? null, src });
    }
    return { first: Math.min(...req), src, hubReason, w };
  });
  rows.push({ f, disk, listedAt, pl: pl ? ms(pl.t) : null, og, donorReads, donorDone, frontSeg, per });
}

const rel = (t, base) => (t === null || t === undefined ? '—' : `${t - base >= 0 ? '+' : ''}${t - base}`);
console.log(`times in ms from the segment's appearance on disk (ffmpeg's rename); nginx times are request ends; piece size ${edge.pieceSize}`);
console.log('viewer cell: first hls.js request for it, w its first want, a the providers answer [providers named: D donor, 1-5 viewer], source of each piece (D, 1-5, H hub pieces, ? unknown)\n');
console.log(['segment', 'listed', 'pl via front', 'hub origin GET', 'donor pieces (first..last)', ...viewers.map((v) => v.label), 'hub HEADs'].join(' | '));
for (const r of rows) {
  const hubGet = r.og.filter((x) => !x.ua && x.method === 'GET').map((x) => `${rel(x.t, r.disk)}${x.range ? ` ${x.range}` : ''}`).join(',') || '—';
  const heads = r.og.filter((x) => !x.ua && x.method === 'HEAD').length;
  const browserGet = r.og.filter((x) => x.ua).length;
  const donor = r.donorReads.length ? `${rel(Math.min(...r.donorReads), r.disk)}..${rel(Math.max(...r.donorReads), r.disk)} (${r.donorReads.length})` : '—';
  console.log([r.f, rel(r.listedAt, r.disk), rel(r.pl, r.disk), hubGet + (browserGet ? ` +${browserGet} browser` : ''), donor,
    ...r.per.map((p) => (p ? `${rel(p.first, r.disk)}${p.w ? ` w${rel(p.w.want, r.disk)} a${rel(p.w.providers, r.disk)}[${(p.w.listed ?? []).join('')}]` : ''} ${p.src}` : '')),
    `${heads} HEAD`,
  ].join(' | '));
}
console.log('\nfront nginx segment-path requests (viewers: Range = the runtime\'s x-tuber-origin read answered by the hub):');
for (const r of rows) {
  if (r.frontSeg.length) console.log(`${r.f}: ${r.frontSeg.map((x) => `${rel(x.t, r.disk)} ${x.range || 'no-range'} ${x.bytes}${x.ua ? '' : ' (no UA)'}`).join('; ')}`);
}
console.log('\nhub reads reasons (debug log):');
for (const v of viewers) for (const x of v.hub) console.log(`${v.label} ${x.path} ${x.first}..${x.last}: ${x.reason}`);

const ds = deltas.map((x) => x.d).sort((a, b) => a - b);
const q = (p) => ds[Math.min(ds.length - 1, Math.floor(p * ds.length))];
console.log(`\n(d) − (c): viewer's first request − the donor's last piece read, over ${ds.length} (segment, viewer) pairs:`);
if (ds.length) {
  console.log(`min ${ds[0]}  p10 ${q(0.1)}  p25 ${q(0.25)}  median ${q(0.5)}  p75 ${q(0.75)}  max ${ds.at(-1)}  negative (asked before the donor held it): ${ds.filter((d) => d < 0).length}`);
  const bins = [-Infinity, -2000, -1000, -500, -250, 0, 250, 500, 1000, 2000, 4000, Infinity];
  for (let i = 0; i + 1 < bins.length; i++) {
    const n = ds.filter((d) => d >= bins[i] && d < bins[i + 1]).length;
    if (n) console.log(`  [${bins[i]}, ${bins[i + 1]}) ms: ${n}  ${'#'.repeat(n)}`);
  }
  const ws = deltas.filter((x) => x.want !== null).map((x) => x.want).sort((a, b) => a - b);
  const qw = (p) => ws[Math.min(ws.length - 1, Math.floor(p * ws.length))];
  if (ws.length) {
    console.log(`the viewer's first want − the donor's last piece read: min ${ws[0]}  p25 ${qw(0.25)}  median ${qw(0.5)}  p75 ${qw(0.75)}  max ${ws.at(-1)}; before: ${ws.filter((d) => d < 0).length} of ${ws.length}`);
    const early = deltas.filter((x) => x.want !== null && x.want < 0);
    console.log(`  those wants: answered after ${JSON.stringify(early.map((x) => x.answered))} ms, naming ${JSON.stringify(early.map((x) => (x.listed ?? []).join('') || '∅'))}`);
  }
  const held = deltas.filter((x) => x.answered !== null).map((x) => x.answered).sort((a, b) => a - b);
  if (held.length) {
    const qh = (p) => held[Math.min(held.length - 1, Math.floor(p * held.length))];
    console.log(`want → providers answer (the hub holds a want until the donor's have): min ${held[0]}  p25 ${qh(0.25)}  median ${qh(0.5)}  p75 ${qh(0.75)}  p90 ${qh(0.9)}  max ${held.at(-1)}; > 100 ms: ${held.filter((d) => d > 100).length} of ${held.length}`);
  }
  const hubWhenEarly = deltas.filter((x) => x.d < 0);
  console.log(`pairs asked before the donor held it, pieces from: ${JSON.stringify(count(hubWhenEarly.flatMap((x) => [...x.src])))}`);
  console.log(`pairs asked after: ${JSON.stringify(count(deltas.filter((x) => x.d >= 0).flatMap((x) => [...x.src])))}`);
}
function count(xs) { const o = {}; for (const x of xs) o[x] = (o[x] ?? 0) + 1; return o; }
