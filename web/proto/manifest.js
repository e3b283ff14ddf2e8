// Manifests (docs/protocol.md §4), as crates/tuber-proto/src/manifest.rs:
// decode + validate, the canonical encoding, the manifest id, piece ranges.

import {
  parseJson, asObject, required, asU32, asU64, asString, arrayOf, asHex32, checkLen, invalid,
  documentText, sha256Hex, ProtoError,
} from './json.js';
import {
  MAX_MANIFEST_BYTES, MAX_PATH_LEN, MAX_CONTENT_TYPE_LEN, MAX_VERSION_LEN, MIN_PIECE_SIZE, MAX_PIECE_SIZE,
  MAX_PIECES,
} from './limits.js';

/**
 * A validated manifest. `length` is a number: validation bounds it by
 * 2^17 pieces × 4 MiB = 2^39.
 * @typedef {{
 *   path: string, length: number, content_type: string, version: string,
 *   piece_size: number, pieces: string[],
 * }} Manifest
 */

const FIELDS = ['path', 'length', 'content_type', 'version', 'piece_size', 'pieces'];

/**
 * `piece_size` is a power of two from 16 KiB to 4 MiB.
 * @param {number} size
 */
export function validatePieceSize(size) {
  const pow2 = size > 0 && (size & (size - 1)) === 0;
  if (!pow2 || size < MIN_PIECE_SIZE || size > MAX_PIECE_SIZE) invalid('piece_size', 'is out of range or malformed');
}

/**
 * Decodes and validates a manifest (§4.3). Refusals are `ProtoError`s of
 * class `too_large`, `not_an_object`, `malformed` or `invalid`.
 * @param {string | Uint8Array} input
 * @returns {Manifest}
 */
export function decodeManifest(input) {
  const text = documentText(input, MAX_MANIFEST_BYTES, 'manifest');
  const root = asObject(parseJson(text), 'manifest');
  for (const key of root.keys()) {
    if (!FIELDS.includes(key)) throw new ProtoError('malformed', `unknown field \`${key}\``, key);
  }
  const path = asString(required(root, 'path'), 'path');
  const length = asU64(required(root, 'length'), 'length');
  const content_type = asString(required(root, 'content_type'), 'content_type');
  const version = asString(required(root, 'version'), 'version');
  const piece_size = asU32(required(root, 'piece_size'), 'piece_size');
  const pieces = arrayOf(required(root, 'pieces'), 'pieces', asHex32);
  if (!path.startsWith('/')) invalid('path', 'is out of range or malformed');
  checkLen('path', path, MAX_PATH_LEN);
  checkLen('content_type', content_type, MAX_CONTENT_TYPE_LEN);
  checkLen('version', version, MAX_VERSION_LEN);
  validatePieceSize(piece_size);
  if (pieces.length > MAX_PIECES) invalid('pieces', `has more than ${MAX_PIECES} entries`);
  if (typeof length !== 'number' || pieceCountFor(length, piece_size) !== pieces.length) {
    invalid('length', 'is out of range or malformed');
  }
  return { path, length: /** @type {number} */ (length), content_type, version, piece_size, pieces };
}

/**
 * The canonical encoding (§4.2): compact JSON, fields in order.
 * @param {Manifest} m
 */
export function encodeManifest(m) {
  return JSON.stringify({
    path: m.path,
    length: m.length,
    content_type: m.content_type,
    version: m.version,
    piece_size: m.piece_size,
    pieces: m.pieces,
  });
}

/**
 * The manifest id: SHA-256 of the canonical encoding, as hex.
 * @param {Manifest} m
 */
export function manifestId(m) {
  return sha256Hex(new TextEncoder().encode(encodeManifest(m)));
}

/**
 * ⌈length / piece_size⌉.
 * @param {number} length @param {number} pieceSize
 */
export function pieceCountFor(length, pieceSize) {
  return pieceSize > 0 ? Math.ceil(length / pieceSize) : 0;
}

/**
 * Where piece `index` lies in the resource: [start, start + len).
 * @param {Manifest} m @param {number} index
 * @returns {{start: number, len: number} | null}
 */
export function pieceRange(m, index) {
  if (!(index >= 0 && index < m.pieces.length)) return null;
  const start = index * m.piece_size;
  return { start, len: Math.min(m.piece_size, m.length - start) };
}
