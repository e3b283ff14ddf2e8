// The NAT matrix (#15): a permanent peer behind one NAT type serves a
// 16 MiB file to a Chromium page behind another, in network namespaces the
// test makes (tests/netlab), with real kernel NATs (nftables), a real hub,
// a real `tuber-peer` daemon on a sled store and a real coturn. Direct where
// the NAT types allow it, through TURN where they do not. Every cell must
// succeed; the matrix (direct/relayed, time to first verified byte, MB/s)
// is printed and recorded in test-artifacts/browser-figures.jsonl.
//
// Proof that bytes came from the peer: once the peer holds every piece the
// upstream refuses the file's bodies (GET → 503, HEAD still answers, so the
// hub's manifest stays valid) and the hub keeps no piece cache, so neither
// the hub nor the origin can serve a byte of it; the page also counts every
// byte from peers and none from the origin.
//
// Which NATs: full cone, port-restricted, symmetric and UDP-blocked on both
// sides (address-restricted is in the lab and its probe; add it with
// TUBER_NAT_TYPES). A permanent peer on a UDP-blocked network cannot serve
// at all: webrtc-rs 0.21 gathers TURN relays over UDP only (its
// turn_relayer skips `?transport=tcp` and `turns:` URLs), so that column is
// printed as n/a, not run.
//
// TUBER_NAT_TURN=0 runs the same matrix with no TURN at the hub: the
// symmetric × port-restricted/symmetric and UDP-blocked cells must then fail
// (that run fails by design; it shows the test can).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  startHub, startPeerDaemon, startUpstream, launchChromium, newClientContext, openClientPage, deterministicBytes,
  sha256Hex, artifactPath, recordFigure, mbps, MiB, HUB_BIN, PEER_BIN,
} from './harness.mjs';
import { createLab, labUnavailable, namespacesTagged, nsHttpJson, sh } from '../netlab/netlab.mjs';
import { startCoturn, coturnUnavailable } from '../netlab/coturn.mjs';

const TYPES = (process.env.TUBER_NAT_TYPES ?? 'full-cone,port-restricted,symmetric,udp-blocked').split(',');
const TURN = process.env.TUBER_NAT_TURN !== '0';
const FILE_PATH = '/files/nat-16MiB.bin';
const FILE_LEN = 16 * MiB;
/** One cell: page ready, connect, 16 MiB (relayed cells are slower). */
const CELL_MS = 60_000;
/** Browser rows run this many at a time: on 2 cores a second Chromium, coturn and the peers overflow UDP receive buffers (kernel default 208 KiB) and SCTP stalls past the page's 5 s request timeout. */
const ROWS_AT_ONCE = 1;
/** Fixed ports are safe inside a namespace this test made. */
const HUB_PORT_BASE = 8400;
const SECRET = `lab-secret-${process.pid}`;

/** Whether a direct path exists between these NATs (RFC 4787 reasoning; see docs/architecture.md). */
function directPossible(b, p) {
  if (b === 'udp-blocked' || p === 'udp-blocked') return false;
  const strict = (t) => t === 'port-restricted' || t === 'symmetric';
  // A symmetric NAT's port toward the other side is not the one STUN saw;
  // only a NAT that accepts any port from a contacted address lets it in.
  if (b === 'symmetric' && strict(p)) return false;
  if (p === 'symmetric' && strict(b)) return false;
  return true;
}

const skip = labUnavailable() ?? coturnUnavailable() ?? false;

test('NAT matrix: every browser NAT × permanent-peer NAT pair gets 16 MiB from the peer, direct or through TURN', { skip, timeout: 300_000 }, async (t) => {
  const t0 = Date.now();
  const homes = [];
  for (const type of TYPES) homes.push({ name: `b:${type}`, type }, { name: `p:${type}`, type });
  const lab = createLab({ homes });
  const cleanups = [];
  const logs = {};
  t.after(async () => {
    // UDP drops per namespace (receive-buffer overflows stall SCTP), for the artifacts.
    logs['udp-counters.txt'] = [lab.inet, ...[...lab.homes.values()].flatMap((h) => [h.ns, h.router])].map((ns) => {
      try {
        const udp = sh('cat', ['/proc/net/snmp'], { ns }).split('\n').filter((l) => l.startsWith('Udp:'));
        return `${ns}\n${udp.join('\n')}`;
      } catch (e) { return `${ns}: ${e.message}`; }
    }).join('\n');
    for (const fn of cleanups.reverse()) {
      try { await fn(); } catch (e) { console.error(`cleanup: ${e}`); }
    }
    lab.destroy();
    const dir = artifactPath('nat-matrix');
    mkdirSync(dir, { recursive: true });
    for (const [name, log] of Object.entries(logs)) writeFileSync(join(dir, name), String(log));
    assert.deepEqual(namespacesTagged(lab.tag), [], 'every namespace the test made is gone');
  });

  // The lab is what it says: each home's NAT measured from inside it.
  const probes = await Promise.all(homes.map(async (h) => [h.name, await lab.probe(h.name)]));
  for (const [name, p] of probes) {
    assert.equal(p.type, lab.homes.get(name).type, `${name} behaves as named: ${JSON.stringify(p)}`);
  }

  const body = deterministicBytes(FILE_LEN, 0x0a7_0015);
  EXPECTED_SHA = sha256Hex(body);
  const upstream = await startUpstream({ [FILE_PATH]: { body, type: 'application/octet-stream' } }, { host: lab.uplink });
  cleanups.push(() => upstream.stop());
  // Homes reach the lab's Internet only, not the root namespace (where the upstream is).
  await assert.rejects(nsHttpJson(lab.homes.get(homes[0].name).ns)(upstream.url + '/'), 'a home cannot reach the root namespace');
  const coturn = await startCoturn(lab, { secret: SECRET });
  logs['coturn.log'] = { toString: () => coturn.log() };

  console.log(`NAT lab ${lab.tag}: internet ${lab.net}.0.0/24, hub and coturn on ${lab.addr.a}`);
  // One hub per permanent peer, so a page's only provider is its cell's peer.
  const peerTypes = TYPES.filter((p) => p !== 'udp-blocked');
  const origins = peerTypes.map((_, i) => `http://${lab.addr.a}:${HUB_PORT_BASE + i}`);
  // allSettled: every process started has its cleanup registered before
  // a failure ends the test (Promise.all would leave the others starting).
  const settled = await Promise.allSettled(peerTypes.map(async (p, i) => {
    const port = HUB_PORT_BASE + i;
    const hub = await startHub({
      upstream: upstream.url,
      bin: lab.wrapper(lab.inet, HUB_BIN),
      listen: `0.0.0.0:${port}`,
      stun: `${lab.addr.a}:0`,
      reachAt: `http://${lab.uplinkInet}:${port}`,
      config: {
        public_url: origins[i],
        // No piece cache: the hub cannot serve the file once the upstream refuses it.
        piece_cache_bytes: 0,
        ...(TURN ? { turn: { urls: coturn.urls, secret: SECRET, ttl: '1h' } } : {}),
      },
    });
    cleanups.push(() => hub.stop());
    logs[`hub-${p}.log`] = hub.log;
    const { pieces } = await hub.announce(FILE_PATH);
    const home = lab.homes.get(`p:${p}`);
    const peer = await startPeerDaemon({
      hub,
      url: origins[i],
      invite: await hub.invite(`nat ${p}`),
      bin: lab.wrapper(home.ns, PEER_BIN),
      apiJson: nsHttpJson(home.ns),
    });
    cleanups.push(() => peer.stop());
    logs[`peer-${p}.log`] = peer.log;
    await peer.waitHolding({ minPieces: pieces });
    return { p, hub, peer, origin: origins[i] };
  }));
  const failed = settled.find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
  const served = settled.map((r) => r.value);
  upstream.refuseBodies(FILE_PATH);
  const setupMs = Date.now() - t0;

  const cells = [];
  const browserLogs = [];
  logs['browser.log'] = { toString: () => browserLogs.join('\n') };
  const launch = (b) => launchChromium({
    executablePath: lab.wrapper(lab.homes.get(`b:${b}`).ns, '/usr/bin/chromium'),
    // Service Workers on plain http://10.x: allowed for these origins only.
    args: [`--unsafely-treat-insecure-origin-as-secure=${origins.join(',')}`],
  });
  // Browser rows run ROWS_AT_ONCE at a time, in rounds in which no two
  // pages share a hub: a page is a peer too, and one page serving another
  // would not be the permanent peer serving it.
  for (let g = 0; g < TYPES.length;) {
    const group = TYPES.slice(g, g + Math.max(1, Math.min(ROWS_AT_ONCE, served.length)));
    g += group.length;
    const browsers = await Promise.all(group.map(launch));
    for (const br of browsers) cleanups.push(() => br.close());
    for (let r = 0; r < served.length; r++) {
      const round = await Promise.all(group.map((b, j) => cell(browsers[j], b, served[(j + r) % served.length], browserLogs)));
      cells.push(...round);
    }
    await Promise.all(browsers.map((br) => br.close()));
  }
  if (TYPES.length > 0 && served.length < ROWS_AT_ONCE) console.log('fewer hubs than rows at once: rows ran fewer at a time');

  printMatrix(cells, setupMs, Date.now() - t0);
  for (const c of cells.filter((x) => x.attempts > 1)) console.log(`retried ${c.b} × ${c.p} after a stall: ${c.firstError}`);
  const usage = coturn.usage();
  console.log(`coturn relayed (per username = per swarm): ${JSON.stringify(usage)}`);
  const rate = (list) => (list.length ? list.reduce((n, c) => n + c.mbps, 0) / list.length : 0);
  const ok = cells.filter((c) => c.ok);
  const relayed = ok.filter((c) => c.relayed);
  const direct = ok.filter((c) => !c.relayed);
  recordFigure('NAT matrix: direct permanent peer → Chromium (mean)', rate(direct), 'MB/s', { cells: direct.length });
  recordFigure('NAT matrix: relayed through coturn (mean)', rate(relayed), 'MB/s', { cells: relayed.length });

  for (const c of cells) {
    assert.ok(c.ok, `${c.b} browser × ${c.p} peer: ${c.error}`);
    assert.equal(c.relayed, !directPossible(c.b, c.p),
      `${c.b} × ${c.p}: ${directPossible(c.b, c.p) ? 'direct' : 'relayed'} expected, path ${JSON.stringify(c.path)}`);
  }
  assert.equal(cells.length, TYPES.length * peerTypes.length);
});

/**
 * One cell. A second attempt only when the first proved the path (a link
 * was selected and verified bytes came over it) and then stalled: the
 * matrix is about reachability, and a mid-transfer SCTP stall (seen on a
 * loaded 2-core machine after UDP receive-buffer drops in Chromium; the
 * page drops a peer silent for 5 s) is a transport matter, reported as such.
 */
async function cell(browser, b, s, logs) {
  const first = await attempt(browser, b, s, logs);
  if (first.ok || !(first.stats?.bytesFromPeers > 0 && first.paths?.length)) return { ...first, attempts: 1 };
  const second = await attempt(browser, b, s, logs);
  return { ...second, attempts: 2, firstError: first.error };
}

/** One attempt: a fresh context on hub `s`, fetch the file, time it, read the ICE path. */
async function attempt(browser, b, s, logs) {
  const out = { b, p: s.p, ok: false };
  const context = await newClientContext(browser, s.origin, { logs, label: `${b}×${s.p}` });
  try {
    // ?tuber-debug: the page runtime's own log goes to the browser log.
    const { page, ready } = await openClientPage(context, s.origin, '/?tuber-debug');
    if (ready.value?.degraded) throw new Error(`degraded: ${JSON.stringify(ready)}`);
    const got = await page.evaluate(async ({ path, timeoutMs }) => {
      const hex = (buf) => [...new Uint8Array(buf)].map((x) => x.toString(16).padStart(2, '0')).join('');
      const ctrl = new AbortController();
      const timer = setTimeout(() => ctrl.abort(new Error(`over ${timeoutMs} ms`)), timeoutMs);
      const t0 = performance.now();
      // The path as long as the link lives (a failed cell closes it).
      let seen = [];
      const sampler = setInterval(async () => {
        const p = await window.__tuber.paths();
        if (p.length) seen = p;
      }, 250);
      try {
        const res = await fetch(path, { signal: ctrl.signal });
        if (!res.ok || !res.body) return { status: res.status };
        const reader = res.body.getReader();
        const parts = [];
        let firstMs = null;
        let n = 0;
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          // The Service Worker streams only verified pieces.
          if (firstMs === null) firstMs = performance.now() - t0;
          parts.push(value);
          n += value.length;
        }
        const ms = performance.now() - t0;
        const all = new Uint8Array(n);
        let at = 0;
        for (const part of parts) { all.set(part, at); at += part.length; }
        const sha256 = hex(await crypto.subtle.digest('SHA-256', all));
        return { status: res.status, length: n, sha256, ms, firstMs, stats: window.__tuber.stats(), paths: await window.__tuber.paths() };
      } catch (e) {
        return { error: String(e), ms: performance.now() - t0, stats: window.__tuber.stats(), paths: seen };
      } finally {
        clearInterval(sampler);
        clearTimeout(timer);
      }
    }, { path: FILE_PATH, timeoutMs: CELL_MS });
    Object.assign(out, got);
    if (got.error) throw new Error(`${got.error} after ${Math.round(got.ms)} ms; stats ${JSON.stringify(got.stats)} paths ${JSON.stringify(got.paths)}`);
    if (got.status !== 200) throw new Error(`status ${got.status}`);
    if (got.length !== FILE_LEN || got.sha256 !== EXPECTED_SHA) throw new Error(`wrong bytes: ${got.length} B, sha256 ${got.sha256}`);
    if (got.stats.bytesFromOrigin !== 0 || got.stats.bytesFromPeers < FILE_LEN) {
      throw new Error(`not all from the peer: ${JSON.stringify(got.stats)}`);
    }
    const peerId = (await s.peer.swarm()).peerId;
    out.path = got.paths.find((x) => x.peer === peerId) ?? got.paths[0] ?? null;
    if (!out.path) throw new Error(`no open link to the peer: ${JSON.stringify(got.paths)}`);
    out.relayed = out.path.relayed;
    out.mbps = mbps(FILE_LEN, got.ms);
    out.ok = true;
  } catch (e) {
    out.error = String(e?.message ?? e).slice(0, 400);
  } finally {
    await context.close().catch(() => {});
  }
  return out;
}

/** SHA-256 of the file every cell fetches (set once it is made). */
let EXPECTED_SHA = '';

function printMatrix(cells, setupMs, totalMs) {
  const peers = [...new Set(cells.map((c) => c.p)), 'udp-blocked'].filter((v, i, a) => a.indexOf(v) === i);
  const rows = [...new Set(cells.map((c) => c.b))];
  const w = 40;
  const lines = [`NAT matrix (browser ↓ × permanent peer →), TURN ${TURN ? 'on' : 'OFF'}; setup ${(setupMs / 1000).toFixed(1)} s, total ${(totalMs / 1000).toFixed(1)} s`];
  lines.push(['browser \\ peer'.padEnd(20), ...peers.map((p) => p.padEnd(w))].join(''));
  for (const b of rows) {
    const parts = [b.padEnd(20)];
    for (const p of peers) {
      const c = cells.find((x) => x.b === b && x.p === p);
      let text;
      if (!c) text = p === 'udp-blocked' ? 'n/a (engine: UDP-only TURN)' : '-';
      else if (!c.ok) text = `FAIL ${c.error?.slice(0, w - 6) ?? ''}`;
      else {
        const how = c.relayed ? `relay/${c.path.relayProtocol ?? c.path.protocol}` : `direct/${c.path.local}-${c.path.remote}`;
        text = `${how} ${Math.round(c.firstMs)}ms ${c.mbps.toFixed(1)}MB/s${c.attempts > 1 ? ' (2nd)' : ''}`;
      }
      parts.push(text.slice(0, w - 1).padEnd(w));
    }
    lines.push(parts.join(''));
  }
  console.log(lines.join('\n'));
  writeFileSync(artifactPath('nat-matrix/matrix.txt'), lines.join('\n') + '\n');
  writeFileSync(artifactPath('nat-matrix/cells.json'), JSON.stringify(cells.map(({ stats, paths, ...c }) => ({ ...c, stats, paths })), null, 2));
}
