// The byte-bounded LRU of pieces.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ByteLru } from '../lru.js';

const bytes = (n) => new Uint8Array(n);

test('evicts the least recently used first, by bytes', () => {
  const evicted = [];
  const lru = new ByteLru(100, (k) => evicted.push(k));
  lru.set('a', bytes(40));
  lru.set('b', bytes(40));
  assert.equal(lru.bytes, 80);
  lru.get('a'); // a is now the most recent
  lru.set('c', bytes(40));
  assert.deepEqual(evicted, ['b']);
  assert.deepEqual(lru.keys(), ['a', 'c']);
  assert.equal(lru.bytes, 80);
  lru.set('d', bytes(100));
  assert.deepEqual(evicted, ['b', 'a', 'c']);
  assert.deepEqual(lru.keys(), ['d']);
  assert.equal(lru.bytes, 100);
});

test('peek does not refresh; replacing keeps the count right', () => {
  const lru = new ByteLru(100);
  lru.set('a', bytes(30));
  lru.set('b', bytes(30));
  lru.peek('a');
  lru.set('a', bytes(50)); // replaced: now the most recent, 80 bytes in all
  assert.equal(lru.bytes, 80);
  assert.deepEqual(lru.keys(), ['b', 'a']);
  lru.set('c', bytes(30));
  assert.deepEqual(lru.keys(), ['a', 'c']);
  assert.ok(lru.delete('a'));
  assert.ok(!lru.delete('a'));
  assert.equal(lru.bytes, 30);
  assert.equal(lru.size, 1);
});

test('an entry larger than the budget is refused, nothing evicted', () => {
  const lru = new ByteLru(10);
  lru.set('a', bytes(5));
  assert.equal(lru.set('big', bytes(11)), false);
  assert.ok(lru.has('a'));
  assert.ok(!lru.has('big'));
});

test('stays bounded under churn, and a throwing listener is harmless', () => {
  const lru = new ByteLru(64 * 1024, () => { throw new Error('listener'); });
  for (let i = 0; i < 1000; i++) lru.set(`k${i}`, bytes(1000 + (i % 7) * 100));
  assert.ok(lru.bytes <= 64 * 1024);
  let sum = 0;
  for (const k of lru.keys()) sum += lru.peek(k).byteLength;
  assert.equal(sum, lru.bytes);
  assert.ok(lru.has('k999'));
});
