// The dashboard's sizes and rates (ui/format.js) against
// docs/units-vectors.json, which the daemon CLI's parser passes too
// (crates/tuber-peer/src/daemon/units.rs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { bytes, cap, parseRate, parseSize, rate } from '../../ui/format.js';

const vectors = JSON.parse(readFileSync(new URL('../../docs/units-vectors.json', import.meta.url), 'utf8'));

for (const [key, parse] of /** @type {const} */ ([['size', parseSize], ['rate', parseRate]])) {
  test(`${key}s read as the CLI reads them`, () => {
    assert.ok(vectors[key].length > 10);
    for (const c of vectors[key]) {
      if ('bytes' in c) assert.equal(parse(c.text), c.bytes, `${key} ${JSON.stringify(c.text)}`);
      else assert.ok(Number.isNaN(parse(c.text)), `${key} ${JSON.stringify(c.text)} parsed as ${parse(c.text)}`);
    }
  });
}

test('sizes and rates written as the CLI writes them', () => {
  for (const c of vectors.format_size) assert.equal(bytes(c.bytes), c.text, String(c.bytes));
  for (const c of vectors.format_rate) {
    assert.equal(c.zero_is_unlimited ? cap(c.bps) : rate(c.bps), c.text, String(c.bps));
  }
});

test('what the dashboard writes, it reads back to within its rounding', () => {
  for (const n of [0, 1, 999, 1000, 1234, 999_499, 1_234_567, 10_737_418_240]) {
    const back = parseRate(rate(n));
    assert.ok(Math.abs(back - n) <= n / 200 + 0.5, `${n} -> ${rate(n)} -> ${back}`);
  }
  assert.equal(bytes(Number.NaN), '—');
  assert.equal(bytes(-1), '—');
  assert.equal(rate(2.4), '2 B/s', 'a chart tick is rounded');
});
