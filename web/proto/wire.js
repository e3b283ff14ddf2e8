// The peer wire (docs/protocol.md §6), as crates/tuber-proto/src/wire.rs:
// binary frames over a reliable, ordered DataChannel. Decoding checks a frame
// in the order of §6.3; the first failure decides the error.

import {
  MAX_PIECE_SIZE, DEFAULT_MAX_FRAME, LARGE_MAX_FRAME, MAX_WIRE_REASON_LEN, DATA_HEADER_LEN,
} from './limits.js';

export const KIND = Object.freeze({
  HELLO: 0x00, REQUEST: 0x01, DATA: 0x02, MISSING: 0x03, BUSY: 0x04, CANCEL: 0x05, ERROR: 0x06,
});

/** Wire error codes (§6.6). */
export const WIRE_CODE = Object.freeze({
  MALFORMED: 1, TOO_LARGE: 2, UNSUPPORTED_VERSION: 3, UNSUPPORTED: 4, PROTOCOL: 5,
});

/**
 * @typedef {{type: 'hello', version: number, max_frame: number}
 *   | {type: 'request', id: number, piece: Uint8Array, offset: number, length: number}
 *   | {type: 'data', id: number, offset: number, bytes: Uint8Array}
 *   | {type: 'missing', id: number}
 *   | {type: 'busy', id: number, retry_after_ms: number}
 *   | {type: 'cancel', id: number}
 *   | {type: 'error', code: number, reason: string}} Frame
 */

/** @typedef {'empty' | 'too_large' | 'unknown_type' | 'bad_length' | 'out_of_range' | 'bad_utf8'} WireErrorKind */

/** A frame that did not decode. */
export class WireError extends Error {
  /** @param {WireErrorKind} kind @param {string} message */
  constructor(kind, message) {
    super(message);
    this.name = 'WireError';
    /** @type {WireErrorKind} */
    this.kind = kind;
  }

  /** The code to send back in an `error` frame. */
  get code() {
    if (this.kind === 'too_large') return WIRE_CODE.TOO_LARGE;
    if (this.kind === 'unknown_type') return WIRE_CODE.UNSUPPORTED;
    return WIRE_CODE.MALFORMED;
  }

  /** Whether the receiver closes the channel (all but an unknown type). */
  get fatal() {
    return this.kind !== 'unknown_type';
  }
}

/**
 * @param {Uint8Array} buf @param {number} kind @param {number} len
 */
function exact(buf, kind, len) {
  if (buf.length !== len) throw new WireError('bad_length', `frame type ${kind} must be ${len} bytes, got ${buf.length}`);
}

/**
 * @param {Uint8Array} buf @param {number} kind @param {number} len
 */
function atLeast(buf, kind, len) {
  if (buf.length < len) throw new WireError('bad_length', `frame type ${kind} must be at least ${len} bytes, got ${buf.length}`);
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Decodes one frame of at most `maxFrame` bytes (the limit in force). The
 * `data` bytes are a view into `buf`, not a copy.
 * @param {Uint8Array} buf
 * @param {number} maxFrame
 * @returns {Frame}
 */
export function decodeFrame(buf, maxFrame) {
  if (buf.length > maxFrame) throw new WireError('too_large', `frame of ${buf.length} bytes exceeds the limit of ${maxFrame}`);
  if (buf.length === 0) throw new WireError('empty', 'empty frame');
  const t = buf[0];
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  switch (t) {
    case KIND.HELLO: {
      exact(buf, t, 7);
      const version = view.getUint16(1);
      const max_frame = view.getUint32(3);
      if (max_frame < DEFAULT_MAX_FRAME) throw new WireError('out_of_range', 'frame field `max_frame` out of range');
      return { type: 'hello', version, max_frame };
    }
    case KIND.REQUEST: {
      exact(buf, t, 45);
      const id = view.getUint32(1);
      const piece = buf.slice(5, 37);
      const offset = view.getUint32(37);
      const length = view.getUint32(41);
      if (length === 0 || offset + length > MAX_PIECE_SIZE) throw new WireError('out_of_range', 'frame field `length` out of range');
      return { type: 'request', id, piece, offset, length };
    }
    case KIND.DATA: {
      atLeast(buf, t, DATA_HEADER_LEN + 1);
      const id = view.getUint32(1);
      const offset = view.getUint32(5);
      const bytes = buf.subarray(DATA_HEADER_LEN);
      if (offset + bytes.length > MAX_PIECE_SIZE) throw new WireError('out_of_range', 'frame field `offset` out of range');
      return { type: 'data', id, offset, bytes };
    }
    case KIND.MISSING:
      exact(buf, t, 5);
      return { type: 'missing', id: view.getUint32(1) };
    case KIND.BUSY:
      exact(buf, t, 9);
      return { type: 'busy', id: view.getUint32(1), retry_after_ms: view.getUint32(5) };
    case KIND.CANCEL:
      exact(buf, t, 5);
      return { type: 'cancel', id: view.getUint32(1) };
    case KIND.ERROR: {
      atLeast(buf, t, 3);
      const code = view.getUint16(1);
      const tail = buf.subarray(3);
      if (tail.length > MAX_WIRE_REASON_LEN) throw new WireError('out_of_range', 'frame field `reason` out of range');
      let reason;
      try {
        reason = utf8.decode(tail);
      } catch {
        throw new WireError('bad_utf8', 'error reason is not UTF-8');
      }
      return { type: 'error', code, reason };
    }
    default:
      throw new WireError('unknown_type', `unknown frame type 0x${t.toString(16).padStart(2, '0')}`);
  }
}

/**
 * The longest prefix of `s`'s UTF-8 of at most `max` bytes that ends on a
 * character boundary.
 * @param {string} s @param {number} max
 */
export function truncatedUtf8(s, max) {
  const bytes = new TextEncoder().encode(s);
  if (bytes.length <= max) return bytes;
  let end = max;
  while (end > 0 && (bytes[end] & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end);
}

/**
 * Encodes one frame. The caller keeps it within the limit in force.
 * @param {Frame} f
 * @returns {Uint8Array}
 */
export function encodeFrame(f) {
  switch (f.type) {
    case 'hello': {
      const out = new Uint8Array(7);
      const v = new DataView(out.buffer);
      out[0] = KIND.HELLO;
      v.setUint16(1, f.version);
      v.setUint32(3, f.max_frame);
      return out;
    }
    case 'request': {
      const out = new Uint8Array(45);
      const v = new DataView(out.buffer);
      out[0] = KIND.REQUEST;
      v.setUint32(1, f.id);
      out.set(f.piece.subarray(0, 32), 5);
      v.setUint32(37, f.offset);
      v.setUint32(41, f.length);
      return out;
    }
    case 'data': {
      const out = new Uint8Array(DATA_HEADER_LEN + f.bytes.length);
      out.set(dataHeader(f.id, f.offset), 0);
      out.set(f.bytes, DATA_HEADER_LEN);
      return out;
    }
    case 'missing':
    case 'cancel': {
      const out = new Uint8Array(5);
      out[0] = f.type === 'missing' ? KIND.MISSING : KIND.CANCEL;
      new DataView(out.buffer).setUint32(1, f.id);
      return out;
    }
    case 'busy': {
      const out = new Uint8Array(9);
      const v = new DataView(out.buffer);
      out[0] = KIND.BUSY;
      v.setUint32(1, f.id);
      v.setUint32(5, f.retry_after_ms);
      return out;
    }
    case 'error': {
      const reason = truncatedUtf8(f.reason, MAX_WIRE_REASON_LEN);
      const out = new Uint8Array(3 + reason.length);
      out[0] = KIND.ERROR;
      new DataView(out.buffer).setUint16(1, f.code);
      out.set(reason, 3);
      return out;
    }
    default:
      throw new TypeError('unknown frame');
  }
}

/**
 * The 9-byte header of a `data` frame.
 * @param {number} id @param {number} offset
 */
export function dataHeader(id, offset) {
  const h = new Uint8Array(DATA_HEADER_LEN);
  h[0] = KIND.DATA;
  const v = new DataView(h.buffer);
  v.setUint32(1, id);
  v.setUint32(5, offset);
  return h;
}

/**
 * The limit in force once both hellos are in: the smaller advertisement,
 * clamped to 64–256 KiB.
 * @param {number} mine @param {number} theirs
 */
export function negotiatedMaxFrame(mine, theirs) {
  return Math.min(Math.max(Math.min(mine, theirs), DEFAULT_MAX_FRAME), LARGE_MAX_FRAME);
}
