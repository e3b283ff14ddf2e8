// Strict JSON for the protocol (docs/protocol.md §2): a parser that sees
// what `JSON.parse` hides (duplicate keys, `1.0`/`1e2`/`-0`, integers beyond
// 2^53, lone surrogates), typed field readers, and the shared field checks
// (UTF-8 byte lengths, control characters, hex ids, URLs).
//
// The parse tree: objects are `Map`s (no prototype games, duplicate keys
// refused), arrays are arrays, strings are strings, `true`/`false`/`null`,
// and numbers are:
// - `number` for a plain integer literal (digits only) up to 2^53−1,
// - `bigint` for a plain integer literal above that,
// - `NonInteger` for anything else (minus sign, fraction, exponent), which
//   every integer reader refuses but an ignored field may hold.

/** @typedef {'too_large' | 'not_an_object' | 'malformed' | 'invalid' | 'unsupported_version'} ErrorKind */

/** A document or message the protocol refuses. */
export class ProtoError extends Error {
  /**
   * @param {ErrorKind} kind the error class of the vector file
   * @param {string} message
   * @param {string} [field] the field at fault, for `invalid`/`malformed`
   */
  constructor(kind, message, field) {
    super(message);
    this.name = 'ProtoError';
    /** @type {ErrorKind} */
    this.kind = kind;
    /** @type {string | undefined} */
    this.field = field;
  }
}

/** A number literal that is not a plain non-negative integer. */
export class NonInteger {
  /** @param {string} text */
  constructor(text) {
    this.text = text;
  }
}

/**
 * @typedef {null | boolean | number | bigint | string | NonInteger | JsonArray | JsonObject} JsonValue
 * @typedef {Array<any>} JsonArray entries are JsonValues
 * @typedef {Map<string, any>} JsonObject values are JsonValues
 */

/** Nesting deeper than this is refused (serde_json's limit is 128). */
const MAX_DEPTH = 128;

/**
 * @param {string} message
 * @returns {never}
 */
function malformed(message) {
  throw new ProtoError('malformed', message);
}

/**
 * Parses one JSON document strictly.
 * @param {string} text
 * @returns {JsonValue}
 */
export function parseJson(text) {
  let i = 0;
  const n = text.length;

  const ws = () => {
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) i++;
      else break;
    }
  };

  /** @param {number} depth @returns {JsonValue} */
  const value = (depth) => {
    if (depth > MAX_DEPTH) malformed('nested too deeply');
    ws();
    if (i >= n) malformed('unexpected end of input');
    const c = text[i];
    if (c === '{') return object(depth + 1);
    if (c === '[') return array(depth + 1);
    if (c === '"') return string();
    if (c === '-' || (c >= '0' && c <= '9')) return number();
    if (text.startsWith('true', i)) {
      i += 4;
      return true;
    }
    if (text.startsWith('false', i)) {
      i += 5;
      return false;
    }
    if (text.startsWith('null', i)) {
      i += 4;
      return null;
    }
    return malformed(`unexpected character at ${i}`);
  };

  /** @param {number} depth */
  const object = (depth) => {
    i++; // {
    /** @type {Map<string, JsonValue>} */
    const out = new Map();
    ws();
    if (text[i] === '}') {
      i++;
      return out;
    }
    for (;;) {
      ws();
      if (text[i] !== '"') malformed(`expected a key at ${i}`);
      const key = string();
      if (out.has(key)) malformed(`duplicate key ${JSON.stringify(key)}`);
      ws();
      if (text[i] !== ':') malformed(`expected ':' at ${i}`);
      i++;
      out.set(key, value(depth));
      ws();
      if (text[i] === ',') {
        i++;
        continue;
      }
      if (text[i] === '}') {
        i++;
        return out;
      }
      malformed(`expected ',' or '}' at ${i}`);
    }
  };

  /** @param {number} depth */
  const array = (depth) => {
    i++; // [
    /** @type {JsonValue[]} */
    const out = [];
    ws();
    if (text[i] === ']') {
      i++;
      return out;
    }
    for (;;) {
      out.push(value(depth));
      ws();
      if (text[i] === ',') {
        i++;
        continue;
      }
      if (text[i] === ']') {
        i++;
        return out;
      }
      malformed(`expected ',' or ']' at ${i}`);
    }
  };

  const hex4 = () => {
    const h = text.slice(i, i + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(h)) malformed(`bad \\u escape at ${i}`);
    i += 4;
    return parseInt(h, 16);
  };

  const string = () => {
    i++; // "
    let out = '';
    let run = i;
    for (;;) {
      if (i >= n) malformed('unterminated string');
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        out += text.slice(run, i);
        i++;
        return out;
      }
      if (c < 0x20) malformed(`control character in a string at ${i}`);
      if (c >= 0xd800 && c <= 0xdbff) {
        const d = text.charCodeAt(i + 1);
        if (!(d >= 0xdc00 && d <= 0xdfff)) malformed(`lone surrogate at ${i}`);
        i += 2;
        continue;
      }
      if (c >= 0xdc00 && c <= 0xdfff) malformed(`lone surrogate at ${i}`);
      if (c !== 0x5c) {
        i++;
        continue;
      }
      out += text.slice(run, i);
      i++; // backslash
      const e = text[i++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          const u = hex4();
          if (u >= 0xd800 && u <= 0xdbff) {
            if (text[i] !== '\\' || text[i + 1] !== 'u') malformed('lone leading surrogate in a \\u escape');
            i += 2;
            const lo = hex4();
            if (!(lo >= 0xdc00 && lo <= 0xdfff)) malformed('lone leading surrogate in a \\u escape');
            out += String.fromCharCode(u, lo);
          } else if (u >= 0xdc00 && u <= 0xdfff) {
            malformed('lone trailing surrogate in a \\u escape');
          } else {
            out += String.fromCharCode(u);
          }
          break;
        }
        default:
          malformed(`bad escape at ${i - 1}`);
      }
      run = i;
    }
  };

  const number = () => {
    const m = /^-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(i, i + 400));
    if (!m) return malformed(`bad number at ${i}`);
    const lit = m[0];
    if (lit.length === 400) malformed('number literal too long');
    i += lit.length;
    if (lit[0] === '-' || m[1] !== undefined || m[2] !== undefined) return new NonInteger(lit);
    if (lit.length <= 15) return Number(lit);
    const big = BigInt(lit);
    return big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
  };

  const out = value(0);
  ws();
  if (i !== n) malformed(`trailing characters at ${i}`);
  return out;
}

// ---------------------------------------------------------------------------
// Field checks (crates/tuber-proto/src/validate.rs)

/**
 * Bytes of `s` in UTF-8 (a lone surrogate counts 3, as U+FFFD would).
 * @param {string} s
 */
export function utf8Len(s) {
  let len = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) len += 1;
    else if (c < 0x800) len += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        len += 4;
        i++;
      } else len += 3;
    } else len += 3;
  }
  return len;
}

const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const CONTROL_BUT_CRLF = /[\u0000-\u0009\u000b\u000c\u000e-\u001f\u007f-\u009f]/;
const WHITE_SPACE = /[\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/;
const HEX64 = /^[0-9a-f]{64}$/;
const HEX128 = /^[0-9a-f]{128}$/;

/**
 * @param {string} field
 * @param {string} message
 * @returns {never}
 */
export function invalid(field, message) {
  throw new ProtoError('invalid', `field \`${field}\` ${message}`, field);
}

/**
 * A string of at most `max` UTF-8 bytes with no control characters.
 * @param {string} field @param {string} s @param {number} max
 */
export function checkLen(field, s, max) {
  if (utf8Len(s) > max) invalid(field, `is longer than ${max} bytes`);
  if (CONTROL.test(s)) invalid(field, 'is out of range or malformed');
}

/**
 * A string of at most `max` UTF-8 bytes that may hold CR and LF (SDP).
 * @param {string} field @param {string} s @param {number} max
 */
export function checkText(field, s, max) {
  if (utf8Len(s) > max) invalid(field, `is longer than ${max} bytes`);
  if (CONTROL_BUT_CRLF.test(s)) invalid(field, 'is out of range or malformed');
}

/**
 * @param {string} field @param {unknown[]} v @param {number} max
 */
export function checkCount(field, v, max) {
  if (v.length > max) invalid(field, `has more than ${max} entries`);
}

/**
 * The URL shape check of §3: length, no control characters, no white space,
 * one of `schemes` before the first `:`, something after it.
 * @param {string} field @param {string} s @param {string[]} schemes
 */
export function checkUrl(field, s, schemes) {
  checkLen(field, s, 2048);
  const colon = s.indexOf(':');
  if (colon < 0) invalid(field, 'is out of range or malformed');
  const scheme = s.slice(0, colon).toLowerCase();
  // ASCII case-insensitive only: a non-ASCII letter must not fold into one.
  const ascii = /^[\x00-\x7f]*$/.test(s.slice(0, colon));
  if (!ascii || !schemes.includes(scheme) || colon === s.length - 1 || WHITE_SPACE.test(s)) {
    invalid(field, 'is out of range or malformed');
  }
}

/** @param {string} s */
export function isHex64(s) {
  return HEX64.test(s);
}

// ---------------------------------------------------------------------------
// Typed readers over the parse tree. Each throws `malformed` naming the field.

/**
 * @param {JsonValue | undefined} v
 * @param {string} field
 * @returns {Map<string, JsonValue>}
 */
export function asObject(v, field) {
  if (!(v instanceof Map)) malformed(`\`${field}\`: expected an object`);
  return /** @type {Map<string, JsonValue>} */ (v);
}

/**
 * @param {Map<string, JsonValue>} obj @param {string} key
 * @returns {JsonValue}
 */
export function required(obj, key) {
  const v = obj.get(key);
  if (v === undefined) malformed(`missing field \`${key}\``);
  return /** @type {JsonValue} */ (v);
}

/**
 * An optional field: missing and `null` are both absent.
 * @template T
 * @param {Map<string, JsonValue>} obj @param {string} key
 * @param {(v: JsonValue, field: string) => T} read
 * @returns {T | undefined}
 */
export function optional(obj, key, read) {
  const v = obj.get(key);
  if (v === undefined || v === null) return undefined;
  return read(v, key);
}

/**
 * @param {JsonValue} v @param {string} field @param {number} max
 * @returns {number}
 */
function uint(v, field, max) {
  if (typeof v !== 'number' || v > max) malformed(`\`${field}\`: expected an integer 0..=${max}`);
  return /** @type {number} */ (v);
}

/** @param {JsonValue} v @param {string} field */
export const asU16 = (v, field) => uint(v, field, 0xffff);
/** @param {JsonValue} v @param {string} field */
export const asU32 = (v, field) => uint(v, field, 0xffffffff);

const U64_MAX = (1n << 64n) - 1n;

/**
 * A u64: a number up to 2^53−1, or a bigint above (the caller's limits
 * decide; a value beyond u64 is malformed, as in Rust).
 * @param {JsonValue} v @param {string} field
 * @returns {number | bigint}
 */
export function asU64(v, field) {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint' && v <= U64_MAX) return v;
  return malformed(`\`${field}\`: expected an unsigned 64-bit integer`);
}

/**
 * @param {JsonValue} v @param {string} field
 * @returns {string}
 */
export function asString(v, field) {
  if (typeof v !== 'string') malformed(`\`${field}\`: expected a string`);
  return /** @type {string} */ (v);
}

/**
 * @param {JsonValue} v @param {string} field
 * @returns {boolean}
 */
export function asBool(v, field) {
  if (typeof v !== 'boolean') malformed(`\`${field}\`: expected a boolean`);
  return /** @type {boolean} */ (v);
}

/**
 * @param {JsonValue} v @param {string} field
 * @returns {JsonValue[]}
 */
export function asArray(v, field) {
  if (!Array.isArray(v)) malformed(`\`${field}\`: expected an array`);
  return /** @type {JsonValue[]} */ (v);
}

/**
 * A 32-byte id: exactly 64 lowercase hex digits.
 * @param {JsonValue} v @param {string} field
 * @returns {string}
 */
export function asHex32(v, field) {
  if (typeof v !== 'string' || !HEX64.test(v)) malformed(`\`${field}\`: expected 64 lowercase hex digits`);
  return /** @type {string} */ (v);
}

/**
 * A 64-byte signature: exactly 128 lowercase hex digits.
 * @param {JsonValue} v @param {string} field
 * @returns {string}
 */
export function asHex64(v, field) {
  if (typeof v !== 'string' || !HEX128.test(v)) malformed(`\`${field}\`: expected 128 lowercase hex digits`);
  return /** @type {string} */ (v);
}

/**
 * An array whose every entry goes through `read`.
 * @template T
 * @param {JsonValue} v @param {string} field
 * @param {(v: JsonValue, field: string) => T} read
 * @returns {T[]}
 */
export function arrayOf(v, field, read) {
  return asArray(v, field).map((x) => read(x, field));
}

/**
 * Whether the first non-whitespace character is `{`. `ascii`: skip only
 * ASCII white space (the manifest and descriptor decoders, like Rust's
 * `trim_ascii_start`); otherwise Unicode White_Space (signaling's
 * `trim_start`).
 * @param {string} text @param {boolean} ascii
 */
export function startsWithBrace(text, ascii) {
  const t = ascii ? text.replace(/^[\t\n\f\r ]+/, '') : text.replace(new RegExp(`^(?:${WHITE_SPACE.source})+`), '');
  return t.startsWith('{');
}

/**
 * The text of a JSON document (manifest, descriptor) after the first two
 * checks of its decoder, in their order: more than `max` bytes →
 * `too_large`; first non-ASCII-whitespace byte not `{` → `not_an_object`.
 * Bytes that are not UTF-8 are `malformed`; a leading byte-order mark is not
 * white space, so it fails the object check, as in Rust.
 * @param {string | Uint8Array} input @param {number} max @param {string} what
 * @returns {string}
 */
export function documentText(input, max, what) {
  const len = typeof input === 'string' ? (input.length > max ? max + 1 : utf8Len(input)) : input.length;
  if (len > max) throw new ProtoError('too_large', `${what} is more than the limit of ${max} bytes`);
  if (typeof input === 'string') {
    if (!startsWithBrace(input, true)) throw new ProtoError('not_an_object', `${what} is not a JSON object`);
    return input;
  }
  let k = 0;
  while (k < input.length && (input[k] === 0x20 || input[k] === 0x09 || input[k] === 0x0a || input[k] === 0x0c || input[k] === 0x0d)) k++;
  if (input[k] !== 0x7b) throw new ProtoError('not_an_object', `${what} is not a JSON object`);
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(input);
  } catch {
    throw new ProtoError('malformed', `${what} is not UTF-8`);
  }
}

// ---------------------------------------------------------------------------
// Hex and bytes

/** @param {Uint8Array} bytes */
export function toHex(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += (bytes[i] < 16 ? '0' : '') + bytes[i].toString(16);
  return s;
}

/**
 * Lowercase or uppercase hex of even length to bytes.
 * @param {string} hex
 */
export function fromHex(hex) {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) throw new TypeError('not hex');
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
  return out;
}

/**
 * SHA-256 of `bytes`, as lowercase hex, with the platform's crypto.subtle.
 * @param {Uint8Array} bytes
 */
export async function sha256Hex(bytes) {
  const digest = await crypto.subtle.digest('SHA-256', /** @type {Uint8Array<ArrayBuffer>} */ (bytes));
  return toHex(new Uint8Array(digest));
}
