// Range header parsing and the 206 arithmetic of the Service Worker.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRange, responseFor, piecesCovering, sliceOfPiece } from '../range.js';

test('ranges read as the hub reads them', () => {
  const cases = [
    [null, 10, { kind: 'full' }],
    ['bytes=0-', 10, { kind: 'partial', start: 0, end: 9 }],
    ['bytes=2-4', 10, { kind: 'partial', start: 2, end: 4 }],
    ['bytes=2-400', 10, { kind: 'partial', start: 2, end: 9 }],
    ['bytes=-3', 10, { kind: 'partial', start: 7, end: 9 }],
    ['bytes=-30', 10, { kind: 'partial', start: 0, end: 9 }],
    ['bytes=10-', 10, { kind: 'unsatisfiable' }],
    ['bytes=-0', 10, { kind: 'unsatisfiable' }],
    ['bytes=0-', 0, { kind: 'unsatisfiable' }],
    ['bytes=5-2', 10, { kind: 'full' }],
    ['bytes=0-1,4-5', 10, { kind: 'full' }],
    ['items=0-1', 10, { kind: 'full' }],
    ['bytes=x-y', 10, { kind: 'full' }],
    ['bytes=-', 10, { kind: 'full' }],
    [' bytes = 3 - 5 ', 10, { kind: 'partial', start: 3, end: 5 }],
    ['BYTES=1-1', 10, { kind: 'partial', start: 1, end: 1 }],
    ['bytes=18446744073709551615-', 10, { kind: 'unsatisfiable' }],
    ['bytes=0-18446744073709551615', 10, { kind: 'partial', start: 0, end: 9 }],
  ];
  for (const [h, len, want] of cases) assert.deepEqual(parseRange(h, len), want, `${h} of ${len}`);
});

test('a <video> first request (bytes=0-) gets 206 with the whole length', () => {
  const r = responseFor(parseRange('bytes=0-', 33554432), 33554432, 'video/webm');
  assert.equal(r.status, 206);
  assert.equal(r.headers['content-range'], 'bytes 0-33554431/33554432');
  assert.equal(r.headers['content-length'], '33554432');
  assert.equal(r.headers['accept-ranges'], 'bytes');
  assert.equal(r.headers['content-type'], 'video/webm');
  assert.deepEqual([r.start, r.end], [0, 33554431]);
});

test('200, 206 and 416 headers', () => {
  const full = responseFor(parseRange(null, 1000), 1000, 'application/octet-stream');
  assert.equal(full.status, 200);
  assert.equal(full.headers['content-length'], '1000');
  assert.equal(full.headers['content-range'], undefined);
  assert.deepEqual([full.start, full.end], [0, 999]);

  const mid = responseFor(parseRange('bytes=100-199', 1000), 1000, '');
  assert.equal(mid.status, 206);
  assert.equal(mid.headers['content-range'], 'bytes 100-199/1000');
  assert.equal(mid.headers['content-length'], '100');
  assert.equal(mid.headers['content-type'], undefined);

  const bad = responseFor(parseRange('bytes=1000-', 1000), 1000, 'a/b');
  assert.equal(bad.status, 416);
  assert.equal(bad.headers['content-range'], 'bytes */1000');
  assert.ok(bad.end < bad.start);

  const empty = responseFor(parseRange(null, 0), 0, 'a/b');
  assert.equal(empty.status, 200);
  assert.equal(empty.headers['content-length'], '0');
  assert.ok(empty.end < empty.start);
});

test('pieces covering a span, and the slice of each', () => {
  const ps = 262144;
  assert.deepEqual(piecesCovering(0, ps - 1, ps), { first: 0, last: 0 });
  assert.deepEqual(piecesCovering(ps - 1, ps, ps), { first: 0, last: 1 });
  assert.deepEqual(piecesCovering(5 * ps + 7, 9 * ps, ps), { first: 5, last: 9 });
  assert.equal(piecesCovering(5, 4, ps), null);
  // Bytes 300000..=600000 of a resource of 3 pieces (last one short).
  assert.deepEqual(sliceOfPiece(1, ps, ps, 300000, 600000), { from: 300000 - ps, to: ps });
  assert.deepEqual(sliceOfPiece(2, ps, 1000, 300000, 600000), { from: 0, to: 1000 });
  assert.deepEqual(sliceOfPiece(0, ps, ps, 300000, 600000), { from: ps, to: ps });
});
