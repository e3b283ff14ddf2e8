// Shared helpers for the browser tests: start the real tuber-hub binary,
// launch Debian's Chromium, keep artifacts, and clean up whatever happens.
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const repo = join(here, '..', '..');
export const artifacts = join(repo, 'test-artifacts');

/** The hub binary built by the test script (cargo's one dev profile). */
export const HUB_BIN = process.env.TUBER_HUB_BIN ?? join(repo, 'target', 'debug', 'tuber-hub');

/** Every timeout in one place, with its unit. */
export const HUB_START_MS = 20_000;

/**
 * Starts `tuber-hub demo` on 127.0.0.1, any port, in a fresh data dir.
 * Resolves to { url, stop } once the hub prints its address.
 */
export async function startDemoHub() {
  const data = mkdtempSync(join(tmpdir(), 'tuber-hub-'));
  const child = spawn(HUB_BIN, ['demo', '--listen', '127.0.0.1:0', '--stun', '127.0.0.1:0', '--data', data], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr = (stderr + d).slice(-8192); });
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`hub did not start in ${HUB_START_MS} ms: ${stderr}`)), HUB_START_MS);
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/\S+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`hub exited ${code}: ${stderr}`)); });
  });
  const stop = async () => {
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(data, { recursive: true, force: true });
  };
  return { url, stop, stderr: () => stderr };
}

/** Debian's Chromium, headless, allowed to use loopback ICE candidates. */
export async function launchChromium() {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--allow-loopback-in-peer-connection',
      '--use-fake-ui-for-media-stream',
      '--autoplay-policy=no-user-gesture-required',
    ],
  });
}

/** Where a test keeps its screenshots. */
export function artifactPath(name) {
  mkdirSync(artifacts, { recursive: true });
  return join(artifacts, name);
}
