// The peer wire session: hello and the frame limit, requests and their
// answers, and the error codes of protocol §6.3/§6.5.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WireSession, RequestFailed } from '../wire-session.js';
import { encodeFrame, decodeFrame } from '../proto/wire.js';

/** A session whose sent frames and close are recorded. */
function recorder(opts = {}) {
  const sent = [];
  const requests = [];
  let closed = null;
  const s = new WireSession({
    maxFrame: 262144,
    send: (b) => sent.push(b),
    close: (why) => { closed = why; },
    onRequest: (r) => requests.push(r),
    ...opts,
  });
  return { s, sent, requests, closed: () => closed, frames: () => sent.map((b) => decodeFrame(b, 262144)) };
}

/** Two sessions wired back to back, delivering synchronously. */
function pair(maxA = 262144, maxB = 262144) {
  const a = recorder({ maxFrame: maxA });
  const b = recorder({ maxFrame: maxB });
  const deliver = () => {
    let moved = true;
    while (moved) {
      moved = false;
      while (a.sent.length) { b.s.receive(a.sent.shift(), 0); moved = true; }
      while (b.sent.length) { a.s.receive(b.sent.shift(), 0); moved = true; }
    }
  };
  a.s.open();
  b.s.open();
  deliver();
  return { a, b, deliver };
}

const hash = new Uint8Array(32).fill(0xab);

test('hello negotiates the frame limit: 64 KiB until the remote hello, then the smaller', () => {
  const r = recorder();
  assert.equal(r.s.limit, 65536);
  r.s.open();
  assert.deepEqual(r.frames()[0], { type: 'hello', version: 2, max_frame: 262144 });
  assert.equal(r.s.ready, false);
  r.s.receive(encodeFrame({ type: 'hello', version: 2, max_frame: 65536 }), 0);
  assert.equal(r.s.ready, true);
  assert.equal(r.s.limit, 65536);
  const { a, b } = pair(262144, 262144);
  assert.equal(a.s.limit, 262144);
  assert.equal(b.s.limit, 262144);
  const big = pair(262144, 1 << 30);
  assert.equal(big.a.s.limit, 262144);
});

test('a piece is requested, answered in frames within the limit, and assembled', async () => {
  const { a, b, deliver } = pair(262144, 65536);
  const piece = new Uint8Array(200_000).map((_, i) => i & 0xff);
  const { done } = a.s.request(hash, 0, piece.length, 0);
  deliver();
  assert.equal(b.requests.length, 1);
  const req = b.requests[0];
  assert.deepEqual([req.offset, req.length], [0, piece.length]);
  const frames = b.s.dataFrames(req.id, piece, 0);
  assert.equal(frames.length, Math.ceil(piece.length / (65536 - 9)));
  for (const f of frames) assert.ok(f.length <= 65536);
  b.s.finishIncoming(req.id);
  b.sent.push(...frames);
  deliver();
  assert.deepEqual(await done, piece);
  assert.equal(a.closed(), null);
});

test('missing and busy fail the request with their reason', async () => {
  const { a, b, deliver } = pair();
  const m = a.s.request(hash, 0, 10, 0);
  const y = a.s.request(hash, 0, 10, 0);
  deliver();
  b.s.respondMissing(b.requests[0].id);
  b.s.respondBusy(b.requests[1].id, 1500);
  deliver();
  await assert.rejects(m.done, (e) => e instanceof RequestFailed && e.reason === 'missing');
  await assert.rejects(y.done, (e) => e instanceof RequestFailed && e.reason === 'busy' && e.retryAfterMs === 1500);
});

test('past its in-flight cap a server answers busy at once', () => {
  const { a, b, deliver } = pair();
  b.s.maxIncoming = 2;
  const reqs = [0, 1, 2].map(() => a.s.request(hash, 0, 10, 0));
  reqs[2].done.catch(() => {});
  reqs[0].done.catch(() => {});
  reqs[1].done.catch(() => {});
  deliver();
  assert.equal(b.requests.length, 2);
  return assert.rejects(reqs[2].done, (e) => e.reason === 'busy');
});

test('frames that crossed a cancel are dropped; a request without progress times out', async () => {
  const { a, b, deliver } = pair();
  const r = a.s.request(hash, 0, 100, 0);
  deliver();
  const id = b.requests[0].id;
  a.s.cancel(r.id);
  await assert.rejects(r.done, (e) => e.reason === 'cancelled');
  b.sent.push(...b.s.dataFrames(id, new Uint8Array(100), 0));
  deliver();
  assert.equal(a.closed(), null, 'late data after cancel is not an error');
  const t = a.s.request(hash, 0, 100, 1000);
  a.s.reapTimeouts(5999, 5000);
  assert.equal(a.s.outgoing.size, 1);
  a.s.reapTimeouts(6000, 5000);
  await assert.rejects(t.done, (e) => e.reason === 'timeout');
  // The timed-out request is cancelled on the wire too.
  assert.deepEqual(a.frames().filter((f) => f.type === 'cancel').map((f) => f.id), [t.id]);
});

test('protocol errors: the right code, then close', () => {
  const cases = [
    ['first frame not hello', (r) => r.s.receive(encodeFrame({ type: 'missing', id: 1 }), 0), 5],
    ['text message', (r) => r.s.receive('hello', 0), 1],
    ['unsupported version', (r) => r.s.receive(encodeFrame({ type: 'hello', version: 1, max_frame: 65536 }), 0), 3],
    ['frame over the limit before hello', (r) => r.s.receive(new Uint8Array(65537).fill(2), 0), 2],
    ['malformed', (r) => r.s.receive(new Uint8Array([0x03, 0, 0]), 0), 1],
  ];
  for (const [name, act, code] of cases) {
    const r = recorder();
    r.s.open();
    act(r);
    const last = r.frames().at(-1);
    assert.deepEqual([last.type, last.code], ['error', code], name);
    assert.ok(r.closed(), name);
  }
  const after = [
    ['second hello', encodeFrame({ type: 'hello', version: 2, max_frame: 65536 }), 5],
    ['data for no request', encodeFrame({ type: 'data', id: 7, offset: 0, bytes: new Uint8Array(3) }), 5],
    ['busy for no request', encodeFrame({ type: 'busy', id: 7, retry_after_ms: 0 }), 5],
  ];
  for (const [name, frame, code] of after) {
    const r = recorder();
    r.s.open();
    r.s.receive(encodeFrame({ type: 'hello', version: 2, max_frame: 65536 }), 0);
    r.s.receive(frame, 0);
    const last = r.frames().at(-1);
    assert.deepEqual([last.type, last.code], ['error', code], name);
    assert.ok(r.closed(), name);
  }
});

test('data out of order closes; an unknown type is answered 4 and the channel stays', async () => {
  const { a, b, deliver } = pair();
  const r = a.s.request(hash, 0, 100, 0);
  deliver();
  b.sent.push(encodeFrame({ type: 'data', id: b.requests[0].id, offset: 50, bytes: new Uint8Array(10) }));
  deliver();
  await assert.rejects(r.done, (e) => e.reason === 'closed');
  assert.ok(a.closed());

  const u = recorder();
  u.s.open();
  u.s.receive(encodeFrame({ type: 'hello', version: 2, max_frame: 65536 }), 0);
  u.s.receive(new Uint8Array([0x80, 1, 2]), 0);
  const last = u.frames().at(-1);
  assert.deepEqual([last.type, last.code], ['error', 4]);
  assert.equal(u.closed(), null);
  // A remote error frame other than `unsupported` closes without an answer.
  const before = u.sent.length;
  u.s.receive(encodeFrame({ type: 'error', code: 5, reason: 'bye' }), 0);
  assert.equal(u.sent.length, before);
  assert.ok(u.closed());
});
