// Hedged fetches: the policy (pure), and the fetcher with fake peers and a
// fake origin: a late peer request is also asked of the origin, the first
// verified copy wins, the other is cancelled or dropped, nothing counts
// twice, and the number of hedges at once stays bounded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { PieceFetcher, ResourceStream, Stats } from '../fetcher.js';
import { HedgePolicy, HEDGE_MIN_MS, HEDGE_MAX_MS } from '../scheduler.js';
import { ByteLru } from '../lru.js';
import { RequestFailed } from '../wire-session.js';
import { toHex } from '../proto/json.js';

// --- the policy ---

test('policy: the deadline is the floor for a piece a fast peer answers, k × expected for a deep queue, capped', () => {
  const h = new HedgePolicy({ minMs: 800, maxMs: 3000, factor: 3, priorBytesPerMs: 4000 });
  // Before any answer: the prior rate (4000 B/ms). One 256 KiB piece: 3 × 66 ms < 800.
  assert.equal(h.deadline('p', 262144, 1000), 1800);
  // 2 MiB queued: 3 × 524 ms.
  assert.equal(Math.round(h.deadline('p', 2 << 20, 0)), Math.round(3 * (2 << 20) / 4000));
  // A slow peer (100 B/ms): capped.
  h.answered('slow', 100_000, 1000);
  assert.equal(h.rate('slow'), 100);
  assert.equal(h.deadline('slow', 262144, 0), 3000);
  assert.equal(HEDGE_MIN_MS, 1500);
  assert.ok(HEDGE_MAX_MS >= 2 * HEDGE_MIN_MS);
});

test('policy: a peer\'s rate is learnt from its answers (queued bytes / time), smoothed', () => {
  const h = new HedgePolicy({ priorBytesPerMs: 1000 });
  assert.equal(h.rate('p'), 1000);
  // Two requests out at once: the second has both pieces ahead of it.
  assert.equal(h.sent('p', 1000), 1000);
  assert.equal(h.sent('p', 1000), 2000);
  h.ended('p', 1000);
  h.answered('p', 1000, 10);
  assert.equal(h.rate('p'), 100);
  h.ended('p', 1000);
  h.answered('p', 2000, 10);
  assert.ok(h.rate('p') > 100 && h.rate('p') < 200, String(h.rate('p')));
  assert.equal(h.sent('p', 500), 500, 'nothing queued any more');
  // One very slow answer moves the rate, but not all the way.
  const before = h.rate('p');
  h.answered('p', 1000, 10_000);
  assert.ok(h.rate('p') > before / 2);
});

test('policy: at most maxPerResource hedges per resource and maxTotal in all', () => {
  const h = new HedgePolicy({ maxPerResource: 2, maxTotal: 4 });
  h.hedgeStarted('a');
  h.hedgeStarted('a');
  assert.equal(h.canHedge('a'), false);
  assert.equal(h.canHedge('b'), true);
  h.hedgeStarted('b');
  h.hedgeStarted('c');
  assert.equal(h.canHedge('d'), false, 'four in all');
  h.hedgeEnded('a');
  assert.equal(h.canHedge('a'), true);
  assert.equal(h.canHedge('d'), true);
  h.hedgeEnded('a');
  h.hedgeEnded('b');
  h.hedgeEnded('c');
  assert.equal(h.total, 0);
  assert.equal(h.running.size, 0);
});

// --- the fetcher ---

const PS = 16384;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function resource(len, path = '/f.bin', seed = 1) {
  const data = new Uint8Array(len);
  let x = seed;
  for (let i = 0; i < len; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    data[i] = x >>> 24;
  }
  const pieces = [];
  for (let at = 0; at < len; at += PS) pieces.push(createHash('sha256').update(data.subarray(at, at + PS)).digest('hex'));
  const manifest = { path, length: len, content_type: 'application/octet-stream', version: '"1"', piece_size: PS, pieces };
  return { data, res: { manifest, url: `http://o.test${path}` } };
}

/**
 * An origin answering Range requests of the resources in `files` (url →
 * data) after `delayMs`; an aborted request rejects. Records requests, aborts
 * and the most requests open at once, in all and per URL.
 */
function origin(files, delayMs = 0) {
  const log = { requests: [], aborted: 0, open: 0, maxOpen: 0, openBy: new Map(), maxOpenBy: new Map() };
  const fetchImpl = async (url, init) => {
    const data = files.get(url);
    const m = /^bytes=(\d+)-(\d+)$/.exec(init.headers.range);
    const [a, b] = [Number(m[1]), Number(m[2])];
    assert.equal(init.headers['x-tuber-origin'], '1');
    log.requests.push([url, a, b]);
    log.open++;
    log.maxOpen = Math.max(log.maxOpen, log.open);
    log.openBy.set(url, (log.openBy.get(url) ?? 0) + 1);
    log.maxOpenBy.set(url, Math.max(log.maxOpenBy.get(url) ?? 0, log.openBy.get(url)));
    try {
      await new Promise((resolve, reject) => {
        const t = setTimeout(resolve, delayMs);
        init.signal.addEventListener('abort', () => {
          clearTimeout(t);
          log.aborted++;
          reject(new DOMException('aborted', 'AbortError'));
        });
      });
    } finally {
      log.open--;
      log.openBy.set(url, log.openBy.get(url) - 1);
    }
    return new Response(data.slice(a, b + 1), { status: 206, headers: { 'content-range': `bytes ${a}-${b}/${data.length}` } });
  };
  return { fetchImpl, log };
}

/**
 * A swarm of peers that have every piece of `res`; `serve(peer, index,
 * bytes, signal)` answers a request (a promise; it may never settle). The
 * link rejects with `cancelled` when the request is cancelled, as peer.js
 * does, unless `honourCancel` is false (then the answer still arrives).
 */
function fakeSwarm(resList, providers, serve, { honourCancel = true } = {}) {
  const byHash = new Map();
  for (const { res, data } of resList) res.manifest.pieces.forEach((h, i) => byHash.set(h, { i, data }));
  const events = { bad: [], dropped: [], have: [], down: new Map(), requests: 0, cancelled: 0 };
  const links = new Map();
  let fetcher;
  const swarm = {
    peerId: 'f'.repeat(64),
    links,
    events,
    want(hashes, cb) {
      queueMicrotask(() => cb(providers.map((p) => ({ ...p, pieces: hashes.map((_, i) => i) }))));
    },
    canConnect: () => true,
    connect(peer) {
      if (!links.has(peer)) {
        links.set(peer, {
          request: (hashBytes, len, signal) => {
            events.requests++;
            const { i, data } = byHash.get(toHex(hashBytes));
            const answer = Promise.resolve().then(() => serve(peer, i, data.slice(i * PS, i * PS + len), signal));
            if (!honourCancel || !signal) return answer;
            return new Promise((resolve, reject) => {
              signal.addEventListener('abort', () => {
                events.cancelled++;
                reject(new RequestFailed('cancelled'));
              });
              answer.then(resolve, reject);
            });
          },
        });
        queueMicrotask(() => fetcher.linkChanged(peer, true));
      }
      return true;
    },
    link: (peer) => links.get(peer),
    count: (peer, up, down) => events.down.set(peer, (events.down.get(peer) ?? 0) + down),
    reportBad: (peer, piece) => events.bad.push([peer, piece]),
    drop: (peer, why) => { events.dropped.push(peer); links.delete(peer); fetcher.linkChanged(peer, false, why); },
    announceHave: (h) => events.have.push(h),
    announceLost: () => {},
  };
  return { swarm, bind: (f) => { fetcher = f; } };
}

async function readAll(fetcher, res, start = 0, end = res.manifest.length - 1) {
  const s = new ResourceStream(fetcher, res, start, end);
  const parts = [];
  for (;;) {
    const c = await s.pull();
    if (c === null) break;
    parts.push(c);
  }
  return Buffer.concat(parts);
}

const T = { peer: 'a'.repeat(64), trusted: true, role: 'permanent' };
/** Short deadlines, so the tests run in milliseconds. */
const fastPolicy = (o = {}) => new HedgePolicy({ minMs: 40, maxMs: 200, ...o });

function setup({ files, serve, policy = fastPolicy(), originDelay = 0, honourCancel = true }) {
  const o = origin(new Map(files.map(({ res, data }) => [res.url, data])), originDelay);
  const fake = fakeSwarm(files, [T], serve, { honourCancel });
  const stats = new Stats();
  const logs = [];
  const f = new PieceFetcher({
    swarm: fake.swarm, cache: new ByteLru(1 << 22), stats, pieceSize: PS, fetchImpl: o.fetchImpl, hedgePolicy: policy,
    log: (...a) => logs.push(a.join(' ')),
  });
  fake.bind(f);
  return { f, o, fake, stats, logs };
}

test('a peer that never answers: the origin copies are used and the read completes, with hedges bounded', async () => {
  const file = resource(100_000);
  const never = () => new Promise(() => {});
  const { f, o, fake, stats } = setup({ files: [file], serve: never });
  const t0 = Date.now();
  const got = await readAll(f, file.res);
  const ms = Date.now() - t0;
  assert.ok(Buffer.from(file.data).equals(got));
  const n = file.res.manifest.pieces.length;
  assert.ok(ms < 2000, `the read took ${ms} ms`);
  assert.equal(stats.piecesHedged, n);
  assert.equal(stats.hedgeWonByOrigin, n);
  assert.equal(stats.bytesFromOrigin, file.data.length);
  assert.equal(stats.bytesFromPeers, 0);
  assert.equal(stats.piecesVerified, n);
  assert.equal(fake.swarm.events.have.length, n);
  assert.ok(o.log.maxOpenBy.get(file.res.url) <= 2, `at most 2 hedges of one resource: ${o.log.maxOpenBy.get(file.res.url)}`);
  // The peer requests were cancelled; a slow peer is not taken for a failed one.
  assert.equal(fake.swarm.events.cancelled, n);
  assert.deepEqual(fake.swarm.events.dropped, []);
  assert.equal(f.scheduler.inFlight, 0);
  assert.equal(f.scheduler.peer(T.peer).failures, 0);
  assert.equal(f.hedgePolicy.total, 0);
  assert.equal(f.hedgePolicy.peer(T.peer).bytes, 0);
});

test('the measured case: the permanent peer\'s first pieces take 3 s (SCTP tail loss); the default policy gets them from the origin in about 1.5 s, before the 3 s', async () => {
  const file = resource(100_000);
  const { f, stats } = setup({
    files: [file],
    policy: new HedgePolicy(),
    serve: async (peer, i, bytes, signal) => {
      // Pieces 0 and 1 lose their last packet; the others come at once (but
      // after them: the channel is ordered).
      await new Promise((r) => {
        const t = setTimeout(r, i < 2 ? 3000 : 3010);
        signal.addEventListener('abort', () => { clearTimeout(t); r(); });
      });
      return bytes;
    },
  });
  const t0 = Date.now();
  const got = await readAll(f, file.res);
  const ms = Date.now() - t0;
  assert.ok(Buffer.from(file.data).equals(got));
  assert.ok(ms >= HEDGE_MIN_MS && ms < 2600, `the read took ${ms} ms`);
  assert.equal(stats.hedgeWonByOrigin, file.res.manifest.pieces.length);
  assert.equal(stats.bytesFromOrigin, file.data.length);
});

test('a peer that answers quickly: no origin request, nothing hedged', async () => {
  const file = resource(200_000);
  const { f, o, stats } = setup({ files: [file], serve: (peer, i, bytes) => bytes });
  const got = await readAll(f, file.res);
  assert.ok(Buffer.from(file.data).equals(got));
  assert.equal(o.log.requests.length, 0);
  assert.equal(stats.piecesHedged, 0);
  assert.equal(stats.bytesFromPeers, file.data.length);
  assert.equal(stats.bytesFromOrigin, 0);
});

test('with the default policy, a peer answering in 100 ms is never hedged', async () => {
  const file = resource(100_000);
  const { f, o, stats } = setup({
    files: [file], policy: new HedgePolicy(), serve: async (peer, i, bytes) => { await sleep(100); return bytes; },
  });
  const got = await readAll(f, file.res);
  assert.ok(Buffer.from(file.data).equals(got));
  assert.equal(o.log.requests.length, 0);
  assert.equal(stats.piecesHedged, 0);
});

test('a peer that answers after the origin won: its copy is dropped, nothing counts twice, no error', async () => {
  const file = resource(100_000);
  const n = file.res.manifest.pieces.length;
  let late = 0;
  const { f, fake, stats, logs } = setup({
    files: [file],
    honourCancel: false,
    serve: async (peer, i, bytes) => {
      await sleep(150);
      late++;
      return bytes;
    },
  });
  const got = await readAll(f, file.res);
  assert.ok(Buffer.from(file.data).equals(got));
  // Let the peer's late answers arrive.
  while (late < n) await sleep(20);
  await sleep(20);
  assert.ok(stats.hedgeWonByOrigin >= 1);
  assert.equal(stats.bytesFromPeers + stats.bytesFromOrigin, file.data.length, JSON.stringify(stats));
  assert.equal(stats.piecesVerified, n, 'each piece verified once');
  assert.equal(new Set(fake.swarm.events.have).size, n);
  assert.equal(fake.swarm.events.have.length, n, 'each piece announced once');
  assert.deepEqual(fake.swarm.events.dropped, []);
  assert.equal(stats.piecesCorrupt, 0);
  assert.equal(f.scheduler.inFlight, 0);
  assert.equal(f.scheduler.pieces.size, 0, 'no state left behind for done pieces');
  assert.equal(f.jobs.size, 0);
  assert.ok(!logs.some((l) => /failed/.test(l)), logs.join('\n'));
});

test('a late peer that wins the race while the origin is slow: the origin request is aborted, the peer copy counts', async () => {
  const file = resource(50_000);
  const n = file.res.manifest.pieces.length;
  const { f, o, stats } = setup({
    files: [file],
    originDelay: 5_000,
    serve: async (peer, i, bytes) => { await sleep(120); return bytes; },
  });
  const t0 = Date.now();
  const got = await readAll(f, file.res);
  assert.ok(Date.now() - t0 < 2000);
  assert.ok(Buffer.from(file.data).equals(got));
  assert.ok(stats.piecesHedged >= 1);
  assert.equal(stats.hedgeWonByOrigin, 0);
  assert.equal(stats.bytesFromPeers, file.data.length);
  assert.equal(stats.bytesFromOrigin, 0);
  assert.equal(stats.piecesVerified, n);
  await sleep(10);
  assert.equal(o.log.aborted, stats.piecesHedged, 'every hedge was aborted');
  assert.equal(o.log.open, 0);
  assert.equal(f.hedgePolicy.total, 0);
});

test('a slow swarm does not flood the origin: at most 2 hedges per resource and 4 in all', async () => {
  const files = [resource(80_000, '/a.bin', 1), resource(80_000, '/b.bin', 2), resource(80_000, '/c.bin', 3)];
  const never = () => new Promise(() => {});
  const { f, o, stats } = setup({ files, serve: never, originDelay: 100 });
  const got = await Promise.all(files.map((file) => readAll(f, file.res)));
  files.forEach((file, k) => assert.ok(Buffer.from(file.data).equals(got[k])));
  assert.ok(o.log.maxOpen <= 4, `origin requests at once: ${o.log.maxOpen}`);
  assert.ok(o.log.maxOpen >= 3, `the hedges did run in parallel: ${o.log.maxOpen}`);
  for (const file of files) assert.ok(o.log.maxOpenBy.get(file.res.url) <= 2, file.res.url);
  const n = files.reduce((s, file) => s + file.res.manifest.pieces.length, 0);
  assert.equal(stats.piecesHedged, n);
  assert.equal(stats.bytesFromOrigin, files.reduce((s, file) => s + file.data.length, 0));
});

test('a hedge whose origin request fails leaves the piece to the peer', async () => {
  const file = resource(30_000);
  const { f, stats } = setup({ files: [file], serve: async (peer, i, bytes) => { await sleep(150); return bytes; } });
  f.fetchImpl = async () => new Response('no', { status: 503 });
  const got = await readAll(f, file.res);
  assert.ok(Buffer.from(file.data).equals(got));
  assert.ok(stats.piecesHedged >= 1);
  assert.equal(stats.bytesFromPeers, file.data.length);
});

test('a peer that fails while its piece is hedged: the origin copy is used', async () => {
  const file = resource(30_000);
  const { f, stats } = setup({
    files: [file],
    originDelay: 60,
    serve: async () => { await sleep(60); throw new RequestFailed('closed'); },
  });
  const got = await readAll(f, file.res);
  assert.ok(Buffer.from(file.data).equals(got));
  assert.equal(stats.bytesFromOrigin, file.data.length);
});

test('a bad copy that arrives after the origin won still gets its sender reported and dropped', async () => {
  const file = resource(20_000);
  const n = file.res.manifest.pieces.length;
  let late = 0;
  const { f, fake, stats } = setup({
    files: [file],
    honourCancel: false,
    serve: async (peer, i, bytes) => {
      await sleep(120);
      bytes[0] ^= 1;
      late++;
      return bytes;
    },
  });
  const got = await readAll(f, file.res);
  assert.ok(Buffer.from(file.data).equals(got));
  while (late < n) await sleep(20);
  await sleep(20);
  assert.equal(stats.hedgeWonByOrigin, n);
  assert.equal(stats.piecesCorrupt, n);
  assert.equal(stats.piecesVerified, n);
  assert.equal(fake.swarm.events.bad.length, n);
  assert.ok(fake.swarm.events.dropped.includes(T.peer));
  assert.ok(f.scheduler.isBanned(T.peer));
  assert.equal(f.scheduler.inFlight, 0);
  assert.equal(f.scheduler.pieces.size, 0);
});

test('only the first pieces still out are hedged: read-ahead pieces wait behind them', async () => {
  const file = resource(8 * PS);
  const never = () => new Promise(() => {});
  const { f, o } = setup({ files: [file], serve: never });
  const got = await readAll(f, file.res);
  assert.ok(Buffer.from(file.data).equals(got));
  // The origin was asked for the pieces in order, two at a time at most:
  // never a later piece while two earlier ones were still out.
  const starts = o.log.requests.map(([, a]) => a / PS);
  assert.deepEqual(starts, [...starts].sort((a, b) => a - b), `hedged in order: ${starts}`);
  assert.ok(o.log.maxOpenBy.get(file.res.url) <= 2);
});
