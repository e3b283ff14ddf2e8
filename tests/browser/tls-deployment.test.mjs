// TLS deployments end to end, with the parts a real one uses, all on
// 127.0.0.1:
//
// 1. Debian's nginx terminating TLS in front of the hub, with a test CA made
//    here (openssl): `public_url = "https://localhost:PORT"`, so the
//    descriptor says wss:// and https:// everywhere. A permanent peer (the
//    headless `tuber-peer` daemon) joins the `https://` URL with an invite,
//    trusting the CA by `--ca-file`, and holds its assignments; real headless
//    Chromium trusts the CA the way a real machine does (an NSS database in
//    its HOME; no --ignore-certificate-errors), its Service Worker takes
//    control, and a 40 MiB file arrives verified from the permanent peer over
//    WebRTC; nginx's access log shows the hub sent far less than the file.
//    Same run: the daemon's join time over TLS against a second hub behind
//    the same nginx on a plain-HTTP port; and the desktop app's core
//    (`tuber-desktop --hidden`: no window, no display, a private D-Bus
//    session) joins the same https:// URL with its own invite and
//    `--ca-file`, becomes trusted, holds its assignments, and stops cleanly
//    on SIGTERM before Chromium comes.
// 2. The hub terminating TLS itself, with a certificate from pebble (Debian's
//    ACME test CA) over HTTP-01; the same peer, Chromium and download, both
//    trusting pebble's root.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  startUpstream, startHub, startPeerDaemon, launchChromium, newClientContext, openClientPage,
  fetchInPage, watchResponses, clientStats, recordFigure, artifactPath, deterministicBytes, sha256Hex,
  sleep, mbps, MiB, STOP_MS, PREFETCH_MS, PEER_START_MS, HUB_BIN, DESKTOP_BIN,
} from './harness.mjs';
import {
  makeTestCa, nssHome, startNginx, startPebble, startAcmeHub, freePort, labDir, removeLabDir, httpsJsonCa,
  spawnTracked,
} from './tls-lab.mjs';

const PATH = '/files/big-40MiB.bin';
const LEN = 40 * MiB + 12345; // not piece-aligned
const BODY = deterministicBytes(LEN, 0x7157_0040);
const SHA = sha256Hex(BODY);
const FILES = { [PATH]: { body: BODY, type: 'application/octet-stream' } };
/** A join: from the API call to `joined` + trusted in the daemon's status. */
const JOIN_MS = 20_000;
/** Joins measured per transport (the first cold, the rest rejoins). */
const JOIN_SAMPLES = 5;
const FETCH_MS = 60_000;

/**
 * One scenario's bookkeeping: cleanups run in reverse by one `t.after`
 * (each bounded), then the logs go to test-artifacts/NAME/.
 */
function openLab(t, name) {
  const t0 = Date.now();
  const cleanups = [];
  const logs = [];
  const logFiles = [];
  const dir = artifactPath(name);
  mkdirSync(dir, { recursive: true });
  t.after(async () => {
    for (const fn of cleanups.reverse()) {
      const c0 = Date.now();
      let timer;
      try {
        await Promise.race([fn(), new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error('did not finish in time')), STOP_MS + 5_000);
        })]);
      } catch (e) {
        console.error(`cleanup ${fn.label}: ${e}`);
      } finally {
        clearTimeout(timer);
      }
      logs.push(`cleanup ${fn.label}: ${Date.now() - c0} ms`);
    }
    for (const [file, log] of logFiles) writeFileSync(join(dir, file), log.toString());
    writeFileSync(join(dir, 'browser.log'), logs.join('\n') + '\n');
  });
  return {
    dir,
    logs,
    defer(label, fn) { fn.label = label; cleanups.push(fn); },
    saveLog(file, log) { logFiles.push([file, log]); },
    step(what) { logs.push(`${new Date().toISOString().slice(11, 23)} +${Date.now() - t0} ms: ${what}`); },
    /** A temp dir removed at the end. */
    tempDir(prefix) {
      const d = labDir(prefix);
      this.defer(`dir ${prefix}`, () => removeLabDir(d));
      return d;
    },
  };
}

/**
 * Joins `url` with `invite` through the daemon's API and waits until its
 * status says joined and trusted. Resolves to { ms, swarm }.
 */
async function timedJoin(peer, url, invite) {
  const t0 = performance.now();
  await peer.join(url, invite);
  let last;
  for (;;) {
    const { swarm } = await peer.swarm();
    last = swarm;
    if (swarm?.phase?.state === 'joined' && swarm.phase.trusted) return { ms: performance.now() - t0, swarm };
    if (swarm?.phase?.state === 'error') break;
    if (performance.now() - t0 > JOIN_MS) break;
    await sleep(2);
  }
  throw new Error(`the daemon did not join ${url} as trusted: ${JSON.stringify(last)}\n${peer.log}`);
}

/** Starts a daemon trusting `caFile`, joins `url` with an invite, waits until it holds every piece. */
async function permanentPeer(lab, { hub, url, caFile, pieces, label = 'tuber-peer' }) {
  const peer = await startPeerDaemon({ hub, url, joinAtStart: false, runArgs: ['--ca-file', caFile] });
  lab.defer(label, () => peer.stop());
  lab.saveLog(`${label}.log`, peer.log);
  const join = await timedJoin(peer, url, await hub.invite(`${label} (permanent peer)`));
  const holding = await peer.waitHolding({ minPieces: pieces, timeoutMs: PREFETCH_MS });
  lab.step(`${label}: joined ${url} trusted in ${join.ms.toFixed(1)} ms; holds its ${holding.assigned_held} assigned pieces (${holding.ms} ms)`);
  return { peer, joinMs: join.ms, holding };
}

/** Resolves to the first match of `re` in `proc`'s output; rejects if it exits or after `timeoutMs`. */
async function waitOutput(proc, re, timeoutMs) {
  const t0 = Date.now();
  for (;;) {
    const m = re.exec(proc.log.toString());
    if (m) return m;
    if (proc.gone) throw new Error(`${proc.name} exited before printing ${re}:\n${proc.log}`);
    if (Date.now() - t0 > timeoutMs) throw new Error(`${proc.name} did not print ${re} in ${timeoutMs} ms:\n${proc.log}`);
    await sleep(10);
  }
}

/**
 * The desktop app's core, as its autostart entry starts it (`--hidden`: the
 * tray, no window) on a private D-Bus session bus (a dbus-daemon of its own,
 * so nothing autolaunches a bus that outlives the test; no tray host: the
 * core runs without one), with no DISPLAY, in a fresh HOME, joining `url`
 * with `invite` and trusting `caFile`. Waits until its API says joined,
 * trusted, and every assigned piece (at least `pieces`) held; then SIGTERM:
 * exit 0, the swarm saved, its dirs and the bus gone. Resolves to the times.
 */
async function desktopCore(lab, { url, caFile, invite, pieces }) {
  assert.ok(existsSync(DESKTOP_BIN), `${DESKTOP_BIN} is missing: build it with cargo build -p tuber-desktop (or set TUBER_DESKTOP_BIN)`);
  const home = lab.tempDir('tuber-desktop-home-');
  const bus = spawnTracked('dbus-daemon', '/usr/bin/dbus-daemon', ['--session', '--nofork', '--nopidfile', '--print-address=1'],
    { env: { HOME: home } });
  lab.defer('dbus-daemon', () => bus.stop());
  lab.saveLog('dbus-daemon.log', bus.log);
  const address = (await waitOutput(bus, /^(unix:\S+)$/m, 10_000))[1];
  const data = join(home, 'data');
  const t0 = performance.now();
  const core = spawnTracked('tuber-desktop', DESKTOP_BIN,
    ['--hidden', '--data', data, '--config', join(home, 'config'), '--ca-file', caFile, '--join', url, '--invite', invite],
    {
      env: {
        HOME: home, XDG_CONFIG_HOME: join(home, '.config'), XDG_DATA_HOME: join(home, '.local', 'share'),
        XDG_RUNTIME_DIR: home, DBUS_SESSION_BUS_ADDRESS: address,
        DISPLAY: undefined, WAYLAND_DISPLAY: undefined, // unset: the core needs no display
        RUST_LOG: process.env.RUST_LOG ?? 'info,webrtc=warn,rtc=error',
      },
    });
  lab.defer('tuber-desktop', () => core.stop());
  lab.saveLog('tuber-desktop.log', core.log);
  const api = (await waitOutput(core, /tuber-desktop api on (http:\/\/\S+)/, PEER_START_MS))[1];
  const startMs = performance.now() - t0;
  const token = readFileSync(join(data, 'api.token'), 'utf8').trim();
  const status = async () => {
    const res = await fetch(`${api}/api/status`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5_000) });
    assert.equal(res.status, 200, '/api/status');
    return res.json();
  };
  let joinMs = null;
  let w;
  for (;;) {
    w = (await status()).swarms.find((s) => s.url.startsWith(url.replace(/\/$/, '')));
    if (joinMs === null && w?.phase?.state === 'joined' && w.phase.trusted) joinMs = performance.now() - t0 - startMs;
    if (joinMs !== null && w.assigned_pieces >= pieces && w.assigned_held === w.assigned_pieces) break;
    if (w?.phase?.state === 'error') throw new Error(`the desktop core could not join ${url}: ${JSON.stringify(w.phase)}\n${core.log}`);
    if (performance.now() - t0 > PEER_START_MS + PREFETCH_MS) {
      throw new Error(`the desktop core did not hold ${pieces}+ assigned pieces: ${JSON.stringify(w)}\n${core.log}`);
    }
    await sleep(joinMs === null ? 5 : 100);
  }
  const holdMs = performance.now() - t0 - startMs;
  lab.step(`tuber-desktop --hidden: API after ${startMs.toFixed(0)} ms, joined ${url} trusted ${joinMs.toFixed(1)} ms later, holds its ${w.assigned_held} assigned pieces after ${holdMs.toFixed(0)} ms`);

  const s0 = performance.now();
  process.kill(core.pid, 'SIGTERM');
  const exit = await Promise.race([core.exited, sleep(STOP_MS).then(() => 'still running')]);
  assert.deepEqual(exit, { code: 0, signal: null }, `the desktop core exits 0 on SIGTERM:\n${core.log}`);
  const stopMs = performance.now() - s0;
  const saved = readFileSync(join(data, 'swarms.json'), 'utf8');
  assert.ok(saved.includes(new URL(url).host), `the swarm is saved: ${saved}`);
  assert.ok(!existsSync(join(data, 'api.json')), 'api.json removed at exit');
  await bus.stop();
  removeLabDir(home);
  lab.step(`tuber-desktop: SIGTERM → exit 0 in ${stopMs.toFixed(0)} ms; its dirs and dbus-daemon (pid ${bus.pid}) gone`);
  return { startMs, joinMs, holdMs, stopMs, assigned: w.assigned_pieces };
}

/**
 * Chromium with `home` as HOME (its NSS database), a client page at
 * `origin` controlled by the Service Worker, the page's certificate issued
 * by `issuer` (a string or a RegExp). Then the control: the same Chromium
 * with an empty HOME refuses the certificate, so that trust came from the
 * NSS database and nothing else.
 */
async function trustingVisitor(lab, { home, origin, issuer }) {
  const browser = await launchChromium({ env: { ...process.env, HOME: home } });
  lab.defer('chromium', () => browser.close());
  const context = await newClientContext(browser, origin, { logs: lab.logs, label: 'visitor' });
  lab.defer('context', () => context.close());
  const tlsSeen = [];
  context.on('response', async (r) => {
    if (r.request().resourceType() === 'document') {
      tlsSeen.push({ url: r.url(), status: r.status(), tls: await r.securityDetails().catch((e) => String(e)) });
    }
  });
  const { page, ready } = await openClientPage(context, origin, '/');
  lab.logs.push(`[visitor] ready: ${JSON.stringify(ready)}; document TLS: ${JSON.stringify(tlsSeen)}`);
  assert.equal(ready.controlled, true, `the Service Worker controls the page once ready: ${JSON.stringify(ready)}`);
  assert.notEqual(ready.value?.degraded, true, `not degraded: ${JSON.stringify(ready)}`);
  const docTls = tlsSeen.find((s) => s.url.startsWith(origin))?.tls;
  assert.ok(docTls && typeof docTls === 'object', `Chromium's security details of the page: ${JSON.stringify(tlsSeen)}`);
  if (issuer instanceof RegExp) assert.match(docTls.issuer, issuer, JSON.stringify(docTls));
  else assert.equal(docTls.issuer, issuer, `the page's certificate is the test CA's: ${JSON.stringify(docTls)}`);
  assert.equal(docTls.subjectName, 'localhost');
  lab.step(`Chromium: page over ${docTls.protocol}, issuer ${docTls.issuer}, Service Worker in control`);

  const bare = lab.tempDir('tuber-chromium-bare-home-');
  const untrusting = await launchChromium({ env: { ...process.env, HOME: bare } });
  lab.defer('untrusting chromium', () => untrusting.close());
  const p = await untrusting.newPage();
  const err = await p.goto(`${origin}/`).then((r) => `loaded: ${r.status()}`, (e) => e.message);
  assert.match(err, /ERR_CERT_AUTHORITY_INVALID/, 'without the NSS database Chromium refuses the certificate');
  await untrusting.close();
  lab.step('Chromium with an empty HOME: ERR_CERT_AUTHORITY_INVALID');
  return { browser, context, page, docTls };
}

/**
 * The page fetches PATH through its Service Worker: the bytes are right and
 * ≥ 90% came from peers (the page's count and the permanent peer's own), the
 * hub's origin counter and the upstream saw ≤ 10%. `during()` may add
 * counts taken around the fetch. Resolves to the figures.
 */
async function downloadFromPeer(lab, { page, hub, peer, upstream, around = async () => async () => ({}) }) {
  const responses = watchResponses(page, PATH);
  const metricsBefore = await hub.metrics();
  const peerBefore = (await peer.swarm()).swarm;
  const upstreamBefore = upstream.bytesServed(PATH);
  const after = await around();
  const got = await fetchInPage(page, PATH, { timeoutMs: FETCH_MS });
  lab.step(`fetched ${got.length} B in ${got.ms.toFixed(0)} ms: ${JSON.stringify(got.after)}`);
  assert.equal(got.status, 200);
  assert.equal(got.length, LEN);
  assert.equal(got.sha256, SHA, 'the page got the upstream\'s bytes');
  assert.ok(responses.some((r) => r.fromServiceWorker), `answered by the Service Worker: ${JSON.stringify(responses)}`);

  const fromPeers = got.after.bytesFromPeers - (got.before?.bytesFromPeers ?? 0);
  const metricsAfter = await hub.metrics();
  const originBytes = (metricsAfter.get('tuber_origin_distributable_bytes_total') ?? 0)
    - (metricsBefore.get('tuber_origin_distributable_bytes_total') ?? 0);
  // The permanent peer's own count of what it sent (it is the only peer).
  const peerUp = ((await peer.swarm()).swarm?.bytes?.up ?? 0) - (peerBefore?.bytes?.up ?? 0);
  const upstreamBytes = upstream.bytesServed(PATH) - upstreamBefore;
  const figures = {
    ms: Math.round(got.ms), fromPeers, originBytes, peerUp, upstreamBytes,
    page: await clientStats(page), ...(await after()),
  };
  console.log(JSON.stringify(figures));
  lab.logs.push(`figures: ${JSON.stringify(figures)}`);
  await page.screenshot({ path: join(lab.dir, 'page.png') });

  assert.ok(fromPeers >= 0.9 * LEN, `the page counted ≥ 90% from peers: ${JSON.stringify(got.after)}`);
  assert.equal(got.after.piecesCorrupt, 0);
  assert.ok(peerUp >= 0.9 * LEN, `the permanent peer sent ≥ 90% of the file: +${peerUp} B`);
  assert.ok(originBytes <= 0.1 * LEN, `the hub's origin counter: +${originBytes} B (≤ 10%)`);
  assert.ok(upstreamBytes <= 0.1 * LEN, `the upstream served +${upstreamBytes} B of the file (≤ 10%)`);
  return figures;
}

test('TLS behind nginx: test CA, a permanent peer on https://, Chromium trusting the CA gets 40 MiB from the peer', { timeout: 120_000 }, async (t) => {
  const lab = openLab(t, 'tls-deployment');

  // The PKI: a CA, a leaf for localhost, and a HOME whose NSS database trusts the CA.
  const ca = makeTestCa(lab.tempDir('tuber-pki-'));
  copyFileSync(ca.caPem, join(lab.dir, 'test-ca.pem'));
  const home = nssHome(lab.tempDir('tuber-chromium-home-'), ca.caPem);
  lab.step('test CA, leaf and NSS database made');

  // The site, two hubs in front of it (TLS and plain), nginx in front of both.
  const upstream = await startUpstream(FILES);
  lab.defer('upstream', () => upstream.stop());
  const tlsPort = await freePort();
  let plainPort;
  do plainPort = await freePort(); while (plainPort === tlsPort);
  const origin = `https://localhost:${tlsPort}`;
  const plainOrigin = `http://localhost:${plainPort}`;
  const [hub, plainHub] = await Promise.all([
    startHub({ upstream: upstream.url, config: { public_url: origin } }),
    startHub({ upstream: upstream.url, config: { public_url: plainOrigin } }),
  ]);
  lab.defer('hub', () => hub.stop());
  lab.defer('plain hub', () => plainHub.stop());
  lab.saveLog('hub.log', hub.log);
  lab.saveLog('plain-hub.log', plainHub.log);
  const portOf = (u) => Number(new URL(u).port);
  const nginx = await startNginx({
    listeners: [
      { port: tlsPort, upstreamPort: portOf(hub.url), tls: true },
      { port: plainPort, upstreamPort: portOf(plainHub.url), tls: false },
    ],
    cert: ca.cert,
    key: ca.key,
  });
  lab.defer('nginx', async () => {
    writeFileSync(join(lab.dir, 'nginx.conf'), nginx.conf);
    for (const f of ['access.log', 'error.log']) {
      if (existsSync(join(nginx.dir, f))) copyFileSync(join(nginx.dir, f), join(lab.dir, `nginx-${f}`));
    }
    await nginx.stop();
  });
  lab.step(`nginx pid ${nginx.pid} on ${origin} (→ ${hub.url}) and ${plainOrigin} (→ ${plainHub.url})`);

  // The descriptor through nginx, checked by node against the test CA alone.
  const descriptor = await httpsJsonCa(`${origin}/.well-known/tuber`, { ca: readFileSync(ca.caPem) });
  assert.equal(descriptor.signaling, `wss://localhost:${tlsPort}/.tuber/ws`, JSON.stringify(descriptor));
  assert.ok(descriptor.pieces.startsWith(`${origin}/`), JSON.stringify(descriptor));
  const manifest = await hub.announce(PATH);
  assert.equal(manifest.length, LEN);
  lab.step(`descriptor over TLS ok; ${PATH} announced: ${manifest.pieces} pieces`);

  // Two daemons, one per hub, the same flags but the CA file: the plain one
  // joins http://localhost:PLAIN/ (the plain hub behind the same nginx, no
  // TLS anywhere), the permanent peer joins https://localhost:TLS/ trusting
  // the test CA by --ca-file. Each joins with an invite; the first joins are
  // cold (a new process's first connections), the rest rejoins with a new
  // invite (the engine reconnects to present it), alternating.
  const plainUrl = `${plainOrigin}/`;
  const tlsUrl = `${origin}/`;
  const plainPeer = await startPeerDaemon({ hub: plainHub, url: plainUrl, joinAtStart: false });
  lab.defer('plain peer', () => plainPeer.stop());
  lab.saveLog('plain-peer.log', plainPeer.log);
  const joins = { plain: [(await timedJoin(plainPeer, plainUrl, await plainHub.invite('plain-http peer'))).ms], tls: [] };
  const { peer, joinMs } = await permanentPeer(lab, { hub, url: tlsUrl, caFile: ca.caPem, pieces: manifest.pieces });
  joins.tls.push(joinMs);
  // Everything went through nginx over TLS: the prefetch too.
  const prefetched = nginx.accessLog()
    .filter((l) => l.port === tlsPort && l.uri.startsWith('/.tuber/piece/') && l.ssl.startsWith('TLS'));
  assert.ok(prefetched.reduce((n, l) => n + l.body_bytes_sent, 0) >= LEN,
    `the permanent peer prefetched its pieces over TLS through nginx: ${prefetched.length} requests`);
  for (let i = 1; i < JOIN_SAMPLES; i++) {
    joins.plain.push((await timedJoin(plainPeer, plainUrl, await plainHub.invite(`plain-http peer ${i}`))).ms);
    joins.tls.push((await timedJoin(peer, tlsUrl, await hub.invite(`tls permanent peer ${i}`))).ms);
  }
  await plainPeer.stop();
  const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
  const round = (xs) => xs.map((x) => Math.round(x * 10) / 10);
  recordFigure('permanent peer join over plain HTTP (nginx, loopback)', median(joins.plain), 'ms',
    { median_of: JOIN_SAMPLES, first_ms: round(joins.plain)[0], samples_ms: round(joins.plain) });
  recordFigure('permanent peer join over TLS (nginx, loopback)', median(joins.tls), 'ms',
    { median_of: JOIN_SAMPLES, first_ms: round(joins.tls)[0], samples_ms: round(joins.tls),
      plain_http_median_ms: round([median(joins.plain)])[0] });
  // The rejoins are settled: it holds its assignments again.
  await peer.waitHolding({ minPieces: manifest.pieces, timeoutMs: PREFETCH_MS });
  lab.step(`joins: plain ${JSON.stringify(round(joins.plain))} ms, TLS ${JSON.stringify(round(joins.tls))} ms; holding again`);

  // The other ways a daemon trusts or not (no invite: untrusted, no
  // assignments, so the download below is not disturbed): SSL_CERT_FILE
  // naming the CA joins; with neither that nor --ca-file (the system's and
  // the bundled roots only) the certificate is refused, and it says why.
  await Promise.all([
    ['SSL_CERT_FILE', { SSL_CERT_FILE: ca.caPem }, (w) => w?.phase?.state === 'joined'],
    ['no CA', {}, (w) => w?.phase?.state === 'retrying' || w?.phase?.state === 'error'],
  ].map(async ([label, env, done]) => {
    const other = await startPeerDaemon({ hub, url: tlsUrl, joinAtStart: false, env });
    lab.defer(`peer (${label})`, () => other.stop());
    lab.saveLog(`peer-${label.replace(/\W+/g, '-').toLowerCase()}.log`, other.log);
    await other.join(tlsUrl);
    const t1 = Date.now();
    let w;
    while (!done(w = (await other.swarm()).swarm)) {
      if (Date.now() - t1 > JOIN_MS) throw new Error(`peer (${label}): ${JSON.stringify(w)}\n${other.log}`);
      await sleep(20);
    }
    if (label === 'no CA') {
      assert.match(JSON.stringify(w.phase), /certificate|issuer|trust/i, `peer (${label}) says why: ${JSON.stringify(w.phase)}`);
    }
    lab.logs.push(`peer (${label}): ${JSON.stringify(w.phase)}`);
    await other.stop();
  }));
  lab.step('SSL_CERT_FILE: joined; no CA: certificate refused');

  // The desktop app's core on the same https:// URL, trusting the CA by
  // --ca-file, with its own invite; stopped before Chromium comes, so the
  // daemon alone serves the download below.
  const desk = await desktopCore(lab, { url: tlsUrl, caFile: ca.caPem, invite: await hub.invite('desktop core'), pieces: manifest.pieces });
  recordFigure('desktop core join over TLS (nginx, loopback)', desk.joinMs, 'ms',
    { from: 'API listening, --join at start', start_ms: Math.round(desk.startMs), holding_ms: Math.round(desk.holdMs),
      assigned_pieces: desk.assigned, sigterm_exit_ms: Math.round(desk.stopMs) });
  await peer.waitHolding({ minPieces: manifest.pieces, timeoutMs: PREFETCH_MS });

  const { page, docTls } = await trustingVisitor(lab, { home, origin, issuer: ca.caName });

  // What nginx sent for this file and for hub pieces while the page fetched.
  const around = async () => {
    const mark = nginx.accessLog().length;
    return async () => {
      await sleep(200); // nginx writes a line when a response ends
      const during = nginx.accessLog().slice(mark).filter((l) => l.port === tlsPort);
      const sum = (ls) => ls.reduce((n, l) => n + l.body_bytes_sent, 0);
      return {
        nginxFile: sum(during.filter((l) => l.uri === PATH)),
        nginxPieces: sum(during.filter((l) => l.uri.startsWith('/.tuber/piece/'))),
      };
    };
  };
  const f = await downloadFromPeer(lab, { page, hub, peer, upstream, around });
  recordFigure('permanent peer → Chromium behind nginx TLS', mbps(LEN, f.ms), 'MB/s',
    { bytes: LEN, ms: f.ms, tls: docTls.protocol, from_peers: f.fromPeers, nginx_file_bytes: f.nginxFile, nginx_piece_bytes: f.nginxPieces });
  assert.ok(f.nginxFile + f.nginxPieces <= 0.1 * LEN,
    `nginx sent ${f.nginxFile} B of ${PATH} and ${f.nginxPieces} B of pieces during the download (≤ 10% of ${LEN})`);
  lab.step('done');
});

test('TLS by the hub itself: a certificate from pebble over ACME HTTP-01, the permanent peer and Chromium trusting pebble\'s root', { timeout: 120_000 }, async (t) => {
  const lab = openLab(t, 'tls-acme-deployment');

  // pebble's own HTTPS listener gets a leaf of a test CA made here; the
  // hub's certificate comes from pebble, whose root both clients trust.
  const listenerPki = makeTestCa(lab.tempDir('tuber-pebble-pki-'));
  const httpPort = await freePort();
  const pebble = await startPebble({ dir: lab.tempDir('tuber-pebble-'), pki: listenerPki, httpPort });
  lab.defer('pebble', () => pebble.stop());
  lab.saveLog('pebble.log', pebble.logs.pebble);
  lab.saveLog('pebble-challtestsrv.log', pebble.logs.challtestsrv);
  copyFileSync(pebble.rootFile, join(lab.dir, 'pebble-root.pem'));
  const home = nssHome(lab.tempDir('tuber-chromium-home-'), pebble.rootFile, 'pebble-root');
  lab.step(`pebble at ${pebble.directory}; its root in the NSS database`);

  const upstream = await startUpstream(FILES);
  lab.defer('upstream', () => upstream.stop());
  const hub = await startAcmeHub({
    hubBin: HUB_BIN, upstream: upstream.url, domain: 'localhost', directory: pebble.directory,
    directoryCaFile: listenerPki.caPem, httpPort, rootPem: pebble.rootPem,
  });
  lab.defer('hub', () => hub.stop());
  lab.saveLog('hub.log', hub.log);
  recordFigure('ACME issuance by pebble (hub start → certificate served)', hub.issueMs, 'ms');
  lab.step(`hub ${hub.url}: certificate served after ${hub.issueMs.toFixed(0)} ms`);
  const origin = hub.url;
  const descriptor = await httpsJsonCa(`${origin}/.well-known/tuber`, { ca: pebble.rootPem });
  assert.equal(descriptor.signaling, `wss://localhost:${new URL(origin).port}/.tuber/ws`, JSON.stringify(descriptor));
  const manifest = await hub.announce(PATH);
  assert.equal(manifest.length, LEN);

  const { peer } = await permanentPeer(lab, { hub, url: `${origin}/`, caFile: pebble.rootFile, pieces: manifest.pieces });
  const { page, docTls } = await trustingVisitor(lab, { home, origin, issuer: /^Pebble Intermediate CA/ });
  const f = await downloadFromPeer(lab, { page, hub, peer, upstream });
  recordFigure('permanent peer → Chromium, hub TLS by ACME', mbps(LEN, f.ms), 'MB/s',
    { bytes: LEN, ms: f.ms, tls: docTls.protocol, from_peers: f.fromPeers });
  lab.step('done');
});
