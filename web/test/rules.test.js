// Which requests the Service Worker considers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classify, looksDistributable, extensionOf, MIN_SIZE } from '../rules.js';

const O = 'http://127.0.0.1:8080';
const req = (path, over = {}) => ({
  method: 'GET', mode: 'cors', destination: '', url: O + path, ...over, headers: new Headers(over.headers ?? {}),
});

test('media and known extensions are asked about; plain fetches are probed', () => {
  assert.equal(classify(req('/media/clip.webm', { destination: 'video' }), O), 'ask');
  assert.equal(classify(req('/stream', { destination: 'audio' }), O), 'ask');
  assert.equal(classify(req('/downloads/tuber-demo-32MiB.bin'), O), 'ask');
  assert.equal(classify(req('/a/b.MP4?token=1'), O), 'ask');
  assert.equal(classify(req('/files/big'), O), 'probe');
  assert.equal(classify(req('/api/items.json'), O), 'probe');
});

test('everything else is never touched', () => {
  assert.equal(classify(req('/'), O), 'probe'); // a fetch('/'), not a navigation
  assert.equal(classify(req('/', { mode: 'navigate', destination: 'document' }), O), 'skip');
  assert.equal(classify(req('/x.bin', { method: 'POST' }), O), 'skip');
  assert.equal(classify(req('/x.bin', { method: 'HEAD' }), O), 'skip');
  assert.equal(classify({ ...req('/x.bin'), url: 'http://other.example/x.bin' }, O), 'skip');
  assert.equal(classify(req('/.tuber/piece/ab'), O), 'skip');
  assert.equal(classify(req('/.well-known/tuber'), O), 'skip');
  assert.equal(classify(req('/app.js', { destination: 'script' }), O), 'skip');
  assert.equal(classify(req('/a.css', { destination: 'style' }), O), 'skip');
  assert.equal(classify(req('/logo.png', { destination: 'image' }), O), 'skip');
  assert.equal(classify(req('/x.bin', { headers: { 'x-tuber-origin': '1' } }), O), 'skip');
});

test('a HEAD answer qualifies by size and type, as the hub defaults say', () => {
  assert.ok(looksDistributable('application/octet-stream', MIN_SIZE));
  assert.ok(looksDistributable('Video/MP4; codecs=x', 50 * MIN_SIZE));
  assert.ok(!looksDistributable('application/octet-stream', MIN_SIZE - 1));
  assert.ok(!looksDistributable('application/json', 50 * MIN_SIZE));
  assert.ok(!looksDistributable(null, 50 * MIN_SIZE));
  assert.ok(!looksDistributable('video/mp4', null));
  assert.equal(extensionOf('/a.b/c'), '');
  assert.equal(extensionOf('/a/.hidden'), '');
  assert.equal(extensionOf('/a/b.tar.GZ'), 'gz');
});
