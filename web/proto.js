// The Tuber protocol codec for browsers (docs/protocol.md), the same spec
// as crates/tuber-proto: swarm descriptor, manifests, signaling, peer wire.
// No I/O; SHA-256 through crypto.subtle.

export * from './proto/limits.js';
export {
  ProtoError, NonInteger, parseJson, utf8Len, toHex, fromHex, sha256Hex, isHex64,
} from './proto/json.js';
export { decodeDescriptor, encodeDescriptor, validateDescriptor, validateSwarmId } from './proto/descriptor.js';
export {
  decodeManifest, encodeManifest, manifestId, pieceCountFor, pieceRange, validatePieceSize,
} from './proto/manifest.js';
export {
  SignalError, decodeSignal, encodeSignal, decodeHubToClient, decodeClientToHub, encodeClientToHub,
  encodeHubToClient, helloSigningPayload,
} from './proto/signal.js';
export { originOf, sameOrigin } from './proto/origin.js';
export {
  KIND, WIRE_CODE, WireError, decodeFrame, encodeFrame, dataHeader, negotiatedMaxFrame, truncatedUtf8,
} from './proto/wire.js';
