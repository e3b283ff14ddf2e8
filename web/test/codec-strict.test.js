// What the vector file cannot show (JSON.parse hides it): duplicate keys,
// non-integer literals, lone surrogates; and the encoders' refusals.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodeSignal, encodeSignal, SignalError, decodeManifest, ProtoError, encodeFrame, decodeFrame, truncatedUtf8,
} from '../proto.js';

const PEER = 'ab'.repeat(32);
const bad = (dir, text) => assert.throws(() => decodeSignal(dir, text), (e) => e instanceof SignalError && e.code === 'bad_message', text);

test('integers are plain literals', () => {
  for (const n of ['1.0', '1e2', '-0', '-1', '01', '4294967296', '9007199254740993', '1.5']) {
    bad('client_to_hub', `{"type":"ping","nonce":${n}}`);
  }
  assert.deepEqual(decodeSignal('client_to_hub', '{"type":"ping","nonce":0}'), { type: 'ping', nonce: 0 });
  // A float in an ignored field is fine.
  assert.deepEqual(decodeSignal('client_to_hub', '{"type":"ping","nonce":7,"x":1.5e3}'), { type: 'ping', nonce: 7 });
});

test('duplicate keys, lone surrogates and raw control characters are refused', () => {
  bad('client_to_hub', '{"type":"ping","nonce":1,"nonce":2}');
  bad('client_to_hub', '{"type":"ping","type":"pong","nonce":1}');
  bad('client_to_hub', '{"type":"error","code":"internal","message":"\\ud800"}');
  bad('client_to_hub', '{"type":"error","code":"internal","message":"\\udc00x"}');
  bad('client_to_hub', '{"type":"error","code":"internal","message":"a\u0001"}');
  bad('client_to_hub', '{"type":"error","code":"internal","message":"\\u0001"}'); // valid JSON, a control char
  assert.equal(
    decodeSignal('client_to_hub', '{"type":"error","code":"internal","message":"\\ud83d\\ude00 ok"}').message,
    '\u{1f600} ok',
  );
});

test('unknown fields are ignored at any depth; optional fields may be null', () => {
  const m = decodeSignal('hub_to_client',
    `{"x":[1,{"y":null}],"type":"candidate","from":"${PEER}","conn":1,"candidate":{"candidate":"c","sdp_mid":null,"z":true}}`);
  assert.deepEqual(m, { type: 'candidate', from: PEER, conn: 1, candidate: { candidate: 'c' } });
  // A missing candidate reads as null and is emitted as null.
  const e = decodeSignal('client_to_hub', `{"type":"candidate","to":"${PEER}","conn":1}`);
  assert.equal(e.candidate, null);
  assert.equal(encodeSignal('client_to_hub', e), `{"type":"candidate","to":"${PEER}","conn":1,"candidate":null}`);
  // `agent` missing reads as "" (always emitted), but null is refused as in Rust.
  assert.equal(decodeSignal('client_to_hub', '{"type":"hello","version":1,"role":"browser"}').agent, '');
  bad('client_to_hub', '{"type":"hello","version":1,"role":"browser","agent":null}');
  // An unknown error code reads as `unknown`.
  assert.equal(decodeSignal('hub_to_client', '{"type":"error","code":"teapot","message":""}').code, 'unknown');
});

test('a message of the other direction is not one known message', () => {
  bad('hub_to_client', '{"type":"want","req":1,"pieces":[]}');
  bad('client_to_hub', '{"type":"welcome"}');
  bad('client_to_hub', '{"type":"__proto__"}');
  bad('client_to_hub', '{"type":"constructor"}');
});

test('the encoder refuses what the receiver would refuse', () => {
  const enc = (m) => assert.throws(() => encodeSignal('hub_to_client', m), SignalError);
  enc({ type: 'welcome', peer_id: PEER, role: 'browser', trusted: false, swarm_id: 'a/b', ping_interval_ms: 1 });
  enc({ type: 'pong', nonce: 2 ** 32 });
  enc({ type: 'pong', nonce: 1.5 });
  enc({ type: 'teleport' });
  // 32 providers × 512 indices: each field within its limit, the whole over 64 KiB.
  const providers = Array.from({ length: 32 }, () => ({
    peer: PEER, role: 'browser', trusted: false, pieces: Array.from({ length: 512 }, (_, i) => i),
  }));
  assert.throws(() => encodeSignal('hub_to_client', { type: 'providers', req: 1, providers }),
    (e) => e instanceof SignalError && e.code === 'too_large');
  // Field order is the spec's, whatever the input's.
  assert.equal(encodeSignal('client_to_hub', { agent: 'x', role: 'browser', version: 1, type: 'hello' }),
    '{"type":"hello","version":1,"role":"browser","agent":"x"}');
});

test('manifests: duplicates and non-integers are malformed, a huge length invalid', () => {
  const base = { path: '/a', length: 10, content_type: 'a/b', version: '1', piece_size: 16384, pieces: ['2d'.repeat(32)] };
  const text = JSON.stringify(base);
  assert.throws(() => decodeManifest(text.replace('"length":10', '"length":10,"length":10')), (e) => e.kind === 'malformed');
  assert.throws(() => decodeManifest(text.replace('"length":10', '"length":10.0')), (e) => e.kind === 'malformed');
  assert.throws(() => decodeManifest(text.replace('"length":10', '"length":18446744073709551615')), (e) => e instanceof ProtoError && e.kind === 'invalid');
  assert.throws(() => decodeManifest(text.replace('"length":10', '"length":18446744073709551616')), (e) => e.kind === 'malformed');
  assert.throws(() => decodeManifest(new Uint8Array([0xef, 0xbb, 0xbf, ...new TextEncoder().encode(text)])), (e) => e.kind === 'not_an_object');
  assert.throws(() => decodeManifest(new Uint8Array([0x7b, 0xff, 0x7d])), (e) => e.kind === 'malformed');
  assert.throws(() => decodeManifest(' '.repeat(10485761)), (e) => e.kind === 'too_large');
  assert.deepEqual(decodeManifest(` \n${JSON.stringify(base, null, 2)}`), base);
});

test('wire: error reasons are cut on a character boundary', () => {
  const f = encodeFrame({ type: 'error', code: 5, reason: 'é'.repeat(200) });
  assert.equal(f.length, 3 + 256);
  assert.equal(decodeFrame(f, 65536).reason.length, 128);
  assert.equal(truncatedUtf8('a\u{1f600}', 4).length, 1);
});
