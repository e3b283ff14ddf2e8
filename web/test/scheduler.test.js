// Piece scheduling: which peer gets which piece, the in-flight bounds, and
// the fallback to the origin.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Scheduler, MAX_PEER_FAILURES } from '../scheduler.js';

const T = 'a'.repeat(64); // trusted permanent
const P = 'b'.repeat(64); // untrusted permanent
const B = 'c'.repeat(64); // browser
const B2 = 'd'.repeat(64); // another browser
const info = {
  [T]: { peer: T, trusted: true, role: 'permanent' },
  [P]: { peer: P, trusted: false, role: 'permanent' },
  [B]: { peer: B, trusted: false, role: 'browser' },
  [B2]: { peer: B2, trusted: false, role: 'browser' },
};
const piece = (i) => i.toString(16).padStart(64, '0');

/** A scheduler where `peers` provide `n` pieces and are all connected. */
function setup(peers, n, opts = {}) {
  const s = new Scheduler(opts);
  for (let i = 0; i < n; i++) {
    s.need(piece(i), 0);
    s.setProviders(piece(i), peers.map((p) => info[p]), 0);
  }
  for (const p of peers) s.setPeerStatus(p, 'ready');
  return s;
}

/** Chooses and starts every piece it can; returns piece → peer. */
function assign(s, n, now = 0) {
  const out = [];
  for (let i = 0; i < n; i++) {
    if (!s.canStart()) break;
    const d = s.choose(piece(i), now);
    if (d.kind !== 'peer') {
      out.push(d.kind);
      continue;
    }
    s.started(piece(i), d.peer);
    out.push(d.peer);
  }
  return out;
}

test('trusted permanent peers first, up to their in-flight bound, then others', () => {
  const s = setup([B, P, T], 7, { maxPerPeer: 2 });
  assert.deepEqual(assign(s, 7), [T, T, P, P, B, B, 'wait']);
  assert.equal(s.inFlight, 6);
});

test('equal peers share the load by their requests in flight', () => {
  const s = setup([B, B2], 6, { maxPerPeer: 8 });
  assert.deepEqual(assign(s, 6), [B, B2, B, B2, B, B2]);
  // One finishes: the next piece goes where the fewest are in flight.
  s.succeeded(piece(0), B);
  s.need(piece(9), 0);
  s.setProviders(piece(9), [info[B2], info[B]], 0);
  assert.deepEqual(s.choose(piece(9), 0), { kind: 'peer', peer: B });
});

test('the total in flight is bounded', () => {
  const s = setup([T, P, B, B2], 20, { maxPerPeer: 8, maxInFlight: 5 });
  assert.equal(assign(s, 20).length, 5);
  assert.equal(s.canStart(), false);
  s.ended(T);
  assert.equal(s.canStart(), true);
});

test('missing moves to the next provider; when all failed, ask again once, then the origin', () => {
  const s = setup([T, B], 1);
  const p = piece(0);
  assert.deepEqual(s.choose(p, 0), { kind: 'peer', peer: T });
  s.started(p, T);
  s.failed(p, T, 'missing', 10);
  assert.deepEqual(s.choose(p, 10), { kind: 'peer', peer: B });
  s.started(p, B);
  s.failed(p, B, 'missing', 20);
  assert.deepEqual(s.choose(p, 20), { kind: 'rewant' });
  s.rewanted(p, 20);
  assert.equal(s.choose(p, 21).kind, 'wait'); // waiting for the new answer
  s.setProviders(p, [info[T], info[B]], 30); // the same answer: both failed it before
  assert.deepEqual(s.choose(p, 30), { kind: 'peer', peer: T });
  s.started(p, T);
  s.failed(p, T, 'missing', 40);
  s.started(p, B);
  s.failed(p, B, 'missing', 50);
  assert.equal(s.choose(p, 50).kind, 'origin');
});

test('an old answer is asked for again before dialing, without using up the rewant', () => {
  const s = new Scheduler({ providerTtlMs: 1000 });
  const p = piece(0);
  s.need(p, 0);
  s.setProviders(p, [info[T]], 0);
  assert.equal(s.choose(p, 999).kind, 'wait', 'fresh: wait for the link being dialed');
  assert.deepEqual([...s.toConnect([p], 0)], [T]);
  // No link to T, and the answer is old: the hub would refuse the offer.
  assert.deepEqual(s.choose(p, 1000), { kind: 'rewant' });
  s.rewanted(p, 1000);
  assert.deepEqual([...s.toConnect([p], 0)], [], 'nobody to dial on the old answer');
  s.setProviders(p, [info[T]], 1100);
  s.setPeerStatus(T, 'ready');
  s.started(p, T);
  s.failed(p, T, 'missing', 1200);
  assert.deepEqual(s.choose(p, 1200), { kind: 'rewant' }, 'the real rewant is still there');
  // With a link up, an old answer is still good: no dial is needed.
  const q = piece(1);
  s.need(q, 0);
  s.setProviders(q, [info[B]], 0);
  s.setPeerStatus(B, 'ready');
  assert.deepEqual(s.choose(q, 5000), { kind: 'peer', peer: B });
});

test('after maxAttempts failed attempts the piece comes from the origin', () => {
  const s = setup([T], 1, { maxAttempts: 3 });
  const p = piece(0);
  let now = 0;
  for (let k = 0; k < 3; k++) {
    const d = s.choose(p, now);
    assert.deepEqual(d, { kind: 'peer', peer: T }, `attempt ${k}`);
    s.started(p, T);
    s.failed(p, T, 'busy', now, 200);
    // Backing off: wait until the hint has passed.
    const w = s.choose(p, now);
    if (k < 2) {
      assert.equal(w.kind, 'wait');
      assert.equal(w.until, now + 200);
    }
    now += 200;
  }
  assert.deepEqual(s.choose(p, now), { kind: 'origin', reason: '3 failed attempts' });
});

test('a bad piece bans its sender for every piece', () => {
  const s = setup([B, B2], 2);
  s.started(piece(0), B);
  s.failed(piece(0), B, 'bad', 0);
  assert.ok(s.isBanned(B));
  assert.deepEqual(s.choose(piece(0), 0), { kind: 'peer', peer: B2 });
  assert.deepEqual(s.choose(piece(1), 0), { kind: 'peer', peer: B2 });
  assert.deepEqual(s.toConnect([piece(0), piece(1)], 0), []);
});

test('repeated timeouts give a peer up', () => {
  const s = setup([T, B], MAX_PEER_FAILURES + 1);
  for (let i = 0; i < MAX_PEER_FAILURES; i++) {
    s.started(piece(i), T);
    s.failed(piece(i), T, 'timeout', 0);
  }
  assert.equal(s.peer(T).status, 'failed');
  assert.deepEqual(s.choose(piece(MAX_PEER_FAILURES), 0), { kind: 'peer', peer: B });
});

test('a peer given up is tried again after its rest, for the pieces it has not failed', () => {
  const n = MAX_PEER_FAILURES + 2;
  const s = setup([T, B], n, { peerRetryMs: 30_000 });
  for (let i = 0; i < MAX_PEER_FAILURES; i++) {
    s.started(piece(i), T);
    s.failed(piece(i), T, 'timeout', 1000);
  }
  // Its link is dropped (the fetcher does so for a peer given up).
  s.setPeerStatus(T, 'failed', 1000);
  const next = piece(MAX_PEER_FAILURES);
  assert.deepEqual(s.choose(next, 30_999), { kind: 'peer', peer: B });
  assert.deepEqual(s.toConnect([next], 30_999), [], 'resting: not dialed');
  assert.deepEqual(s.toConnect([next], 31_000), [T], 'rested: dialed again');
  s.setPeerStatus(T, 'ready', 31_100);
  assert.deepEqual(s.choose(next, 31_100), { kind: 'peer', peer: T });
  // A piece it failed is not asked of it again.
  assert.deepEqual(s.choose(piece(0), 31_100), { kind: 'peer', peer: B });
});

test('each time a peer is given up again its rest doubles, up to 8 times', () => {
  const s = setup([T], 1, { peerRetryMs: 1000 });
  let now = 0;
  const rests = [];
  for (let round = 0; round < 6; round++) {
    s.setPeerStatus(T, 'failed', now);
    s.setPeerStatus(T, 'failed', now + 1); // a second report does not restart the rest
    const from = now;
    while (s.toConnect([piece(0)], now).length === 0) now += 100;
    rests.push(now - from);
    s.setPeerStatus(T, 'ready', now);
  }
  assert.deepEqual(rests, [1000, 2000, 4000, 8000, 8000, 8000]);
});

test('a banned peer is never tried again', () => {
  const s = setup([B, B2], 2, { peerRetryMs: 1000 });
  s.started(piece(0), B);
  s.failed(piece(0), B, 'bad', 0);
  assert.deepEqual(s.toConnect([piece(1)], 1e9), []);
  assert.deepEqual(s.choose(piece(1), 1e9), { kind: 'peer', peer: B2 });
});

test('waiting for links: bounded by maxWaitMs, then the origin', () => {
  const s = new Scheduler({ maxWaitMs: 1000 });
  const p = piece(0);
  s.need(p, 0);
  assert.deepEqual(s.choose(p, 0), { kind: 'wait', until: 1000 }); // no answer yet
  s.setProviders(p, [info[T]], 100);
  assert.deepEqual(s.toConnect([p], 0), [T]);
  s.setPeerStatus(T, 'connecting');
  assert.equal(s.choose(p, 500).kind, 'wait');
  assert.equal(s.choose(p, 1000).kind, 'origin');
});

test('queued behind our own requests to a ready peer is not a timeout', () => {
  const s = setup([T], 3, { maxPerPeer: 1, maxWaitMs: 1000 });
  assert.deepEqual(assign(s, 1), [T]);
  assert.equal(s.choose(piece(1), 5000).kind, 'wait');
  assert.equal(s.choose(piece(1), 9000).kind, 'wait');
  s.succeeded(piece(0), T);
  assert.deepEqual(s.choose(piece(1), 9001), { kind: 'peer', peer: T });
});

test('no providers, or no answer from the planner: the origin at once', () => {
  const s = new Scheduler();
  s.need(piece(0), 0);
  s.setProviders(piece(0), [], 0);
  assert.deepEqual(s.choose(piece(0), 0), { kind: 'origin', reason: 'no provider' });
  s.need(piece(1), 0);
  s.noAnswer(piece(1));
  assert.equal(s.choose(piece(1), 0).kind, 'origin');
});

test('connect order: trusted permanent first', () => {
  const s = new Scheduler();
  s.need(piece(0), 0);
  s.setProviders(piece(0), [info[B], info[P], info[T]], 0);
  assert.deepEqual(s.toConnect([piece(0)], 0), [T, P, B]);
});

test('bookkeeping stays bounded', () => {
  const s = new Scheduler({ maxPieces: 100, maxPeers: 50 });
  for (let i = 0; i < 1000; i++) {
    const peer = (i + 1).toString(16).padStart(64, 'e');
    s.setProviders(piece(i), [{ peer, trusted: false, role: 'browser' }], i);
  }
  assert.ok(s.providers.size <= 100, `${s.providers.size}`);
  assert.ok(s.peers.size <= 150, `${s.peers.size}`);
});

test('a provider stuck connecting longer than a piece may wait is not waited for again', () => {
  const s = new Scheduler({ maxWaitMs: 1000 });
  s.setPeerStatus(T, 'connecting', 0);
  s.need(piece(0), 0);
  s.setProviders(piece(0), [info[T]], 0);
  assert.equal(s.choose(piece(0), 500).kind, 'wait');
  // A piece asked for later does not wait the full time again.
  s.need(piece(1), 1200);
  s.setProviders(piece(1), [info[T]], 1200);
  assert.deepEqual(s.choose(piece(1), 1200), { kind: 'origin', reason: 'no provider reachable' });
});
