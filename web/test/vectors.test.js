// The codec against docs/protocol-vectors.json, as §8 says every
// implementation must pass it (the Rust codec passes the same file).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  decodeFrame, encodeFrame, WireError, decodeSignal, encodeSignal, SignalError, decodeManifest, encodeManifest,
  manifestId, ProtoError, decodeDescriptor, encodeDescriptor, helloSigningPayload, originOf, toHex, fromHex, PROTOCOL_VERSION,
} from '../proto.js';

const vectors = JSON.parse(readFileSync(new URL('../../docs/protocol-vectors.json', import.meta.url), 'utf8'));

/** A decoded wire frame in the vector file's JSON form. */
function frameJson(f) {
  const o = { ...f };
  if (o.piece) o.piece = toHex(o.piece);
  if (o.bytes) o.bytes = toHex(o.bytes);
  return o;
}

test('protocol version', () => {
  assert.equal(vectors.protocol_version, PROTOCOL_VERSION);
});

test('wire: valid frames decode, match and re-encode byte for byte', () => {
  assert.ok(vectors.wire.length > 0);
  for (const v of vectors.wire) {
    const bytes = fromHex(v.hex);
    const f = decodeFrame(bytes, 262144);
    assert.deepEqual(frameJson(f), v.frame, v.name);
    assert.equal(toHex(encodeFrame(f)), v.hex, v.name);
  }
});

test('wire: invalid frames fail with the stated class and fatality', () => {
  assert.ok(vectors.wire_invalid.length > 0);
  for (const v of vectors.wire_invalid) {
    assert.throws(() => decodeFrame(fromHex(v.hex), v.max_frame), (e) => {
      assert.ok(e instanceof WireError, v.name);
      assert.equal(e.kind, v.error, v.name);
      assert.equal(e.fatal, v.fatal, v.name);
      return true;
    }, v.name);
  }
});

test('signal: valid messages decode, match and re-encode byte for byte', () => {
  assert.ok(vectors.signal.length > 0);
  for (const v of vectors.signal) {
    const m = decodeSignal(v.direction, v.text);
    assert.deepEqual(m, v.value, v.name);
    assert.equal(encodeSignal(v.direction, m), v.text, v.name);
    // Any key order and layout of the same message decodes the same.
    const shuffled = JSON.stringify(Object.fromEntries(Object.entries(JSON.parse(v.text)).reverse()), null, 2);
    assert.deepEqual(decodeSignal(v.direction, shuffled), v.value, v.name);
  }
});

test('signal: invalid messages are refused with the stated code', () => {
  assert.ok(vectors.signal_invalid.length > 0);
  for (const v of vectors.signal_invalid) {
    let text = v.text;
    if (v.pad_to > 0) text = text + ' '.repeat(Math.max(0, v.pad_to - Buffer.byteLength(text)));
    assert.throws(() => decodeSignal(v.direction, text), (e) => {
      assert.ok(e instanceof SignalError, v.name);
      assert.equal(e.code, v.code, v.name);
      return true;
    }, v.name);
  }
});

test('manifest: valid manifests decode, are canonical, and have the stated id', async () => {
  assert.ok(vectors.manifest.length > 0);
  for (const v of vectors.manifest) {
    for (const input of [v.text, new TextEncoder().encode(v.text)]) {
      const m = decodeManifest(input);
      assert.deepEqual(m, v.value, v.name);
      assert.equal(encodeManifest(m), v.text, v.name);
      assert.equal(await manifestId(m), v.id, v.name);
    }
  }
});

test('manifest: invalid manifests fail with the stated class', () => {
  assert.ok(vectors.manifest_invalid.length > 0);
  for (const v of vectors.manifest_invalid) {
    for (const input of [v.text, new TextEncoder().encode(v.text)]) {
      assert.throws(() => decodeManifest(input), (e) => {
        assert.ok(e instanceof ProtoError, v.name);
        assert.equal(e.kind, v.error, v.name);
        return true;
      }, v.name);
    }
  }
});

test('descriptor: valid descriptors decode and re-encode', () => {
  assert.ok(vectors.descriptor.length > 0);
  for (const v of vectors.descriptor) {
    const d = decodeDescriptor(v.text);
    assert.deepEqual(d, v.value, v.name);
    assert.equal(encodeDescriptor(d), v.text, v.name);
  }
});

test('descriptor: invalid descriptors fail with the stated class', () => {
  assert.ok(vectors.descriptor_invalid.length > 0);
  for (const v of vectors.descriptor_invalid) {
    for (const input of [v.text, new TextEncoder().encode(v.text)]) {
      assert.throws(() => decodeDescriptor(input), (e) => {
        assert.ok(e instanceof ProtoError, v.name);
        assert.equal(e.kind, v.error, v.name);
        return true;
      }, v.name);
    }
  }
});

test('origins', () => {
  assert.ok(vectors.origin.length >= 10);
  for (const v of vectors.origin) assert.equal(originOf(v.url), v.origin, v.url);
});

test('hello signing payload', () => {
  for (const v of vectors.hello_signing_payload) {
    assert.equal(toHex(helloSigningPayload(v.origin, v.swarm_id, v.nonce)), v.hex);
  }
});

test('every vector section is exercised', () => {
  const known = ['about', 'protocol_version', 'wire', 'wire_invalid', 'signal', 'signal_invalid', 'manifest',
    'manifest_invalid', 'descriptor', 'descriptor_invalid', 'hello_signing_payload', 'origin'];
  for (const k of Object.keys(vectors)) assert.ok(known.includes(k), `unknown vector section ${k}`);
});
