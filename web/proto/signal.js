// Signaling messages (docs/protocol.md §5), as crates/tuber-proto/src/signal.rs:
// JSON over WebSocket, one tagged message per text frame, every limit of §7
// checked by the decoder and by the encoder.

import {
  ProtoError, parseJson, asObject, asU16, asU32, asU64, asString, asBool, asArray, arrayOf, asHex32, asHex64,
  checkLen, checkText, checkCount, invalid, startsWithBrace, utf8Len, fromHex,
} from './json.js';
import {
  MAX_SIGNAL_FRAME, MAX_SDP_LEN, MAX_CANDIDATE_LEN, MAX_HASHES_PER_MESSAGE, MAX_PROVIDERS, MAX_REPORT_ENTRIES,
  MAX_BAD_PIECES, MAX_RANGES, MAX_ERROR_MESSAGE_LEN, MAX_INVITE_LEN, MAX_AGENT_LEN, MAX_JSON_INT, MAX_PATH_LEN,
  MAX_PIECES,
} from './limits.js';
import { validateSwarmId, validateIceServers, readIceServer } from './descriptor.js';
import { originOf } from './origin.js';

/** @typedef {'browser' | 'permanent'} Role */
/**
 * @typedef {'bad_message' | 'too_large' | 'unsupported_version' | 'unauthorized' | 'invite_invalid' | 'banned'
 *   | 'rate_limited' | 'unknown_peer' | 'internal' | 'unknown'} ErrorCode
 */
/** @typedef {{candidate: string, sdp_mid?: string, sdp_mline_index?: number}} IceCandidate */
/** @typedef {{peer: string, role: Role, trusted: boolean, pieces: number[]}} Provider */
/** @typedef {{peer: string, up: number, down: number}} TransferReport */
/** @typedef {{peer: string, piece: string}} BadPiece */
/** @typedef {{start: number, end: number}} PieceRange */

/**
 * @typedef {{type: 'hello', version: number, role: Role, proof?: {public_key: string, origin: string, signature: string},
 *     invite?: string, capacity?: {disk_bytes: number, upload_bps: number}, agent: string}
 *   | {type: 'offer' | 'answer', to: string, conn: number, sdp: string}
 *   | {type: 'candidate', to: string, conn: number, candidate: IceCandidate | null}
 *   | {type: 'have' | 'lost', pieces: string[]}
 *   | {type: 'want', req: number, pieces: string[]}
 *   | {type: 'report', transfers: TransferReport[], bad: BadPiece[]}
 *   | {type: 'ping' | 'pong', nonce: number}
 *   | {type: 'error', code: ErrorCode, message: string}} ClientToHub
 */
/**
 * @typedef {{type: 'challenge', version: number, nonce: string}
 *   | {type: 'welcome', peer_id: string, role: Role, trusted: boolean, swarm_id: string, ping_interval_ms: number,
 *      ice_servers?: import('./descriptor.js').IceServer[]}
 *   | {type: 'offer' | 'answer', from: string, conn: number, sdp: string}
 *   | {type: 'candidate', from: string, conn: number, candidate: IceCandidate | null}
 *   | {type: 'providers', req: number, providers: Provider[]}
 *   | {type: 'assign' | 'unassign', partition: number, resource: string, manifest: string, ranges: PieceRange[]}
 *   | {type: 'ping' | 'pong', nonce: number}
 *   | {type: 'error', code: ErrorCode, message: string}} HubToClient
 */
/** @typedef {'client_to_hub' | 'hub_to_client'} Direction */

/** A signaling frame refused, with the code to send back (§5.7). */
export class SignalError extends Error {
  /**
   * @param {'bad_message' | 'too_large'} code
   * @param {string} message
   */
  constructor(code, message) {
    super(message);
    this.name = 'SignalError';
    /** @type {'bad_message' | 'too_large'} */
    this.code = code;
  }
}

const ERROR_CODES = [
  'bad_message', 'too_large', 'unsupported_version', 'unauthorized', 'invite_invalid', 'banned', 'rate_limited',
  'unknown_peer', 'internal',
];

/** @typedef {import('./json.js').JsonValue} JsonValue */
/** @typedef {(v: JsonValue, field: string) => any} Reader */

/** @type {Reader} */
const role = (v, field) => {
  if (v !== 'browser' && v !== 'permanent') throw new ProtoError('malformed', `\`${field}\`: unknown role`);
  return v;
};

/** @type {Reader} */
const errorCode = (v, field) => {
  const s = asString(v, field);
  return ERROR_CODES.includes(s) ? s : 'unknown';
};

/**
 * An object read field by field; unknown fields are ignored.
 * @param {Array<[string, Reader, Presence?]>} fields
 * @returns {Reader}
 */
function struct(fields) {
  return (v, field) => readFields(asObject(v, field), fields);
}

/**
 * How a field may be absent: `omit` — optional, missing or `null` is absent
 * and not emitted; `null` — missing or `null` reads as `null`, always
 * emitted; `empty` — missing reads as `""` (but `null` is refused), always
 * emitted. Without one, the field is required.
 * @typedef {'omit' | 'null' | 'empty'} Presence
 */

/**
 * @param {Map<string, JsonValue>} obj
 * @param {Array<[string, Reader, Presence?]>} fields
 * @returns {Record<string, any>}
 */
function readFields(obj, fields) {
  /** @type {Record<string, any>} */
  const out = {};
  for (const [name, read, presence] of fields) {
    const v = obj.get(name);
    if (presence === 'omit') {
      if (v !== undefined && v !== null) out[name] = read(v, name);
    } else if (presence === 'null') {
      out[name] = v === undefined || v === null ? null : read(v, name);
    } else if (presence === 'empty') {
      out[name] = v === undefined ? '' : read(v, name);
    } else {
      if (v === undefined) throw new ProtoError('malformed', `missing field \`${name}\``);
      out[name] = read(v, name);
    }
  }
  return out;
}

const proof = struct([['public_key', asHex32], ['origin', asString], ['signature', asHex64]]);
const capacity = struct([['disk_bytes', asU64], ['upload_bps', asU64]]);
const iceCandidate = struct([['candidate', asString], ['sdp_mid', asString, 'omit'], ['sdp_mline_index', asU16, 'omit']]);
const transfer = struct([['peer', asHex32], ['up', asU64], ['down', asU64]]);
const badPiece = struct([['peer', asHex32], ['piece', asHex32]]);
const provider = struct([['peer', asHex32], ['role', role], ['trusted', asBool], ['pieces', (v, f) => arrayOf(v, f, asU32)]]);
const pieceRange = struct([['start', asU32], ['end', asU32]]);
/** @param {Reader} r @returns {Reader} */
const list = (r) => (v, f) => arrayOf(v, f, r);

/** @type {Record<string, Array<[string, Reader, Presence?]>>} */
const CLIENT_TO_HUB = {
  hello: [['version', asU16], ['role', role], ['proof', proof, 'omit'], ['invite', asString, 'omit'],
    ['capacity', capacity, 'omit'], ['agent', asString, 'empty']],
  offer: [['to', asHex32], ['conn', asU32], ['sdp', asString]],
  answer: [['to', asHex32], ['conn', asU32], ['sdp', asString]],
  candidate: [['to', asHex32], ['conn', asU32], ['candidate', iceCandidate, 'null']],
  have: [['pieces', list(asHex32)]],
  lost: [['pieces', list(asHex32)]],
  want: [['req', asU32], ['pieces', list(asHex32)]],
  report: [['transfers', list(transfer)], ['bad', list(badPiece)]],
  ping: [['nonce', asU32]],
  pong: [['nonce', asU32]],
  error: [['code', errorCode], ['message', asString]],
};

/** @type {Record<string, Array<[string, Reader, Presence?]>>} */
const HUB_TO_CLIENT = {
  challenge: [['version', asU16], ['nonce', asHex32]],
  welcome: [['peer_id', asHex32], ['role', role], ['trusted', asBool], ['swarm_id', asString], ['ping_interval_ms', asU32],
    ['ice_servers', list(readIceServer), 'omit']],
  offer: [['from', asHex32], ['conn', asU32], ['sdp', asString]],
  answer: [['from', asHex32], ['conn', asU32], ['sdp', asString]],
  candidate: [['from', asHex32], ['conn', asU32], ['candidate', iceCandidate, 'null']],
  providers: [['req', asU32], ['providers', list(provider)]],
  assign: [['partition', asU32], ['resource', asString], ['manifest', asHex32], ['ranges', list(pieceRange)]],
  unassign: [['partition', asU32], ['resource', asString], ['manifest', asHex32], ['ranges', list(pieceRange)]],
  ping: [['nonce', asU32]],
  pong: [['nonce', asU32]],
  error: [['code', errorCode], ['message', asString]],
};

/** @param {Direction} direction */
function schemaOf(direction) {
  return direction === 'client_to_hub' ? CLIENT_TO_HUB : HUB_TO_CLIENT;
}

/**
 * A u64 field that JavaScript reads exactly (≤ 2^53−1).
 * @param {string} field @param {number | bigint} n
 */
function checkJsonInt(field, n) {
  if (typeof n !== 'number' || n > MAX_JSON_INT) invalid(field, 'is out of range or malformed');
}

/** @param {IceCandidate | null} c */
function checkCandidate(c) {
  if (c) {
    checkLen('candidate', c.candidate, MAX_CANDIDATE_LEN);
    if (c.sdp_mid !== undefined) checkLen('sdp_mid', c.sdp_mid, MAX_CANDIDATE_LEN);
  }
}

/**
 * The limits of §5/§7 on a decoded message (the Rust `Validate` impls).
 * @param {Direction} direction @param {Record<string, any>} m
 */
function validate(direction, m) {
  switch (m.type) {
    case 'hello':
      // The exact serialisation only: anything else signs bytes no hub matches.
      if (m.proof !== undefined && originOf(m.proof.origin) !== m.proof.origin) {
        invalid('proof.origin', 'is out of range or malformed');
      }
      if (m.invite !== undefined) checkLen('invite', m.invite, MAX_INVITE_LEN);
      if (m.capacity !== undefined) {
        checkJsonInt('capacity.disk_bytes', m.capacity.disk_bytes);
        checkJsonInt('capacity.upload_bps', m.capacity.upload_bps);
      }
      checkLen('agent', m.agent, MAX_AGENT_LEN);
      return;
    case 'offer':
    case 'answer':
      checkText('sdp', m.sdp, MAX_SDP_LEN);
      return;
    case 'candidate':
      checkCandidate(m.candidate);
      return;
    case 'have':
    case 'lost':
    case 'want':
      checkCount('pieces', m.pieces, MAX_HASHES_PER_MESSAGE);
      return;
    case 'report':
      checkCount('transfers', m.transfers, MAX_REPORT_ENTRIES);
      checkCount('bad', m.bad, MAX_BAD_PIECES);
      for (const t of m.transfers) {
        checkJsonInt('transfers.up', t.up);
        checkJsonInt('transfers.down', t.down);
      }
      return;
    case 'error':
      checkLen('message', m.message, MAX_ERROR_MESSAGE_LEN);
      return;
    case 'welcome':
      validateSwarmId(m.swarm_id);
      if (m.ice_servers !== undefined) validateIceServers(m.ice_servers);
      // Empty is absent, as the Rust codec omits it: one value, one spelling.
      if (m.ice_servers?.length === 0) delete m.ice_servers;
      return;
    case 'providers':
      checkCount('providers', m.providers, MAX_PROVIDERS);
      for (const p of m.providers) {
        checkCount('providers.pieces', p.pieces, MAX_HASHES_PER_MESSAGE);
        if (p.pieces.some((/** @type {number} */ i) => i >= MAX_HASHES_PER_MESSAGE)) {
          invalid('providers.pieces', 'is out of range or malformed');
        }
      }
      return;
    case 'assign':
    case 'unassign':
      if (!m.resource.startsWith('/')) invalid('resource', 'is out of range or malformed');
      checkLen('resource', m.resource, MAX_PATH_LEN);
      checkCount('ranges', m.ranges, MAX_RANGES);
      if (m.ranges.some((/** @type {PieceRange} */ r) => r.start >= r.end || r.end > MAX_PIECES)) {
        invalid('ranges', 'is out of range or malformed');
      }
      return;
    default:
      void direction;
  }
}

/**
 * Decodes and validates one signaling frame: over 64 KiB → `too_large`;
 * not one known, valid message → `bad_message`.
 * @param {Direction} direction
 * @param {string} text
 * @returns {Record<string, any>}
 */
export function decodeSignal(direction, text) {
  const len = text.length > MAX_SIGNAL_FRAME ? MAX_SIGNAL_FRAME + 1 : utf8Len(text);
  if (len > MAX_SIGNAL_FRAME) {
    throw new SignalError('too_large', `signaling frame is more than the limit of ${MAX_SIGNAL_FRAME} bytes`);
  }
  if (!startsWithBrace(text, false)) throw new SignalError('bad_message', 'signaling message is not a JSON object');
  try {
    const obj = asObject(parseJson(text), 'message');
    const type = obj.get('type');
    if (type === undefined) throw new ProtoError('malformed', 'missing field `type`');
    if (typeof type !== 'string') throw new ProtoError('malformed', '`type`: expected a string');
    const schema = schemaOf(direction);
    const fields = Object.prototype.hasOwnProperty.call(schema, type) ? schema[type] : undefined;
    if (!fields) throw new ProtoError('malformed', `unknown variant \`${type}\``);
    const msg = { type, ...readFields(obj, fields) };
    validate(direction, msg);
    return msg;
  } catch (e) {
    if (e instanceof ProtoError) {
      const what = e.kind === 'invalid' ? 'invalid' : 'malformed';
      throw new SignalError('bad_message', `${what} signaling message: ${e.message}`);
    }
    throw e;
  }
}

/** @param {string} text @returns {HubToClient} */
export const decodeHubToClient = (text) => /** @type {HubToClient} */ (decodeSignal('hub_to_client', text));
/** @param {string} text @returns {ClientToHub} */
export const decodeClientToHub = (text) => /** @type {ClientToHub} */ (decodeSignal('client_to_hub', text));

/**
 * Rebuilds `v` with only the fields of `fields`, in their order.
 * @param {Record<string, any>} v @param {Array<[string, Reader, Presence?]>} fields
 */
function ordered(v, fields) {
  /** @type {Record<string, any>} */
  const out = {};
  for (const [name, , presence] of fields) {
    const x = v[name];
    if (presence === 'omit' && (x === undefined || x === null)) continue;
    if (presence === 'null' && x === undefined) out[name] = null;
    else if (presence === 'empty' && x === undefined) out[name] = '';
    else out[name] = x;
  }
  return out;
}

/** Nested field orders, for encoding. */
/** @type {Record<string, Array<[string, Reader, Presence?]>>} */
const NESTED = {
  proof: [['public_key', asHex32], ['origin', asString], ['signature', asHex64]],
  capacity: [['disk_bytes', asU64], ['upload_bps', asU64]],
  candidate: [['candidate', asString], ['sdp_mid', asString, 'omit'], ['sdp_mline_index', asU16, 'omit']],
  transfers: [['peer', asHex32], ['up', asU64], ['down', asU64]],
  bad: [['peer', asHex32], ['piece', asHex32]],
  providers: [['peer', asHex32], ['role', role], ['trusted', asBool], ['pieces', asArray]],
  ranges: [['start', asU32], ['end', asU32]],
  ice_servers: [['urls', asArray], ['username', asString, 'omit'], ['credential', asString, 'omit']],
};

/**
 * Encodes one message: compact JSON, fields in the order of §5.5/§5.6.
 * Refuses (throws `SignalError`) what the receiver would refuse: a field
 * breaking its rule (`bad_message`) or a frame over 64 KiB (`too_large`).
 * @param {Direction} direction
 * @param {Record<string, any>} msg
 * @returns {string}
 */
export function encodeSignal(direction, msg) {
  const schema = schemaOf(direction);
  const fields = typeof msg.type === 'string' && Object.prototype.hasOwnProperty.call(schema, msg.type)
    ? schema[msg.type] : undefined;
  if (!fields) throw new SignalError('bad_message', `unknown message type ${String(msg.type)}`);
  const top = { type: msg.type, ...ordered(msg, fields) };
  for (const [key, sub] of Object.entries(NESTED)) {
    const x = /** @type {Record<string, any>} */ (top)[key];
    if (Array.isArray(x)) /** @type {Record<string, any>} */ (top)[key] = x.map((e) => (e && typeof e === 'object' ? ordered(e, sub) : e));
    else if (x && typeof x === 'object') /** @type {Record<string, any>} */ (top)[key] = ordered(x, sub);
  }
  let text;
  try {
    text = JSON.stringify(top);
  } catch (e) {
    throw new SignalError('bad_message', `not encodable: ${e instanceof Error ? e.message : String(e)}`);
  }
  decodeSignal(direction, text); // the receiver's checks, exactly
  return text;
}

/** @param {ClientToHub} msg */
export const encodeClientToHub = (msg) => encodeSignal('client_to_hub', msg);
/** @param {HubToClient} msg */
export const encodeHubToClient = (msg) => encodeSignal('hub_to_client', msg);

/**
 * The bytes a permanent peer signs in `hello` (§5.3): the tag, the origin it
 * joined, the swarm id and the nonce, separated by zero bytes.
 * @param {string} origin @param {string} swarmId @param {string} nonceHex
 */
export function helloSigningPayload(origin, swarmId, nonceHex) {
  const enc = new TextEncoder();
  const parts = [enc.encode('tuber-hello-v2\0'), enc.encode(origin), new Uint8Array([0]),
    enc.encode(swarmId), new Uint8Array([0]), fromHex(nonceHex)];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
