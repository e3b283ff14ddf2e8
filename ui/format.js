// @ts-check
/** Human sizes and rates, both ways (like the daemon's CLI). */

const UNITS = ['B', 'kB', 'MB', 'GB', 'TB'];

/** @param {number} n bytes @returns {string} */
export function bytes(n) {
  if (!Number.isFinite(n)) return '—';
  let i = 0;
  let v = n;
  while (v >= 1000 && i < UNITS.length - 1) { v /= 1000; i += 1; }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)} ${UNITS[i]}`;
}

/** @param {number} n bytes per second @returns {string} */
export const rate = (n) => `${bytes(n)}/s`;

/** @param {number} n bytes/s, 0 = unlimited @returns {string} */
export const cap = (n) => (n === 0 ? 'unlimited' : rate(n));

const FACTORS = /** @type {Record<string, number>} */ ({
  '': 1, b: 1, k: 1e3, kb: 1e3, m: 1e6, mb: 1e6, g: 1e9, gb: 1e9, t: 1e12, tb: 1e12,
  kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3, tib: 1024 ** 4,
});

/**
 * Parses `2 MB/s`, `512MiB`, `1.5 GB`, `0` or `unlimited` into bytes.
 * @param {string} text
 * @returns {number} bytes, or NaN when it cannot be read
 */
export function parseSize(text) {
  const t = text.trim().toLowerCase().replace(/\/s$/, '').replace(/\s+/g, '');
  if (t === 'unlimited' || t === 'none') return 0;
  const m = /^(\d+(?:\.\d+)?)([a-z]*)$/.exec(t);
  if (!m || !(m[2] in FACTORS)) return NaN;
  return Math.round(Number(m[1]) * FACTORS[m[2]]);
}
