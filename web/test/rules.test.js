// Which requests the Service Worker considers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  classify, looksDistributable, extensionOf, MIN_SIZE, globMatch, patternMatches, parseRules, loadRules, DEFAULT_RULES,
  RULES_URL, downloadNavigationPath, isDownload,
} from '../rules.js';

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

test('globs match as the hub\'s: `*` is any run, also `/` and none', () => {
  assert.ok(globMatch('/videos/*', '/videos/a/b.mp4'));
  assert.ok(globMatch('*.mp4', '/x.mp4'));
  assert.ok(globMatch('*', ''));
  assert.ok(globMatch('', ''));
  assert.ok(!globMatch('', '/a'));
  assert.ok(globMatch('/a*b*c', '/a--b--c'));
  assert.ok(!globMatch('/a*b*c', '/a--b--'));
  assert.ok(!globMatch('/videos/*', '/video/a'));
  assert.ok(globMatch('/exact', '/exact'));
  assert.ok(!globMatch('/exact', '/exact2'));
  assert.ok(globMatch('/a/**/c', '/a//c'));
  assert.ok(globMatch('/a/*/c', '/a/b/d/c'));
  assert.ok(globMatch('*a*a*a*b', 'aaaaaaaaaaaaaaaaab'));
  assert.ok(!globMatch('*a*a*a*b', 'aaaaaaaaaaaaaaaaaa'));
  // `?` and other characters are literal.
  assert.ok(globMatch('/x?y', '/x?y'));
  assert.ok(!globMatch('/x?y', '/xzy'));
});

test('a pattern with `?` sees the query, any other the path alone', () => {
  assert.ok(patternMatches('*.mp4', '/a.mp4?token=1'));
  assert.ok(patternMatches('/a.mp4', '/a.mp4?token=1'));
  assert.ok(patternMatches('/a.mp4', '/a.mp4#frag'));
  assert.ok(!patternMatches('*token*', '/a.mp4?token=1'));
  assert.ok(patternMatches('*?token=*', '/a.mp4?token=1'));
  assert.ok(!patternMatches('*?token=*', '/a.mp4?other=1'));
  assert.ok(!patternMatches('/a.mp4?x=1', '/a.mp4'));
});

const CUSTOM = /** @type {import('../rules.js').Rules} */ ({
  min_size: 4096,
  content_types: ['text/plain'],
  extensions: ['dat'],
  include: ['/always/*', '*?p2p=1'],
  exclude: ['/private/*', '/always/not-this*', '*?token=*'],
});

test('the decision follows custom rules: exclude, then include, then the heuristics', () => {
  // Excluded: never, even media and listed extensions.
  assert.equal(classify(req('/private/movie.mp4', { destination: 'video' }), O, CUSTOM), 'skip');
  assert.equal(classify(req('/private/x.dat'), O, CUSTOM), 'skip');
  assert.equal(classify(req('/always/not-this.dat'), O, CUSTOM), 'skip');
  assert.equal(classify(req('/media/a.mp4?token=abc', { destination: 'video' }), O, CUSTOM), 'skip');
  // Included: asked at once, whatever the extension or destination.
  assert.equal(classify(req('/always/small.txt'), O, CUSTOM), 'ask');
  assert.equal(classify(req('/always/logo.png', { destination: 'image' }), O, CUSTOM), 'ask');
  assert.equal(classify(req('/logo.png?p2p=1', { destination: 'image' }), O, CUSTOM), 'ask');
  // …but never for destinations that are never distributable.
  assert.equal(classify(req('/always/app.js', { destination: 'script' }), O, CUSTOM), 'skip');
  // The configured extensions replace the defaults.
  assert.equal(classify(req('/d/file.DAT?v=2'), O, CUSTOM), 'ask');
  assert.equal(classify(req('/d/file.dat', { destination: 'image' }), O, CUSTOM), 'ask');
  assert.equal(classify(req('/downloads/a.bin'), O, CUSTOM), 'probe');
  assert.equal(classify(req('/logo.bin', { destination: 'image' }), O, CUSTOM), 'skip');
  assert.equal(classify(req('/media/clip.webm', { destination: 'video' }), O, CUSTOM), 'ask');
  // Structural skips stay whatever the rules.
  assert.equal(classify(req('/.tuber/rules'), O, { ...CUSTOM, include: ['*'] }), 'skip');
  assert.equal(classify(req('/always/x', { method: 'POST' }), O, CUSTOM), 'skip');
  // Configured size and content types for HEAD answers.
  assert.ok(looksDistributable('Text/Plain; charset=utf-8', 4096, CUSTOM));
  assert.ok(!looksDistributable('text/plain', 4095, CUSTOM));
  assert.ok(!looksDistributable('video/mp4', 50 * MIN_SIZE, CUSTOM));
});

test('rules from the hub are validated and normalised as the hub does', () => {
  const r = parseRules({
    min_size: 10, content_types: [' Video/ ', ''], extensions: ['.MP4', '..bin', ' '], include: ['/a/*'], exclude: [],
    playlists: true,
  });
  assert.deepEqual(r, { min_size: 10, content_types: ['video/'], extensions: ['mp4', 'bin'], include: ['/a/*'], exclude: [] });
  assert.equal(parseRules(null), null);
  assert.equal(parseRules({ ...r, min_size: '10' }), null);
  assert.equal(parseRules({ ...r, min_size: -1 }), null);
  assert.equal(parseRules({ ...r, include: [1] }), null);
  assert.equal(parseRules({ ...r, exclude: undefined }), null);
});

test('the rules are read from the hub, else the defaults apply', async () => {
  /** @type {string[]} */
  const asked = [];
  const json = { ...CUSTOM };
  /** @param {unknown} body @param {number} [status] */
  const answering = (body, status = 200) => async (/** @type {string} */ url) => {
    asked.push(url);
    return new Response(typeof body === 'string' ? body : JSON.stringify(body), { status });
  };
  assert.deepEqual(await loadRules(answering(json)), CUSTOM);
  assert.deepEqual(asked, [RULES_URL]);
  assert.equal(await loadRules(answering(json, 404)), DEFAULT_RULES);
  assert.equal(await loadRules(answering('not json')), DEFAULT_RULES);
  assert.equal(await loadRules(answering({ min_size: 1 })), DEFAULT_RULES);
  assert.equal(await loadRules(async () => { throw new TypeError('offline'); }), DEFAULT_RULES);
  // The defaults are the hub's: the old built-in behaviour.
  assert.equal(classify(req('/downloads/tuber-demo-32MiB.bin'), O, DEFAULT_RULES), 'ask');
  assert.ok(looksDistributable('application/octet-stream', MIN_SIZE, DEFAULT_RULES));
});

test('only navigations to distributable-looking paths may become peer-fed downloads', () => {
  const nav = (path, over = {}) => ({ method: 'GET', mode: 'navigate', url: O + path, ...over });
  assert.equal(downloadNavigationPath(nav('/files/pkg.zip'), O), '/files/pkg.zip');
  assert.equal(downloadNavigationPath(nav('/a/b.ISO?v=1'), O), '/a/b.ISO?v=1');
  // Pages, whatever they look like, and everything not a same-origin GET navigation.
  for (const path of ['/', '/index.html', '/watch?v=x.zip', '/files/', '/.tuber/client/x.zip', '/.well-known/a.zip']) {
    assert.equal(downloadNavigationPath(nav(path), O), null, path);
  }
  assert.equal(downloadNavigationPath(nav('/files/pkg.zip', { mode: 'cors' }), O), null);
  assert.equal(downloadNavigationPath(nav('/files/pkg.zip', { method: 'POST' }), O), null);
  assert.equal(downloadNavigationPath({ ...nav('/x.zip'), url: 'http://other.example/x.zip' }, O), null);
  const rules = { ...DEFAULT_RULES, include: ['/get/*'], exclude: ['/files/private/*'] };
  assert.equal(downloadNavigationPath(nav('/get/latest'), O, rules), '/get/latest');
  assert.equal(downloadNavigationPath(nav('/files/private/a.zip'), O, rules), null);
});

test('a navigation is a download when it is an attachment or a type no tab shows', () => {
  for (const ct of ['application/zip', 'application/octet-stream', 'application/x-iso9660-image',
    'application/vnd.debian.binary-package', 'Application/Gzip; charset=binary']) {
    assert.ok(isDownload(ct, null), ct);
  }
  for (const ct of ['text/html', 'text/plain', 'video/mp4', 'audio/mpeg', 'image/png', 'application/pdf',
    'application/json', 'application/xhtml+xml', 'image/svg+xml', 'application/ld+json', '', null, 'bogus']) {
    assert.ok(!isDownload(ct, null), String(ct));
  }
  assert.ok(isDownload('video/mp4', 'attachment; filename="clip.mp4"'));
  assert.ok(isDownload('application/pdf', 'Attachment'));
  assert.ok(!isDownload('video/mp4', 'inline'));
  assert.ok(!isDownload('video/mp4', 'attachmentish'));
  // HTML never, even as an attachment.
  assert.ok(!isDownload('text/html; charset=utf-8', 'attachment'));
});
