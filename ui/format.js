// @ts-check
/**
 * Human sizes and rates, both ways, by the daemon CLI's rules
 * (crates/tuber-peer/src/daemon/units.rs): both pass the cases in
 * docs/units-vectors.json (web/test/units.test.js). Every unit counts
 * bytes: k M G T are powers of 1000, Ki Mi Gi Ti of 1024, a prefix in
 * either case; `B` only in capitals, since `Mb` reads as megabits and is
 * refused rather than guessed. Values are whole bytes, rounded down, up to
 * 2^53 - 1. The arithmetic is BigInt, as the CLI's is integer, so that
 * both write and read every value alike.
 */

const UNITS = ['kB', 'MB', 'GB', 'TB', 'PB', 'EB'];
/** The largest value: what a JSON number carries exactly. */
const MAX_VALUE = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * `1.50 MB`, `812 B`, `10.7 GB`: three significant digits rounded half up,
 * in the first unit where they make less than 1000.
 * @param {number} n bytes; a fraction (a chart's tick) is rounded first
 * @returns {string}
 */
export function bytes(n) {
  if (!Number.isFinite(n) || n < 0) return '—';
  const b = BigInt(Math.round(n));
  if (b < 1000n) return `${b} B`;
  let last = '';
  for (let k = 0; k < UNITS.length; k += 1) {
    const divisor = 1000n ** BigInt(k + 1);
    for (const decimals of [2n, 1n, 0n]) {
      const scale = 10n ** decimals;
      const r = (2n * b * scale + divisor) / (2n * divisor);
      last = decimals === 0n
        ? `${r} ${UNITS[k]}`
        : `${r / scale}.${String(r % scale).padStart(Number(decimals), '0')} ${UNITS[k]}`;
      if (r < 1000n) return last;
    }
  }
  return last;
}

/** @param {number} n bytes per second @returns {string} */
export const rate = (n) => `${bytes(n)}/s`;

/** @param {number} n bytes/s, 0 = unlimited @returns {string} */
export const cap = (n) => (n === 0 ? 'unlimited' : rate(n));

/**
 * The multiplier of a unit, or the reason it is refused.
 * @param {string} unit trimmed
 * @returns {bigint | string}
 */
function multiplier(unit) {
  if (unit === '' || unit === 'B') return 1n;
  const prefix = unit.endsWith('B') ? unit.slice(0, -1) : unit;
  if (prefix === unit && unit.endsWith('b') && unit.length > 1) return 'reads as bits';
  const m = /^([kmgtKMGT])([iI]?)$/.exec(prefix);
  if (!m) return 'unknown unit';
  const power = BigInt('kmgt'.indexOf(m[1].toLowerCase()) + 1);
  return (m[2] ? 1024n : 1000n) ** power;
}

/**
 * Parses a size: `10GB`, `512MiB`, `1.5 G`, `4096`.
 * @param {string} text
 * @returns {number} bytes, or NaN when it cannot be read
 */
export function parseSize(text) {
  const t = text.trim();
  if (t === '') return NaN;
  const split = t.search(/[^0-9.]/);
  const number = split < 0 ? t : t.slice(0, split);
  const unit = split < 0 ? '' : t.slice(split).trim();
  const mult = multiplier(unit);
  if (typeof mult === 'string') return NaN;
  const parts = number.split('.');
  if (number === '' || parts.length > 2 || (parts[0] === '' && (parts[1] ?? '') === '')) return NaN;
  const [whole, frac = ''] = parts;
  if (whole.length > 30 || frac.length > 30) return NaN;
  let value = BigInt(whole || '0') * mult;
  if (frac !== '') value += (BigInt(frac) * mult) / 10n ** BigInt(frac.length);
  return value > MAX_VALUE ? NaN : Number(value);
}

/**
 * Parses a rate in bytes per second, 0 meaning unlimited: `2MB/s`,
 * `500kB/s`, `1MBps`, `500k`, `0`, `unlimited`.
 * @param {string} text
 * @returns {number} bytes per second, or NaN when it cannot be read
 */
export function parseRate(text) {
  const t = text.trim();
  if (/^(unlimited|none)$/i.test(t)) return 0;
  const size = t.endsWith('/s') || t.endsWith('/S') || t.endsWith('ps') ? t.slice(0, -2) : t;
  return parseSize(size);
}
