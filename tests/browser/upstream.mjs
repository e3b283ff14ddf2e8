// A real upstream site for the browser tests: a node http server on
// 127.0.0.1 (any port) that serves deterministic content with a strong
// ETag, Content-Length, Last-Modified and single byte ranges (206/416), plus
// an HTML page (the hub injects its page script into it) and the demo video.
// It counts every body byte it writes, per path, so a test can tell how much
// the origin really served.
import { createServer } from 'node:http';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repo } from './paths.mjs';

/** The demo video that `tuber-hub demo` embeds (30 s VP9 + Opus WebM). */
export const DEMO_VIDEO = join(repo, 'crates', 'tuber-hub', 'demo', 'clip.webm');

/**
 * `len` pseudo-random bytes from `seed` (xorshift32): the same bytes on
 * every run, incompressible, never repeating at a piece boundary.
 */
export function deterministicBytes(len, seed) {
  const words = new Uint32Array(Math.ceil(len / 4));
  let x = (seed >>> 0) || 0x9e3779b9;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    words[i] = x;
  }
  return Buffer.from(words.buffer, 0, len);
}

export function sha256Hex(buf) {
  return createHash('sha256').update(buf).digest('hex');
}

/** The page every test opens: the hub injects its page script here. */
const INDEX = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Tuber browser test site</title></head>
<body>
<h1>Tuber browser test site</h1>
<p id="status">plain page</p>
<video id="video" controls muted playsinline preload="none" width="320"></video>
</body>
</html>
`;

/** Parses one `bytes=` range for a body of `len` bytes, as RFC 9110 says. */
function parseRange(header, len) {
  if (!header) return { kind: 'full' };
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/.exec(header);
  if (!m) return { kind: 'full' }; // several ranges or another unit: the whole body
  const [, a, b] = m;
  if (a === '' && b === '') return { kind: 'full' };
  if (a === '') {
    const n = Number(b);
    if (n === 0 || len === 0) return { kind: 'unsatisfiable' };
    return { kind: 'partial', start: Math.max(0, len - n), end: len - 1 };
  }
  const start = Number(a);
  const end = b === '' ? len - 1 : Math.min(Number(b), len - 1);
  if (b !== '' && Number(b) < start) return { kind: 'full' };
  if (start >= len) return { kind: 'unsatisfiable' };
  return { kind: 'partial', start, end };
}

/**
 * Starts the upstream. `files` maps a path to `{ body: Buffer, type }`.
 * Always served besides: `/` (HTML) and `/media/clip.webm` (the demo video).
 * Resolves to { url, files, bytesServed(path?), requests, stop }.
 */
export async function startUpstream(files = {}, { host = '127.0.0.1' } = {}) {
  const video = readFileSync(DEMO_VIDEO);
  const table = new Map();
  const add = (path, body, type) => {
    table.set(path, {
      body,
      type,
      etag: `"${sha256Hex(body).slice(0, 32)}"`,
      sha256: sha256Hex(body),
    });
  };
  add('/', Buffer.from(INDEX), 'text/html; charset=utf-8');
  add('/media/clip.webm', video, 'video/webm');
  for (const [path, f] of Object.entries(files)) add(path, f.body, f.type ?? 'application/octet-stream');

  const served = new Map(); // path -> body bytes written
  const requests = []; // { method, path, range, status }
  const lastModified = new Date(Date.UTC(2026, 0, 1)).toUTCString();
  const sockets = new Set();
  /** Paths whose bodies are refused (503 to GET; HEAD still answers). */
  const refused = new Set();

  const server = createServer((req, res) => {
    const path = new URL(req.url, 'http://x').pathname;
    const f = table.get(path);
    const entry = { method: req.method, path, range: req.headers.range ?? null, status: 0 };
    requests.push(entry);
    if (requests.length > 10_000) requests.shift();
    if (!f) {
      entry.status = 404;
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found\n');
      return;
    }
    if (req.method === 'GET' && refused.has(path)) {
      entry.status = 503;
      res.writeHead(503, { 'content-type': 'text/plain' });
      res.end('refused by the test\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      entry.status = 405;
      res.writeHead(405, { allow: 'GET, HEAD' });
      res.end();
      return;
    }
    const len = f.body.length;
    const headers = {
      'content-type': f.type,
      etag: f.etag,
      'last-modified': lastModified,
      'accept-ranges': 'bytes',
      'cache-control': 'no-cache',
    };
    let r = parseRange(req.headers.range, len);
    // If-Range with another validator: the whole (current) body.
    if (r.kind !== 'full' && req.headers['if-range'] && req.headers['if-range'] !== f.etag) r = { kind: 'full' };
    if (r.kind === 'unsatisfiable') {
      entry.status = 416;
      res.writeHead(416, { ...headers, 'content-range': `bytes */${len}`, 'content-length': 0 });
      res.end();
      return;
    }
    const [start, end] = r.kind === 'partial' ? [r.start, r.end] : [0, len - 1];
    const status = r.kind === 'partial' ? 206 : 200;
    entry.status = status;
    if (status === 206) headers['content-range'] = `bytes ${start}-${end}/${len}`;
    headers['content-length'] = len === 0 ? 0 : end - start + 1;
    res.writeHead(status, headers);
    if (req.method === 'HEAD' || len === 0) {
      res.end();
      return;
    }
    // Write in 64 KiB chunks with backpressure, counting what was written,
    // so an aborted transfer counts only what left.
    let pos = start;
    const CHUNK = 64 * 1024;
    const pump = () => {
      while (pos <= end) {
        if (res.destroyed) return;
        const stop = Math.min(end + 1, pos + CHUNK);
        const chunk = f.body.subarray(pos, stop);
        served.set(path, (served.get(path) ?? 0) + chunk.length);
        pos = stop;
        if (!res.write(chunk)) {
          res.once('drain', pump);
          return;
        }
      }
      res.end();
    };
    pump();
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, resolve);
  });
  const { port } = server.address();
  const url = `http://${host}:${port}`;

  return {
    url,
    /** path -> { body, type, etag, sha256 } */
    files: table,
    /** Body bytes written for `path`, or for every path. */
    bytesServed(path) {
      if (path !== undefined) return served.get(path) ?? 0;
      let n = 0;
      for (const v of served.values()) n += v;
      return n;
    },
    requests,
    /**
     * From now on GET `path` gets 503 (HEAD still names its version), so
     * nobody can fetch its bytes from the origin: what a page receives came
     * from peers.
     */
    refuseBodies(path) { refused.add(path); },
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
