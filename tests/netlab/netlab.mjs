// The NAT lab: Linux network namespaces made by the test itself (root
// needed), so permanent peers and Chromium run behind real kernel NATs.
//
//   root ns ── uplink veth (10.<n>.255.1/30 ↔ .2) ── "internet" ns
//                                                    br0 10.<n>.0.1-3/24: hub, coturn, probe server
//                                                     │ (a bridge: routers meet here)
//     router ns per home: wan0 10.<n>.0.(10+i)/24 ── nftables NAT ── lan0 192.168.(100+i).1/24
//                                                                     │
//     home ns: eth0 192.168.(100+i).2/24, default route via the router
//
// The internet namespace does not forward (ip_forward stays 0 there), so a
// home reaches the internet namespace's own addresses and other routers'
// WAN addresses, never the root namespace or the machine's real networks.
// The root namespace only gets the uplink's /30: the test process talks to
// the hubs over it, and the hubs to the test's upstream.
//
// NAT types (RFC 4787 terms: mapping / filtering behaviour), as nftables:
// - full-cone: endpoint-independent mapping (snat keeps the port) and
//   endpoint-independent filtering (every inbound UDP port is DNATed back
//   to the home host).
// - address-restricted: the same mapping; inbound UDP is DNATed only from
//   an address the same home port sent to (a dynamic set of
//   remote address . home port, refreshed by every outbound packet).
// - port-restricted: plain masquerade. Linux keeps the source port
//   (endpoint-independent mapping) and conntrack lets in only replies from
//   the exact remote address and port (address-and-port-dependent filtering).
// - symmetric: masquerade fully-random: every new remote endpoint gets a
//   new random port (endpoint-dependent mapping).
// - udp-blocked: masquerade for TCP; every forwarded UDP packet is dropped.
//
// A lab that silently is not what it says proves nothing: `probe(home)`
// measures each home's NAT from inside it (nat-probe.mjs) and the tests
// assert the measured type equals the configured one.
import { execFile, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const PROBE_SCRIPT = join(here, 'nat-probe.mjs');

export const NAT_TYPES = ['full-cone', 'address-restricted', 'port-restricted', 'symmetric', 'udp-blocked'];
/** Every `ip`/`nft` command is bounded by this. */
const CMD_MS = 10_000;
/** Ports the probe server listens on in the internet namespace. */
export const PROBE_PORTS = { main: 3400, otherPort: 3401, tcp: 3402 };

/** Runs `cmd args` (optionally inside namespace `ns`), returns stdout; throws with stderr. */
export function sh(cmd, args, { ns, input } = {}) {
  const [bin, argv] = ns ? ['ip', ['netns', 'exec', ns, cmd, ...args]] : [cmd, args];
  try {
    return execFileSync(bin, argv, { encoding: 'utf8', timeout: CMD_MS, input, stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (e) {
    throw new Error(`${bin} ${argv.join(' ')}: ${e.stderr?.toString() || e.message}`);
  }
}

/** Whether this process can build the lab (root, ip, nft). A string says why not. */
export function labUnavailable() {
  if (process.getuid?.() !== 0) return 'the NAT lab needs root (network namespaces)';
  for (const bin of ['ip', 'nft']) {
    try { execFileSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' }); } catch { return `${bin} is not installed (apt-get install iproute2 nftables)`; }
  }
  return null;
}

/** The nftables ruleset of a router of `type` (WAN address `wan`, home host `host`). */
export function natRules(type, { wan, host }) {
  const hostUdp = `iifname "wan0" udp dport 1024-65535`;
  // Unsolicited UDP for the router itself is dropped in `input`, so its
  // conntrack entry is never confirmed. Otherwise (Linux answers with ICMP
  // and keeps the entry) a peer's early check would occupy the very tuple
  // the home's own later packet to that peer maps to, and masquerade would
  // pick another port: a cone NAT acting symmetric during hole punching.
  const input = `chain input { type filter hook input priority filter; iifname "wan0" meta l4proto udp ct state new drop; }`;
  return rules(type, { wan, host, hostUdp }).replace('table ip natlab {', `table ip natlab {\n  ${input}`);
}

function rules(type, { wan, host, hostUdp }) {
  switch (type) {
    case 'full-cone':
      return `table ip natlab {
  chain prerouting { type nat hook prerouting priority dstnat; ${hostUdp} dnat to ${host}; }
  chain postrouting { type nat hook postrouting priority srcnat; oifname "wan0" snat to ${wan}; }
}`;
    case 'address-restricted':
      return `table ip natlab {
  set contacted { type ipv4_addr . inet_service; flags timeout; timeout 120s; }
  chain forward { type filter hook forward priority filter; iifname "lan0" meta l4proto udp update @contacted { ip daddr . udp sport }; }
  chain prerouting { type nat hook prerouting priority dstnat; ${hostUdp} ip saddr . udp dport @contacted dnat to ${host}; }
  chain postrouting { type nat hook postrouting priority srcnat; oifname "wan0" snat to ${wan}; }
}`;
    case 'port-restricted':
      return `table ip natlab {
  chain postrouting { type nat hook postrouting priority srcnat; oifname "wan0" masquerade; }
}`;
    case 'symmetric':
      return `table ip natlab {
  chain postrouting { type nat hook postrouting priority srcnat; oifname "wan0" masquerade fully-random; }
}`;
    case 'udp-blocked':
      return `table ip natlab {
  chain forward { type filter hook forward priority filter; meta l4proto udp drop; }
  chain postrouting { type nat hook postrouting priority srcnat; oifname "wan0" masquerade; }
}`;
    default:
      throw new Error(`unknown NAT type ${type}`);
  }
}

/**
 * Builds the lab: the internet namespace and one home (router + host) per
 * entry of `homes` ({ name, type }). Returns the lab; `lab.destroy()`
 * removes every namespace and link it made (also on process exit).
 */
export function createLab({ homes, tag = `tnl${process.pid % 100000}` }) {
  const unavailable = labUnavailable();
  if (unavailable) throw new Error(unavailable);
  // A second octet of our own, so two labs on one machine do not collide.
  const octet = 100 + (process.pid % 100);
  const net = `10.${octet}`;
  const lab = {
    tag,
    net,
    inet: `${tag}-inet`,
    /** The internet namespace's addresses: hub and coturn on `a`; `b`, `c` for the probe. */
    addr: { a: `${net}.0.1`, b: `${net}.0.2`, c: `${net}.0.3` },
    /** The root namespace's end of the uplink (where the test's upstream listens). */
    uplink: `${net}.255.1`,
    uplinkInet: `${net}.255.2`,
    homes: new Map(),
    namespaces: [],
    links: [],
    procs: new Set(),
    dir: mkdtempSync(join(tmpdir(), `${tag}-`)),
  };
  const addNs = (name) => {
    sh('ip', ['netns', 'add', name]);
    lab.namespaces.push(name);
    sh('ip', ['link', 'set', 'lo', 'up'], { ns: name });
  };
  lab.destroy = () => destroyLab(lab);
  process.once('exit', lab.destroy);
  try {
    addNs(lab.inet);
    const upRoot = `${tag}up`;
    sh('ip', ['link', 'add', upRoot, 'type', 'veth', 'peer', 'name', 'up0', 'netns', lab.inet]);
    lab.links.push(upRoot);
    sh('ip', ['addr', 'add', `${lab.uplink}/30`, 'dev', upRoot]);
    sh('ip', ['link', 'set', upRoot, 'up']);
    sh('ip', ['addr', 'add', `${lab.uplinkInet}/30`, 'dev', 'up0'], { ns: lab.inet });
    sh('ip', ['link', 'set', 'up0', 'up'], { ns: lab.inet });
    sh('ip', ['link', 'add', 'br0', 'type', 'bridge'], { ns: lab.inet });
    for (const a of Object.values(lab.addr)) sh('ip', ['addr', 'add', `${a}/24`, 'dev', 'br0'], { ns: lab.inet });
    sh('ip', ['link', 'set', 'br0', 'up'], { ns: lab.inet });
    // No forwarding here: homes must not reach the uplink (the root namespace).
    sh('sysctl', ['-qw', 'net.ipv4.ip_forward=0'], { ns: lab.inet });
    // A default route into a sink, as on the Internet: a datagram for an
    // address nobody has (another home's private host candidate) is lost
    // quietly instead of failing the sender with "network unreachable".
    // (A veth pair inside the namespace; the gateway's MAC is nobody's, so
    // the other end drops the frames. `dummy` is not in every kernel.)
    sh('ip', ['link', 'add', 'sink0', 'type', 'veth', 'peer', 'name', 'sink1'], { ns: lab.inet });
    for (const l of ['sink0', 'sink1']) sh('ip', ['link', 'set', l, 'up'], { ns: lab.inet });
    sh('ip', ['neigh', 'add', '169.254.0.1', 'lladdr', '02:00:00:00:00:01', 'dev', 'sink0'], { ns: lab.inet });
    sh('ip', ['route', 'add', 'default', 'via', '169.254.0.1', 'dev', 'sink0', 'onlink'], { ns: lab.inet });

    homes.forEach(({ name, type }, i) => {
      if (!NAT_TYPES.includes(type)) throw new Error(`unknown NAT type ${type}`);
      const router = `${tag}-r${i}`;
      const host = `${tag}-h${i}`;
      addNs(router);
      addNs(host);
      const wan = `${net}.0.${10 + i}`;
      const lanNet = `192.168.${100 + i}`;
      const hostAddr = `${lanNet}.2`;
      sh('ip', ['link', 'add', 'wan0', 'netns', router, 'type', 'veth', 'peer', 'name', `w${i}`, 'netns', lab.inet]);
      sh('ip', ['link', 'set', `w${i}`, 'master', 'br0', 'up'], { ns: lab.inet });
      sh('ip', ['addr', 'add', `${wan}/24`, 'dev', 'wan0'], { ns: router });
      sh('ip', ['link', 'set', 'wan0', 'up'], { ns: router });
      sh('ip', ['link', 'add', 'lan0', 'netns', router, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', host]);
      sh('ip', ['addr', 'add', `${lanNet}.1/24`, 'dev', 'lan0'], { ns: router });
      sh('ip', ['link', 'set', 'lan0', 'up'], { ns: router });
      sh('ip', ['addr', 'add', `${hostAddr}/24`, 'dev', 'eth0'], { ns: host });
      sh('ip', ['link', 'set', 'eth0', 'up'], { ns: host });
      sh('ip', ['route', 'add', 'default', 'via', `${lanNet}.1`], { ns: host });
      sh('sysctl', ['-qw', 'net.ipv4.ip_forward=1'], { ns: router });
      sh('nft', ['-f', '-'], { ns: router, input: natRules(type, { wan, host: hostAddr }) + '\n' });
      lab.homes.set(name, { name, type, ns: host, router, wan, addr: hostAddr });
    });
  } catch (e) {
    lab.destroy();
    throw e;
  }
  /** Spawns `cmd args` inside namespace `ns`, tracked: killed by pid at destroy. */
  lab.spawnIn = (ns, cmd, args, opts = {}) => {
    const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    lab.procs.add(child);
    child.once('exit', () => lab.procs.delete(child));
    return child;
  };
  /**
   * An executable that runs `bin` inside namespace `ns` (for tools that
   * take a program path, such as Playwright's `executablePath`).
   */
  const wrappers = new Map();
  lab.wrapper = (ns, bin) => {
    const path = join(lab.dir, `${ns}-${bin.replace(/\W/g, '_')}`);
    // Written once: rewriting it while another caller execs it would run
    // a truncated (empty) script, which "succeeds" doing nothing.
    if (!wrappers.has(path)) {
      writeFileSync(path, `#!/bin/sh\nexec ip netns exec ${ns} ${bin} "$@"\n`, { mode: 0o755 });
      wrappers.set(path, true);
    }
    return path;
  };
  /**
   * Measures `home`'s NAT from inside it against the probe server (started
   * on first use). Resolves to the probe's JSON ({ type, mapped, ... }).
   */
  lab.probe = async (home) => {
    lab.probeServer ??= startProbeServer(lab);
    await lab.probeServer;
    const h = lab.homes.get(home);
    const child = lab.spawnIn(h.ns, process.execPath, [PROBE_SCRIPT, 'client', JSON.stringify({
      main: `${lab.addr.a}:${PROBE_PORTS.main}`,
      otherPort: `${lab.addr.a}:${PROBE_PORTS.otherPort}`,
      otherAddr: `${lab.addr.b}:${PROBE_PORTS.main}`,
      farAddr: `${lab.addr.c}:${PROBE_PORTS.otherPort}`,
      tcp: `${lab.addr.a}:${PROBE_PORTS.tcp}`,
    })]);
    return collectJson(child, `nat probe in ${home}`, 15_000);
  };
  return lab;
}

async function startProbeServer(lab) {
  const child = lab.spawnIn(lab.inet, process.execPath, [PROBE_SCRIPT, 'server', JSON.stringify({
    addrs: [lab.addr.a, lab.addr.b, lab.addr.c], ports: [PROBE_PORTS.main, PROBE_PORTS.otherPort], tcp: `${lab.addr.a}:${PROBE_PORTS.tcp}`,
  })]);
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the probe server did not start in 5 s')), 5_000);
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('probe server ready')) { clearTimeout(timer); resolve(); }
    });
    child.stderr.on('data', (d) => { out += d; });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`the probe server exited (${code}): ${out}`)); });
  });
  return child;
}

/** Waits for `child` to exit (bounded) and parses the last line of its stdout as JSON. */
function collectJson(child, what, timeoutMs) {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`${what} took over ${timeoutMs} ms: ${out}${err}`)); }, timeoutMs);
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    child.once('exit', (code) => {
      clearTimeout(timer);
      const last = out.trim().split('\n').pop();
      try {
        resolve(JSON.parse(last));
      } catch {
        reject(new Error(`${what} exited (${code}) without a result: ${out}${err}`));
      }
    });
  });
}

function destroyLab(lab) {
  if (lab.destroyed) return;
  lab.destroyed = true;
  process.removeListener('exit', lab.destroy);
  for (const c of lab.procs) {
    try { c.kill('SIGKILL'); } catch { /* gone */ }
  }
  // Deleting a namespace kills no process in it: every process the lab
  // started is gone (above); the ones the test started are the test's.
  for (const l of lab.links) {
    try { execFileSync('ip', ['link', 'del', l], { stdio: 'ignore', timeout: CMD_MS }); } catch { /* gone with its namespace */ }
  }
  for (const ns of lab.namespaces.reverse()) {
    try { execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore', timeout: CMD_MS }); } catch { /* already gone */ }
  }
  rmSync(lab.dir, { recursive: true, force: true });
}

/** Namespaces whose names start with `tag` (a test asserts none are left). */
export function namespacesTagged(tag) {
  return sh('ip', ['netns', 'list']).split('\n').map((l) => l.split(' ')[0]).filter((n) => n.startsWith(tag));
}

/** A request made from inside a namespace is bounded by this. */
const NS_HTTP_MS = 10_000;

/**
 * `fetch` + JSON from inside namespace `ns` (a short-lived node there), as
 * `(url, init) => Promise<json>`: for loopback-only APIs of processes in a
 * namespace, such as the permanent peer's local API.
 */
export function nsHttpJson(ns) {
  const script = `
    const [url, init] = JSON.parse(process.argv[1]);
    fetch(url, { ...init, signal: AbortSignal.timeout(${NS_HTTP_MS - 1000}) })
      .then(async (r) => { const t = await r.text(); process.stdout.write(JSON.stringify({ ok: r.ok, status: r.status, text: t })); })
      .catch((e) => { process.stdout.write(JSON.stringify({ error: String(e) })); });`;
  return (url, init = {}) => new Promise((resolve, reject) => {
    execFile('ip', ['netns', 'exec', ns, process.execPath, '-e', script, JSON.stringify([url, init])],
      { timeout: NS_HTTP_MS, encoding: 'utf8' }, (err, stdout) => {
        if (err) return reject(new Error(`${url} from ${ns}: ${err.message}`));
        let r;
        try { r = JSON.parse(stdout); } catch { return reject(new Error(`${url} from ${ns}: ${stdout}`)); }
        if (r.error) return reject(new Error(`${url} from ${ns}: ${r.error}`));
        if (!r.ok) return reject(new Error(`${init.method ?? 'GET'} ${url}: ${r.status} ${r.text}`));
        resolve(JSON.parse(r.text));
      });
  });
}
