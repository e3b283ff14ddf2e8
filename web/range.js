// HTTP `Range: bytes=…` for the Service Worker's answers (RFC 9110 §14), the
// same reading as the hub's crates/tuber-hub/src/range.rs: one range per
// request (what players send); several ranges, other units and nonsense get
// the whole body, which the RFC allows.

/**
 * @typedef {{kind: 'full'} | {kind: 'partial', start: number, end: number} | {kind: 'unsatisfiable'}} RangeAnswer
 */

/**
 * What to serve of a body of `len` bytes for this Range header value.
 * @param {string | null | undefined} header
 * @param {number} len
 * @returns {RangeAnswer}
 */
export function parseRange(header, len) {
  if (!header) return { kind: 'full' };
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!m) return { kind: 'full' };
  const [, a, b] = m;
  if (a === '' && b === '') return { kind: 'full' };
  if (a === '') {
    // bytes=-N: the last N bytes.
    const n = Number(b);
    if (n === 0 || len === 0) return { kind: 'unsatisfiable' };
    return { kind: 'partial', start: Math.max(0, len - n), end: len - 1 };
  }
  const start = Number(a);
  if (b === '') {
    return start < len ? { kind: 'partial', start, end: len - 1 } : { kind: 'unsatisfiable' };
  }
  const end = Number(b);
  if (end < start) return { kind: 'full' };
  if (start >= len) return { kind: 'unsatisfiable' };
  return { kind: 'partial', start, end: Math.min(end, len - 1) };
}

/**
 * Status and headers of the answer for a resource of `len` bytes, and the
 * byte span [start, end] (inclusive; `end < start` when the body is empty).
 * @param {RangeAnswer} answer
 * @param {number} len
 * @param {string} contentType
 * @returns {{status: number, headers: Record<string, string>, start: number, end: number}}
 */
export function responseFor(answer, len, contentType) {
  /** @type {Record<string, string>} */
  const headers = { 'accept-ranges': 'bytes' };
  if (contentType) headers['content-type'] = contentType;
  if (answer.kind === 'unsatisfiable') {
    headers['content-range'] = `bytes */${len}`;
    headers['content-length'] = '0';
    return { status: 416, headers, start: 0, end: -1 };
  }
  if (answer.kind === 'partial') {
    headers['content-range'] = `bytes ${answer.start}-${answer.end}/${len}`;
    headers['content-length'] = String(answer.end - answer.start + 1);
    return { status: 206, headers, start: answer.start, end: answer.end };
  }
  headers['content-length'] = String(len);
  return { status: 200, headers, start: 0, end: len - 1 };
}

/**
 * The pieces covering bytes [start, end] (inclusive) with `pieceSize`:
 * indices first..=last, or null for an empty span.
 * @param {number} start @param {number} end @param {number} pieceSize
 * @returns {{first: number, last: number} | null}
 */
export function piecesCovering(start, end, pieceSize) {
  if (end < start) return null;
  return { first: Math.floor(start / pieceSize), last: Math.floor(end / pieceSize) };
}

/**
 * The part of piece `index` (bytes [index × pieceSize, … + pieceLen)) that
 * lies in [start, end]: offsets within the piece, [from, to).
 * @param {number} index @param {number} pieceSize @param {number} pieceLen
 * @param {number} start @param {number} end
 */
export function sliceOfPiece(index, pieceSize, pieceLen, start, end) {
  const base = index * pieceSize;
  const from = Math.min(pieceLen, Math.max(0, start - base));
  const to = Math.min(pieceLen, end - base + 1);
  return { from, to: Math.max(from, to) };
}
