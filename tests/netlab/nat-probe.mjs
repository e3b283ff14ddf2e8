// A tiny NAT classifier (RFC 4787 / RFC 5780 in spirit, JSON over UDP
// instead of STUN attributes, so both ends fit in one small file).
//
//   node nat-probe.mjs server '{"addrs":[A,B,C],"ports":[P,Q],"tcp":"A:T"}'
//     UDP sockets on every addr × port. A datagram {"op":"map"} is answered
//     from the same socket with {"mapped":"ip:port"} (the address the
//     server saw); {"op":"reply-from","from":"ip:port"} is answered from
//     that other socket instead. A TCP listener on `tcp` answers "ok".
//
//   node nat-probe.mjs client '{"main":..,"otherPort":..,"otherAddr":..,"farAddr":..,"tcp":..}'
//     Prints one JSON line: {type, mapped, mapping, filtering, tcp}.
//     - mapping: one socket asks main, otherPort and otherAddr for its
//       mapped address: all equal → endpoint-independent, else dependent.
//     - filtering: a fresh socket talks only to main and asks for a reply
//       from farAddr (an address no socket here ever sent to): received →
//       endpoint-independent; another fresh socket asks for a reply from
//       otherPort (same address, another port): received →
//       address-dependent; neither → address-and-port-dependent.
//     - no UDP answer at all but TCP works → udp-blocked.
import dgram from 'node:dgram';
import net from 'node:net';

/** Each UDP question is asked this many times, waiting this long for each. */
const TRIES = 3;
const WAIT_MS = 400;

const [mode, json] = process.argv.slice(2);
const cfg = JSON.parse(json ?? '{}');
const split = (hp) => {
  const i = hp.lastIndexOf(':');
  return { address: hp.slice(0, i), port: Number(hp.slice(i + 1)) };
};

if (mode === 'server') await server();
else if (mode === 'client') await client();
else {
  console.error('usage: nat-probe.mjs server|client JSON');
  process.exit(2);
}

async function server() {
  const sockets = new Map();
  for (const address of cfg.addrs) {
    for (const port of cfg.ports) {
      const s = dgram.createSocket('udp4');
      await new Promise((resolve, reject) => { s.once('error', reject); s.bind(port, address, resolve); });
      sockets.set(`${address}:${port}`, s);
      s.on('message', (msg, rinfo) => {
        let m;
        try { m = JSON.parse(msg.toString()); } catch { return; }
        const mapped = `${rinfo.address}:${rinfo.port}`;
        const out = Buffer.from(JSON.stringify({ mapped, id: m.id }));
        const via = m.op === 'reply-from' ? sockets.get(m.from) : s;
        via?.send(out, rinfo.port, rinfo.address);
      });
    }
  }
  const { address, port } = split(cfg.tcp);
  const tcp = net.createServer((c) => c.end('ok\n'));
  await new Promise((resolve, reject) => { tcp.once('error', reject); tcp.listen(port, address, resolve); });
  console.log('probe server ready');
}

/** Sends `msg` from `sock` to `to` until an answer arrives (bounded); the answer or null. */
async function ask(sock, to, msg) {
  const { address, port } = split(to);
  const id = Math.random().toString(36).slice(2);
  for (let i = 0; i < TRIES; i++) {
    const answer = new Promise((resolve) => {
      const timer = setTimeout(() => { sock.off('message', on); resolve(null); }, WAIT_MS);
      const on = (data) => {
        let m;
        try { m = JSON.parse(data.toString()); } catch { return; }
        if (m.id !== id) return;
        clearTimeout(timer);
        sock.off('message', on);
        resolve(m);
      };
      sock.on('message', on);
    });
    sock.send(Buffer.from(JSON.stringify({ ...msg, id })), port, address);
    const m = await answer;
    if (m) return m;
  }
  return null;
}

async function socket() {
  const s = dgram.createSocket('udp4');
  await new Promise((resolve) => s.bind(0, resolve));
  return s;
}

async function tcpWorks() {
  const { address, port } = split(cfg.tcp);
  return new Promise((resolve) => {
    const c = net.connect({ host: address, port });
    const timer = setTimeout(() => { c.destroy(); resolve(false); }, 3000);
    c.once('data', () => { clearTimeout(timer); c.destroy(); resolve(true); });
    c.once('error', () => { clearTimeout(timer); resolve(false); });
  });
}

async function client() {
  const s1 = await socket();
  const maps = [];
  for (const to of [cfg.main, cfg.otherPort, cfg.otherAddr]) maps.push((await ask(s1, to, { op: 'map' }))?.mapped ?? null);
  const tcp = await tcpWorks();
  const result = { mapped: maps, tcp };
  if (maps.every((m) => m === null)) {
    result.type = tcp ? 'udp-blocked' : 'offline';
  } else if (maps.some((m) => m === null)) {
    result.type = 'inconsistent';
  } else {
    result.mapping = new Set(maps).size === 1 ? 'endpoint-independent' : 'endpoint-dependent';
    const s2 = await socket();
    const far = await ask(s2, cfg.main, { op: 'reply-from', from: cfg.farAddr });
    const s3 = await socket();
    const port = await ask(s3, cfg.main, { op: 'reply-from', from: cfg.otherPort });
    result.filtering = far ? 'endpoint-independent' : port ? 'address-dependent' : 'address-and-port-dependent';
    s2.close();
    s3.close();
    if (result.mapping === 'endpoint-dependent') result.type = 'symmetric';
    else result.type = { 'endpoint-independent': 'full-cone', 'address-dependent': 'address-restricted', 'address-and-port-dependent': 'port-restricted' }[result.filtering];
  }
  s1.close();
  console.log(JSON.stringify(result));
  process.exit(0);
}
