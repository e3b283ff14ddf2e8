// A WebTorrent (WebSocket) tracker for p2p-media-loader, from `bittorrent-tracker`:
// ws only, on 127.0.0.1, a free port. Prints `listening ws://127.0.0.1:PORT`
// once it listens, and a JSON line of its counters (`stats {...}`) on SIGUSR2
// and when it stops (SIGTERM/SIGINT). Started by run.mjs as its own process.
// The server alone: the package's index also loads its client, whose WebRTC
// (node-datachannel) is native code that --ignore-scripts did not build.
import Server from 'bittorrent-tracker/server';

const counters = { connections: 0, announces: 0, offersRelayed: 0, answersRelayed: 0, errors: 0, warnings: 0 };
const server = new Server({ http: false, udp: false, ws: true, stats: false });
server.on('error', (e) => { counters.errors++; console.error(`tracker error: ${e?.message ?? e}`); });
server.on('warning', (e) => { counters.warnings++; console.error(`tracker warning: ${e?.message ?? e}`); });
server.on('start', () => { counters.announces++; });
server.on('update', () => { counters.announces++; });
server.ws.on('connection', (socket) => {
  counters.connections++;
  socket.on('message', (data) => {
    try {
      const m = JSON.parse(data);
      if (Array.isArray(m.offers)) counters.offersRelayed += m.offers.length;
      if (m.answer) counters.answersRelayed++;
    } catch { /* not JSON: the server answers it */ }
  });
});
const printStats = () => {
  const swarms = Object.values(server.torrents ?? {});
  console.log(`stats ${JSON.stringify({ ...counters, swarms: swarms.length, swarmPeers: swarms.map((s) => s.peers?.length ?? null) })}`);
};
process.on('SIGUSR2', printStats);
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    printStats();
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  });
}
server.listen(0, '127.0.0.1', () => {
  console.log(`listening ws://127.0.0.1:${server.ws.address().port}`);
});
