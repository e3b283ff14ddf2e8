// The swarm descriptor at `/.well-known/tuber` (docs/protocol.md §3), as
// crates/tuber-proto/src/descriptor.rs.

import {
  ProtoError, parseJson, asObject, required, optional, asU16, asU32, asString, arrayOf,
  checkLen, checkUrl, invalid, documentText,
} from './json.js';
import {
  PROTOCOL_VERSION, MAX_DESCRIPTOR_BYTES, MAX_SWARM_ID_LEN, MAX_NAME_LEN, MAX_ICE_SERVERS, MAX_ICE_URLS,
  MAX_ICE_CREDENTIAL_LEN,
} from './limits.js';
import { validatePieceSize } from './manifest.js';

/**
 * @typedef {{urls: string[], username?: string, credential?: string}} IceServer
 * @typedef {{
 *   version: number, swarm_id: string, name: string, origin: string, signaling: string,
 *   ice_servers: IceServer[], piece_size: number, manifest: string, pieces: string, register: string,
 * }} SwarmDescriptor
 */

/**
 * The swarm id rule: 1–64 bytes of ASCII letters, digits, `.`, `_`, `-`.
 * @param {string} id
 */
export function validateSwarmId(id) {
  if (!/^[A-Za-z0-9._-]+$/.test(id) || id.length > MAX_SWARM_ID_LEN) invalid('swarm_id', 'is out of range or malformed');
}

/**
 * Decodes and validates a descriptor, in the order of §3.
 * @param {string | Uint8Array} input the document (bytes as received, or text)
 * @returns {SwarmDescriptor}
 */
export function decodeDescriptor(input) {
  const text = documentText(input, MAX_DESCRIPTOR_BYTES, 'descriptor');
  const root = asObject(parseJson(text), 'descriptor');
  const version = asU16(required(root, 'version'), 'version');
  if (version !== PROTOCOL_VERSION) {
    throw new ProtoError(
      'unsupported_version',
      `the swarm speaks protocol version ${version}, this client speaks ${PROTOCOL_VERSION}`,
    );
  }
  const str = (/** @type {string} */ k) => asString(required(root, k), k);
  const swarm_id = str('swarm_id');
  const name = str('name');
  const origin = str('origin');
  const signaling = str('signaling');
  const iceRaw = root.get('ice_servers');
  /** @type {IceServer[]} */
  const ice_servers = iceRaw === undefined ? [] : arrayOf(iceRaw, 'ice_servers', readIceServer);
  const piece_size = asU32(required(root, 'piece_size'), 'piece_size');
  const d = {
    version, swarm_id, name, origin, signaling, ice_servers, piece_size,
    manifest: str('manifest'), pieces: str('pieces'), register: str('register'),
  };
  validateDescriptor(d);
  return d;
}

/**
 * @param {import('./json.js').JsonValue} v @param {string} field
 * @returns {IceServer}
 */
export function readIceServer(v, field) {
  const o = asObject(v, field);
  /** @type {IceServer} */
  const s = { urls: arrayOf(required(o, 'urls'), 'urls', asString) };
  const username = optional(o, 'username', asString);
  if (username !== undefined) s.username = username;
  const credential = optional(o, 'credential', asString);
  if (credential !== undefined) s.credential = credential;
  return s;
}

/**
 * The field rules of §3 (the `invalid` class).
 * @param {SwarmDescriptor} d
 */
export function validateDescriptor(d) {
  validateSwarmId(d.swarm_id);
  checkLen('name', d.name, MAX_NAME_LEN);
  checkUrl('origin', d.origin, ['http', 'https']);
  checkUrl('signaling', d.signaling, ['ws', 'wss']);
  checkUrl('manifest', d.manifest, ['http', 'https']);
  checkUrl('pieces', d.pieces, ['http', 'https']);
  checkUrl('register', d.register, ['http', 'https']);
  validateIceServers(d.ice_servers);
  validatePieceSize(d.piece_size);
}

/**
 * The ICE server rules of §3 (the descriptor's, or a `welcome`'s).
 * @param {IceServer[]} servers
 */
export function validateIceServers(servers) {
  if (servers.length > MAX_ICE_SERVERS) invalid('ice_servers', `has more than ${MAX_ICE_SERVERS} entries`);
  for (const s of servers) {
    if (s.urls.length === 0 || s.urls.length > MAX_ICE_URLS) invalid('ice_servers.urls', 'is out of range or malformed');
    for (const u of s.urls) checkUrl('ice_servers.urls', u, ['stun', 'stuns', 'turn', 'turns']);
    if (s.username !== undefined) checkLen('ice_servers.username', s.username, MAX_ICE_CREDENTIAL_LEN);
    if (s.credential !== undefined) checkLen('ice_servers.credential', s.credential, MAX_ICE_CREDENTIAL_LEN);
  }
}

/**
 * Compact JSON in the order of the tables of §3.
 * @param {SwarmDescriptor} d
 */
export function encodeDescriptor(d) {
  return JSON.stringify({
    version: d.version,
    swarm_id: d.swarm_id,
    name: d.name,
    origin: d.origin,
    signaling: d.signaling,
    ice_servers: d.ice_servers.map((s) => {
      /** @type {IceServer} */
      const o = { urls: s.urls };
      if (s.username !== undefined) o.username = s.username;
      if (s.credential !== undefined) o.credential = s.credential;
      return o;
    }),
    piece_size: d.piece_size,
    manifest: d.manifest,
    pieces: d.pieces,
    register: d.register,
  });
}
