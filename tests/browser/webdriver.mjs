// A minimal W3C WebDriver client (the few commands the desktop test needs),
// over fetch: WebKitWebDriver drives the real Tauri app's webview.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';

const W3C_ELEMENT = 'element-6066-11e4-a52e-4f735466cecc';

/** @returns {Promise<number>} a free loopback port */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

/** Starts WebKitWebDriver on a free port; `env` reaches the app it starts. */
export async function startDriver({ env, log }) {
  const port = await freePort();
  const child = spawn('WebKitWebDriver', [`--port=${port}`, '--host=127.0.0.1'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.on('data', (d) => log.push(d));
  child.stderr.on('data', (d) => log.push(d));
  const base = `http://127.0.0.1:${port}`;
  const until = Date.now() + 15_000;
  for (;;) {
    try { const r = await fetch(`${base}/status`); if (r.ok) { await r.text(); break; } } catch { /* not yet */ }
    if (Date.now() > until || child.exitCode !== null) throw new Error(`WebKitWebDriver did not start:\n${Buffer.concat(log)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { base, child };
}

async function wd(base, method, path, body) {
  const res = await fetch(base + path, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(60_000),
  });
  const json = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(`WebDriver ${method} ${path}: ${res.status} ${JSON.stringify(json.value ?? json)}`);
  return json.value;
}

/** A session on the app `binary` (started by the driver with `args`). */
export async function newSession(base, binary, args = []) {
  const v = await wd(base, 'POST', '/session', {
    capabilities: { alwaysMatch: { 'webkitgtk:browserOptions': { binary, args } } },
  });
  const id = v.sessionId;
  const s = (method, path, body) => wd(base, method, `/session/${id}${path}`, body);
  const find = async (css) => {
    const v = await s('POST', '/element', { using: 'css selector', value: css });
    // W3C's key; older drivers answer {ELEMENT: id}.
    const id = v?.[W3C_ELEMENT] ?? v?.ELEMENT ?? Object.values(v ?? {})[0];
    if (!id) throw new Error(`no element ${css}: ${JSON.stringify(v)}`);
    return id;
  };
  return {
    id,
    /** Runs `fn` (a function body) in the page; returns its result. */
    exec: (script, args = []) => s('POST', '/execute/sync', { script, args }),
    /** Runs an async script: the last argument is the callback. */
    execAsync: (script, args = []) => s('POST', '/execute/async', { script, args }),
    click: async (css) => s('POST', `/element/${await find(css)}/click`, {}),
    type: async (css, text) => {
      const el = await find(css);
      await s('POST', `/element/${el}/clear`, {});
      await s('POST', `/element/${el}/value`, { text });
    },
    text: async (css) => s('GET', `/element/${await find(css)}/text`),
    screenshot: async () => Buffer.from(await s('GET', '/screenshot'), 'base64'),
    close: () => s('DELETE', ''),
  };
}
