// Reading a resource through the fetcher with a fake swarm and a fake
// origin: verification, peers first, the origin as the fallback.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { PieceFetcher, ResourceStream, Stats } from '../fetcher.js';
import { ByteLru } from '../lru.js';
import { RequestFailed } from '../wire-session.js';
import { toHex } from '../proto/json.js';

const PS = 16384;
function resource(len, seed = 1) {
  const data = new Uint8Array(len);
  let x = seed;
  for (let i = 0; i < len; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    data[i] = x >>> 24;
  }
  const pieces = [];
  for (let at = 0; at < len; at += PS) pieces.push(createHash('sha256').update(data.subarray(at, at + PS)).digest('hex'));
  const manifest = { path: '/f.bin', length: len, content_type: 'application/octet-stream', version: '"1"', piece_size: PS, pieces };
  return { data, res: { manifest, url: 'http://o.test/f.bin' } };
}

/** An origin answering Range requests from `data`; records them. */
function origin(data) {
  const requests = [];
  const fetchImpl = async (url, init) => {
    const m = /^bytes=(\d+)-(\d+)$/.exec(init.headers.range);
    const [a, b] = [Number(m[1]), Number(m[2])];
    requests.push([a, b]);
    assert.equal(init.headers['x-tuber-origin'], '1');
    return new Response(data.slice(a, b + 1), { status: 206, headers: { 'content-range': `bytes ${a}-${b}/${data.length}` } });
  };
  return { fetchImpl, requests };
}

/** A swarm whose peers serve from `data` through `serve(peer, index)`. */
function fakeSwarm(res, data, providers, serve) {
  const byHash = new Map(res.manifest.pieces.map((h, i) => [h, i]));
  const events = { bad: [], dropped: [], have: [], down: new Map() };
  const links = new Map();
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
          request: (hashBytes, len) => {
            const i = byHash.get(toHex(hashBytes));
            return Promise.resolve().then(() => serve(peer, i, data.slice(i * PS, i * PS + len)));
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
  let fetcher;
  return { swarm, bind: (f) => { fetcher = f; } };
}

async function readAll(fetcher, res, start, end) {
  const s = new ResourceStream(fetcher, res, start, end);
  const parts = [];
  for (;;) {
    const c = await s.pull();
    if (c === null) break;
    assert.ok(c.length <= 256 * 1024);
    parts.push(c);
  }
  return Buffer.concat(parts);
}

const T = { peer: 'a'.repeat(64), trusted: true, role: 'permanent' };
const B = { peer: 'b'.repeat(64), trusted: false, role: 'browser' };

test('all from a peer: verified, counted, announced', async () => {
  const { data, res } = resource(100_000);
  const o = origin(data);
  const fake = fakeSwarm(res, data, [T], (peer, i, bytes) => bytes);
  const stats = new Stats();
  const f = new PieceFetcher({ swarm: fake.swarm, cache: new ByteLru(1 << 20), stats, pieceSize: PS, fetchImpl: o.fetchImpl });
  fake.bind(f);
  const got = await readAll(f, res, 0, data.length - 1);
  assert.ok(Buffer.from(data).equals(got));
  assert.equal(stats.bytesFromPeers, data.length);
  assert.equal(stats.bytesFromOrigin, 0);
  assert.equal(stats.piecesVerified, res.manifest.pieces.length);
  assert.equal(o.requests.length, 0);
  assert.equal(fake.swarm.events.down.get(T.peer), data.length);
  assert.equal(fake.swarm.events.have.length, res.manifest.pieces.length);
});

test('a range in the middle, served from the pieces it touches', async () => {
  const { data, res } = resource(100_000);
  const fake = fakeSwarm(res, data, [T], (peer, i, bytes) => bytes);
  const f = new PieceFetcher({ swarm: fake.swarm, cache: new ByteLru(1 << 20), stats: new Stats(), pieceSize: PS });
  fake.bind(f);
  const got = await readAll(f, res, 20_000, 50_000);
  assert.ok(Buffer.from(data.subarray(20_000, 50_001)).equals(got));
});

test('a corrupt piece is reported with its sender, who is dropped; another source fills in', async () => {
  const { data, res } = resource(100_000);
  const o = origin(data);
  const fake = fakeSwarm(res, data, [T, B], (peer, i, bytes) => {
    if (peer === T.peer && i === 2) bytes[5] ^= 1;
    return bytes;
  });
  const stats = new Stats();
  const f = new PieceFetcher({ swarm: fake.swarm, cache: new ByteLru(1 << 20), stats, pieceSize: PS, fetchImpl: o.fetchImpl });
  fake.bind(f);
  const got = await readAll(f, res, 0, data.length - 1);
  assert.ok(Buffer.from(data).equals(got));
  assert.deepEqual(fake.swarm.events.bad, [[T.peer, res.manifest.pieces[2]]]);
  assert.ok(fake.swarm.events.dropped.includes(T.peer));
  assert.equal(stats.piecesCorrupt, 1);
  assert.equal(stats.bytesFromPeers + stats.bytesFromOrigin, data.length);
});

test('a peer that dies mid-read: the rest comes from the origin', async () => {
  const { data, res } = resource(200_000);
  const o = origin(data);
  let dead = false;
  const fake = fakeSwarm(res, data, [T], (peer, i, bytes) => {
    if (i >= 4) dead = true;
    if (dead) throw new RequestFailed('closed');
    return bytes;
  });
  const stats = new Stats();
  const f = new PieceFetcher({ swarm: fake.swarm, cache: new ByteLru(1 << 20), stats, pieceSize: PS, fetchImpl: o.fetchImpl });
  fake.bind(f);
  const got = await readAll(f, res, 0, data.length - 1);
  assert.ok(Buffer.from(data).equals(got));
  assert.ok(stats.bytesFromOrigin > 0);
  assert.equal(stats.bytesFromPeers + stats.bytesFromOrigin, data.length);
});

test('without peers (no WebRTC): every byte from the origin, in few Range requests', async () => {
  const { data, res } = resource(300_000);
  const o = origin(data);
  const stats = new Stats();
  const f = new PieceFetcher({ swarm: null, cache: new ByteLru(1 << 20), stats, pieceSize: PS, fetchImpl: o.fetchImpl });
  const got = await readAll(f, res, 0, data.length - 1);
  assert.ok(Buffer.from(data).equals(got));
  assert.equal(stats.bytesFromOrigin, data.length);
  assert.ok(o.requests.length <= 5, JSON.stringify(o.requests));
});

test('an origin whose bytes changed fails the read', async () => {
  const { data, res } = resource(50_000);
  const changed = data.slice();
  changed[100] ^= 1;
  const o = origin(changed);
  const f = new PieceFetcher({ swarm: null, cache: new ByteLru(1 << 20), stats: new Stats(), pieceSize: PS, fetchImpl: o.fetchImpl });
  await assert.rejects(readAll(f, res, 0, data.length - 1), /does not match/);
});
