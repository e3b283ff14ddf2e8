// coturn (Debian's `turnserver`) for the NAT lab, run inside a namespace
// the lab made, with the TURN REST API shared secret the hub signs with
// (`use-auth-secret` + `static-auth-secret`). Listens on 3478 (UDP and TCP);
// 443, the port a UDP-blocking network is most likely to let out, is
// redirected to it by nftables in front (coturn opens a second port only
// for RFC 5780, which needs a second address), as an operator would.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sh } from './netlab.mjs';

export const TURNSERVER = '/usr/bin/turnserver';
export const TURN_PORT = 3478;
export const TURN_TCP_PORT = 443;
/** coturn prints its listeners within this (it is a few ms here). */
const START_MS = 10_000;

/** Why coturn cannot run here, or null. */
export function coturnUnavailable() {
  return existsSync(TURNSERVER) ? null : 'coturn is not installed (apt-get install coturn)';
}

/**
 * The coturn configuration for `ip`: relays from that address only, the
 * hub's secret, and the operator's caps (coturn's own mechanism; the hub
 * documents which of its settings they correspond to):
 * - `userQuota`: concurrent allocations per username, i.e. per swarm (the
 *   hub's usernames are `<expiry>:<swarm id>`, shared by a swarm's clients);
 * - `totalQuota`: concurrent allocations in all;
 * - `maxBps`: bytes per second per relayed session;
 * - `bpsCapacity`: bytes per second for the whole server.
 * 0 means no limit for each.
 */
export function coturnConfig({ ip, secret, dir, peers, userQuota = 0, totalQuota = 0, maxBps = 0, bpsCapacity = 0 }) {
  return [
    `listening-ip=${ip}`,
    `relay-ip=${ip}`,
    `listening-port=${TURN_PORT}`,
    'min-port=40000',
    'max-port=40999',
    'use-auth-secret',
    `static-auth-secret=${secret}`,
    'realm=tuber-lab',
    'fingerprint',
    // A public TURN server refuses private peers (a client could reach
    // the operator's own network through it, and host candidates of other
    // homes are unreachable anyway); the lab's 10.x addresses are its
    // Internet, allowed (allowed-peer-ip wins over denied-peer-ip).
    'denied-peer-ip=10.0.0.0-10.255.255.255',
    'denied-peer-ip=172.16.0.0-172.31.255.255',
    'denied-peer-ip=192.168.0.0-192.168.255.255',
    ...(peers ? [`allowed-peer-ip=${peers}`] : []),
    'verbose',
    'no-tls',
    'no-dtls',
    'no-cli',
    'no-stun-backward-compatibility',
    `user-quota=${userQuota}`,
    `total-quota=${totalQuota}`,
    `max-bps=${maxBps}`,
    `bps-capacity=${bpsCapacity}`,
    `pidfile=${join(dir, 'turnserver.pid')}`,
    // Its own database file: nothing of the machine's coturn is touched.
    `userdb=${join(dir, 'turndb')}`,
    'log-file=stdout',
    'simple-log',
    'new-log-timestamp',
    '',
  ].join('\n');
}

/**
 * Starts coturn in namespace `ns` of `lab` on `ip`. Resolves to
 * { urls, secret, log(), usage() } once it listens; stopped (by pid) with
 * the lab. `usage()` sums the relayed bytes coturn logged per username.
 */
export async function startCoturn(lab, { ns = lab.inet, ip = lab.addr.a, secret, caps = {} }) {
  const conf = join(lab.dir, 'turnserver.conf');
  const peers = `${lab.net}.0.0-${lab.net}.0.255`;
  writeFileSync(conf, coturnConfig({ ip, secret, dir: lab.dir, peers, ...caps }));
  sh('nft', ['-f', '-'], {
    ns,
    input: `table ip turn443 {
  chain prerouting { type nat hook prerouting priority dstnat; ip daddr ${ip} tcp dport ${TURN_TCP_PORT} redirect to :${TURN_PORT}; }
}
`,
  });
  const child = lab.spawnIn(ns, TURNSERVER, ['-c', conf]);
  let log = '';
  child.stdout.on('data', (d) => { log = (log + d).slice(-4 * 1024 * 1024); });
  child.stderr.on('data', (d) => { log = (log + d).slice(-4 * 1024 * 1024); });
  await new Promise((resolve, reject) => {
    const t0 = Date.now();
    const timer = setInterval(() => {
      // coturn logs no line per listener: ask the kernel.
      const ss = listening(lab, ns);
      const a = `${ip}:${TURN_PORT}`;
      if (ss.tcp.has(a) && ss.udp.has(a)) {
        clearInterval(timer);
        resolve();
      } else if (Date.now() - t0 > START_MS) {
        clearInterval(timer);
        reject(new Error(`coturn did not listen in ${START_MS} ms:\n${log.slice(-6000)}`));
      }
    }, 50);
    child.once('exit', (code) => {
      clearInterval(timer);
      reject(new Error(`coturn exited (${code}):\n${log}`));
    });
  });
  return {
    urls: [`turn:${ip}:${TURN_PORT}?transport=udp`, `turn:${ip}:${TURN_TCP_PORT}?transport=tcp`],
    secret,
    pid: child.pid,
    log: () => log,
    /**
     * Relayed bytes per username: the sum of coturn's `usage` lines (it
     * logs each session's counts since its last line, periodically and at
     * the end; `rb`/`sb` are bytes received from / sent to the client).
     */
    usage() {
      const by = {};
      const re = /: usage: realm=<[^>]*>, username=<([^>]*)>, rp=\d+, rb=(\d+), sp=\d+, sb=(\d+)/g;
      for (const m of log.matchAll(re)) {
        const u = by[m[1]] ??= { received: 0, sent: 0 };
        u.received += Number(m[2]);
        u.sent += Number(m[3]);
      }
      return by;
    },
  };
}

/** The TCP and UDP addresses listening in namespace `ns` (from `ss`). */
function listening(lab, ns) {
  const out = { tcp: new Set(), udp: new Set() };
  for (const line of sh('ss', ['-Hlntu'], { ns }).split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length >= 5) out[f[0] === 'tcp' ? 'tcp' : 'udp'].add(f[4]);
  }
  return out;
}
