// The real desktop app under Xvfb, with its own D-Bus session and a
// StatusNotifier host for the tray, against the real demo hub. The core
// (`tuber-desktop`: engine, API, tray) runs as a desktop starts it for a
// `tuber://join?swarm=…&invite=…` link; the Tauri window
// (`tuber-desktop-window`) is driven through WebKitWebDriver (Debian's
// webkit2gtk-driver):
// - the first run asks about start at login (Yes writes the autostart
//   entry with --hidden), the link's join form comes filled in, Join makes
//   it joined and trusted in the demo swarm, and it prefetches its
//   assignment;
// - Pause (the header button) pauses the engine, and the tray's menu says
//   "Resume sharing" and its icon changes;
// - closing the window ends the window process and every WebKit process;
//   the core keeps sharing at ≤ 60 MB RSS (figures: open and closed);
// - a second start (single instance) exits at once and the core reopens
//   the window; the tray's Resume and Quit work; the swarm is kept.
// Screenshots and logs go to test-artifacts/desktop-app/.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync, existsSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDemoHub, artifactPath, waitFor, sleep, recordFigure, DESKTOP_BIN } from './harness.mjs';

const WINDOW_BIN = DESKTOP_BIN.replace(/tuber-desktop$/, 'tuber-desktop-window');
import { startDriver, newSession } from './webdriver.mjs';

const UI_MS = 30_000;
/** The demo site's distributable resources (crates/tuber-hub/src/demo.rs). */
const DEMO_PATHS = ['/media/clip.webm', '/downloads/tuber-demo-32MiB.bin'];
const JOIN_MS = 60_000;
/** The target for the whole app with its window closed. */
const CLOSED_RSS_TARGET_MB = 60;
/** What fails the test: well above the target, far below a kept webview. */
const CLOSED_RSS_BOUND_MB = 100;

/** Spawns a helper process whose stdout's first line is wanted (Xvfb's display, dbus's address). */
function spawnFirstLine(cmd, args, { env, extraFd = false, timeoutMs = 15_000 } = {}) {
  const stdio = extraFd ? ['ignore', 'pipe', 'pipe', 'pipe'] : ['ignore', 'pipe', 'pipe'];
  const child = spawn(cmd, args, { env, stdio });
  const out = extraFd ? child.stdio[3] : child.stdout;
  let err = '';
  child.stderr.on('data', (d) => { err = (err + d).slice(-4000); });
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`${cmd} did not start: ${err}`)), timeoutMs);
    out.on('data', (d) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl >= 0) { clearTimeout(timer); resolve({ child, line: buf.slice(0, nl).trim() }); }
    });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${cmd} exited ${code}: ${err}`)); });
  });
}

/** pid → RSS in kB, for a process and all its descendants. */
function treeRss(root) {
  const kids = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (!kids.has(ppid)) kids.set(ppid, []);
      kids.get(ppid).push(Number(d));
    } catch { /* gone */ }
  }
  const out = new Map();
  const visit = (pid) => {
    try {
      const st = readFileSync(`/proc/${pid}/status`, 'utf8');
      const rss = Number(/VmRSS:\s+(\d+)/.exec(st)?.[1] ?? 0);
      const name = /Name:\s+(\S+)/.exec(st)?.[1] ?? '?';
      out.set(pid, { name, rss });
    } catch { return; }
    for (const k of kids.get(pid) ?? []) visit(k);
  };
  visit(root);
  return out;
}
const totalMb = (tree) => [...tree.values()].reduce((a, p) => a + p.rss, 0) / 1024;

/** Calls a D-Bus method with gdbus; its printed answer. */
function gdbus(env, dest, path, method, ...args) {
  return execFileSync('gdbus', ['call', '--session', '--dest', dest, '--object-path', path, '--method', method, ...args],
    { env, encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** The object path of the StatusNotifierItem that `bus` exports. */
function sniPath(env, bus) {
  const tree = execFileSync('gdbus', ['introspect', '--session', '--dest', bus, '--object-path', '/', '--recurse'],
    { env, encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'pipe'] });
  let node = '/';
  for (const line of tree.split('\n')) {
    const m = /^\s*node (\/\S*)/.exec(line);
    if (m) node = m[1];
    if (line.includes('interface org.kde.StatusNotifierItem')) return node;
  }
  throw new Error(`no StatusNotifierItem on ${bus}:\n${tree.slice(0, 2000)}`);
}

test('desktop app: deep link, join, pause, tray, close to tray, single instance', { timeout: 300_000 }, async (t) => {
  assert.ok(existsSync(DESKTOP_BIN), `${DESKTOP_BIN} is missing: build it with cargo build -p tuber-desktop`);
  const shots = artifactPath('desktop-app');
  mkdirSync(shots, { recursive: true });
  const cleanups = [];
  t.after(async () => { for (const c of cleanups.reverse()) { try { await c(); } catch { /* best effort */ } } });
  const driverLog = [];
  t.after(() => writeFileSync(join(shots, 'webdriver-and-app.log'), Buffer.concat(driverLog)));

  const home = mkdtempSync(join(tmpdir(), 'tuber-desktop-home-'));
  cleanups.push(() => rmSync(home, { recursive: true, force: true }));
  const dataDir = join(home, 'data');
  const configDir = join(home, 'config');

  // A display, a private session bus, a tray host on it.
  const xvfb = await spawnFirstLine('Xvfb', ['-displayfd', '3', '-screen', '0', '1280x800x24', '-nolisten', 'tcp'], { extraFd: true });
  cleanups.push(() => xvfb.child.kill());
  const display = `:${xvfb.line}`;
  const baseEnv = {
    ...process.env, DISPLAY: display, HOME: home,
    XDG_CONFIG_HOME: join(home, '.config'), XDG_DATA_HOME: join(home, '.local', 'share'),
    XDG_RUNTIME_DIR: home, NO_COLOR: '1', RUST_LOG: 'info,webrtc=warn,rtc=error',
  };
  const bus = await spawnFirstLine('dbus-daemon', ['--session', '--nofork', '--print-address'], { env: baseEnv });
  cleanups.push(() => bus.child.kill());
  const env = { ...baseEnv, DBUS_SESSION_BUS_ADDRESS: bus.line };
  const watcher = spawn('status-notifier-watcher', [], { env, stdio: 'ignore' });
  cleanups.push(() => watcher.kill());
  await waitFor('the StatusNotifier watcher on the bus', () => {
    try {
      return gdbus(env, 'org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus.NameHasOwner', 'org.kde.StatusNotifierWatcher').includes('true');
    } catch { return false; }
  }, 15_000);

  const hub = await startDemoHub();
  cleanups.push(() => hub.stop());
  const invite = await hub.invite('desktop-test');
  // On port 0 the demo hub cannot announce its content to itself: do it
  // here (a manifest request makes the planner know the resource).
  for (const path of DEMO_PATHS) {
    const res = await fetch(`${hub.url}/.tuber/manifest?path=${encodeURIComponent(path)}`);
    assert.equal(res.status, 200, path);
    await res.arrayBuffer();
  }
  const link = `tuber://join?swarm=${encodeURIComponent(hub.url)}&invite=${encodeURIComponent(invite)}`;

  // The core, as a desktop starts it for a tuber:// link but in the tray
  // (--hidden), so the test's WebDriver opens the window itself.
  const t0 = Date.now();
  const core = spawn(DESKTOP_BIN, ['--hidden', '--data', dataDir, '--config', configDir, link], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const coreLog = [];
  core.stdout.on('data', (d) => coreLog.push(d));
  core.stderr.on('data', (d) => coreLog.push(d));
  const coreExit = new Promise((resolve) => core.once('exit', (c, sig) => resolve(c ?? sig)));
  cleanups.push(() => { core.kill('SIGKILL'); });
  t.after(() => writeFileSync(join(shots, 'core.log'), Buffer.concat(coreLog)));
  await waitFor('the core to listen', () => /tuber-desktop api on http:/.test(Buffer.concat(coreLog).toString()), 20_000);
  const pid = core.pid;
  const apiUrl = /tuber-desktop api on (http:\S+)/.exec(Buffer.concat(coreLog).toString())[1];
  const apiToken = readFileSync(join(dataDir, 'api.token'), 'utf8').trim();
  const coreApi = async (path, method = 'GET') => {
    const res = await fetch(apiUrl + path, { method, headers: { authorization: `Bearer ${apiToken}` } });
    assert.equal(res.status, 200, path);
    return res.json();
  };

  const driver = await startDriver({ env: { ...env, TAURI_WEBVIEW_AUTOMATION: 'true' }, log: driverLog });
  cleanups.push(() => driver.child.kill());
  const s = await newSession(driver.base, WINDOW_BIN, ['--data', dataDir]);
  const state = () => s.exec(`return {
    ready: document.body.dataset.ready ?? null,
    conn: document.getElementById('conn').textContent,
    alert: document.getElementById('alert').hidden ? null : document.getElementById('alert-text').textContent,
    firstRun: document.getElementById('first-run').open,
    url: document.getElementById('join-url').value,
    invite: document.getElementById('join-invite').value,
    note: document.getElementById('join-note').hidden ? null : document.getElementById('join-note').textContent,
    view: document.querySelector('.tabs [aria-current]')?.dataset.view,
    pause: document.getElementById('pause-toggle').textContent,
    swarms: document.querySelector('#swarm-table tbody').textContent,
  }`);
  const invoke = (cmd, args = {}) => s.execAsync(
    'const cb = arguments[arguments.length - 1]; window.__TAURI__.core.invoke(arguments[0], arguments[1]).then(cb, (e) => cb({ error: e }));',
    [cmd, args]);
  // First run: the question, then the deep link's join form.
  let last = null;
  const first = await waitFor('the dashboard with the first-run question', async () => {
    last = await state();
    return last.ready === 'true' && last.firstRun && last.conn === 'Live' ? last : null;
  }, UI_MS).catch(async (e) => {
    writeFileSync(join(shots, '1-failed.png'), await s.screenshot());
    throw new Error(`${e.message}; the page: ${JSON.stringify(last)}`);
  });
  recordFigure('desktop start to dashboard ready', Date.now() - t0, 'ms');
  writeFileSync(join(shots, '1-first-run.png'), await s.screenshot());
  assert.equal(first.alert, null, 'no error on start');
  await s.click('#first-run-yes');
  const autostart = join(home, '.config', 'autostart');
  const entry = await waitFor('the autostart entry', () => existsSync(autostart) && readdirSync(autostart).find((f) => f.endsWith('.desktop')), 10_000);
  const desktopFile = readFileSync(join(autostart, entry), 'utf8');
  assert.match(desktopFile, /Exec=.*tuber-desktop.*--hidden/, desktopFile);
  await waitFor('the answer saved', () => existsSync(join(configDir, 'desktop.json')), 10_000);
  assert.equal(JSON.parse(readFileSync(join(configDir, 'desktop.json'), 'utf8')).autostart, true);

  const filled = await state();
  assert.equal(filled.view, 'swarms', 'the link opened the Swarms view');
  assert.equal(filled.url, hub.url);
  assert.equal(filled.invite, invite);
  assert.match(filled.note, /Check the address, then press Join/);
  writeFileSync(join(shots, '2-join-link.png'), await s.screenshot());

  // Join through the UI: joined and trusted, the assignment prefetched.
  await s.click('#join-form button[type=submit]');
  await waitFor('the swarm row to say joined and trusted', async () => /trusted/i.test((await state()).swarms), JOIN_MS);
  let lastStatus = null;
  const held = await waitFor('the assigned demo pieces held', async () => {
    lastStatus = await invoke('status');
    const w = lastStatus.swarms?.[0];
    return w && w.phase.state === 'joined' && w.phase.trusted && w.assigned_pieces > 0 && w.assigned_held === w.assigned_pieces ? w : null;
  }, JOIN_MS).catch((e) => { throw new Error(`${e.message}: ${JSON.stringify(lastStatus?.swarms ?? lastStatus)}\nhub: ${hub.stderr().slice(-3000)}`); });
  console.log(`joined ${held.url}: ${held.assigned_held}/${held.assigned_pieces} assigned pieces held`);
  writeFileSync(join(shots, '3-joined.png'), await s.screenshot());

  // The tray: registered with the host, its menu follows the state.
  const items = gdbus(env, 'org.kde.StatusNotifierWatcher', '/StatusNotifierWatcher', 'org.freedesktop.DBus.Properties.Get',
    'org.kde.StatusNotifierWatcher', 'RegisteredStatusNotifierItems');
  const item = /'([^']+)'/.exec(items)?.[1];
  assert.ok(item, `a tray item is registered: ${items}`);
  // Registered as a bus name, or as name + object path.
  const itemBus = item.includes('/') ? item.slice(0, item.indexOf('/')) : item;
  const itemPath = item.includes('/') ? item.slice(item.indexOf('/')) : sniPath(env, itemBus);
  const itemProp = (name) => gdbus(env, itemBus, itemPath, 'org.freedesktop.DBus.Properties.Get', 'org.kde.StatusNotifierItem', name);
  const menuPath = /'(\/[^']*)'/.exec(itemProp('Menu'))?.[1];
  const menuText = () => gdbus(env, itemBus, menuPath, 'com.canonical.dbusmenu.GetLayout', '0', '@i -1', '[]');
  const iconSharing = itemProp('IconPixmap');
  await waitFor('the tray menu to say sharing', () => /sharing in 1 swarm/.test(menuText()) && /Pause sharing/.test(menuText()), 10_000);

  // Pause from the dashboard: the engine pauses, the tray follows.
  await s.click('#pause-toggle');
  await waitFor('the header button to offer Resume', async () => /Resume/i.test((await state()).pause), UI_MS);
  assert.equal((await invoke('settings')).paused, true, 'the engine is paused');
  await waitFor('the tray menu to offer Resume sharing', () => /Resume sharing/.test(menuText()) && /sharing paused/.test(menuText()), 10_000);
  assert.notEqual(itemProp('IconPixmap'), iconSharing, 'the tray icon changed with the state');
  writeFileSync(join(shots, '4-paused.png'), await s.screenshot());
  execFileSync('import', ['-window', 'root', join(shots, '4-paused-screen.png')], { env, timeout: 20_000 });

  // Close the window: its process, the webview and WebKit go; the core stays.
  const windowPid = () => [...treeRss(pid).entries()].find(([, p]) => p.name.startsWith('tuber-desktop-w'))?.[0]
    ?? Number(execFileSync('pgrep', ['-f', `tuber-desktop-window --data ${dataDir}`], { encoding: 'utf8' }).trim().split('\n')[0]);
  const winPid = windowPid();
  const openTree = new Map([...treeRss(pid), ...treeRss(winPid)]);
  recordFigure('desktop app RSS, window open', totalMb(openTree), 'MB', { processes: [...openTree.values()].map((p) => `${p.name} ${Math.round(p.rss / 1024)}`) });
  await s.exec('window.__TAURI__.window.getCurrentWindow().close(); return null;').catch(() => null);
  await waitFor('the window process to exit', () => !existsSync(`/proc/${winPid}`), 15_000);
  // Idle in the tray: past one of the core's memory trims (every 10 s).
  await sleep(12_000);
  const closed = treeRss(pid);
  assert.ok(closed.has(pid), 'the core keeps running in the tray');
  assert.ok([...closed.values()].every((p) => !p.name.startsWith('WebKit')), `no WebKit process left: ${JSON.stringify([...closed.values()])}`);
  const closedMb = totalMb(closed);
  recordFigure('desktop app RSS, window closed', closedMb, 'MB', { target: CLOSED_RSS_TARGET_MB, processes: [...closed.values()].map((p) => `${p.name} ${Math.round(p.rss / 1024)}`) });
  // The figure is measured against the target above; the assertion is on
  // behaviour with headroom for a noisy machine: a webview kept alive costs
  // ~400 MB, far past this bound.
  assert.ok(closedMb <= CLOSED_RSS_BOUND_MB, `with the window closed the app holds ${closedMb.toFixed(1)} MB`);
  assert.equal((await coreApi('/api/status')).swarms[0].phase.state, 'joined', 'still sharing');

  // A second start hands over and exits; the running core opens the window.
  const second = spawn(DESKTOP_BIN, ['--data', dataDir, '--config', configDir], { env, stdio: 'ignore' });
  const code = await new Promise((resolve) => second.once('exit', (c) => resolve(c)));
  assert.equal(code, 0, 'the second instance exits cleanly');
  await waitFor('the core to reopen the window', () => [...treeRss(pid).values()].some((p) => p.name.startsWith('WebKitWeb')), 20_000);
  await waitFor('a Tuber window on the display', () => {
    try { return execFileSync('xdotool', ['search', '--name', '^Tuber$'], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim(); } catch { return null; }
  }, 15_000);
  await sleep(2000);
  execFileSync('import', ['-window', 'root', join(shots, '5-reopened-screen.png')], { env, timeout: 20_000 });

  // The tray's menu acts: Resume sharing, then Quit.
  const click = (label) => {
    const layout = menuText();
    const id = new RegExp(`\\((\\d+), \\{[^}]*'label': <'${label}'>`).exec(layout)?.[1];
    assert.ok(id, `a menu item "${label}" in ${layout}`);
    gdbus(env, itemBus, menuPath, 'com.canonical.dbusmenu.Event', id, 'clicked', '<0>', '0');
  };
  click('Resume sharing');
  await waitFor('the engine to resume', async () => (await coreApi('/api/settings')).paused === false, 10_000);
  await waitFor('the tray menu to offer Pause again', () => /Pause sharing/.test(menuText()), 10_000);
  // The core may quit before it answers the click: NoReply is fine here.
  try { click('Quit Tuber'); } catch (e) { if (!/NoReply|disconnected/.test(String(e))) throw e; }
  assert.equal(await Promise.race([coreExit, sleep(15_000).then(() => 'still running')]), 0, 'Quit exits cleanly');
  await waitFor('the window to go with it', () => !execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).includes(`tuber-desktop-window --data ${dataDir}`), 10_000);
  const saved = JSON.parse(readFileSync(join(dataDir, 'swarms.json'), 'utf8'));
  assert.ok(JSON.stringify(saved).includes(new URL(hub.url).host), `the swarm is saved: ${JSON.stringify(saved)}`);
  await s.close().catch(() => null);
});
