// The page's place in the swarm: signaling, the WebRTC links to other peers
// (offering to providers, answering whoever offers to us), serving verified
// pieces from memory to other peers, and the planner's bookkeeping: `want` →
// `providers`, `have`/`lost`, `report` (bytes per peer, bad pieces).

import { Signaling } from './signaling.js';
import { PeerLink, errorText } from './peer.js';
import { toHex, fromHex } from './proto/json.js';
import { MAX_HASHES_PER_MESSAGE, MAX_REPORT_ENTRIES, MAX_BAD_PIECES, MAX_JSON_INT } from './proto/limits.js';

/** @typedef {import('./proto/signal.js').HubToClient} HubToClient */
/** @typedef {import('./proto/signal.js').Provider} Provider */
/** @typedef {import('./proto/descriptor.js').SwarmDescriptor} SwarmDescriptor */
/** @typedef {{byteLength: number, subarray(a: number, b: number): Uint8Array}} PieceBytes */

/** Links at most (open or being set up). */
export const MAX_LINKS = 16;
/** Links being set up at once, at most. */
export const MAX_CONNECTING = 6;
/** The remote's requests in flight per link before `busy`. */
const MAX_INCOMING = 16;
/** `want`s waiting for their `providers`, at most; and how long each waits. */
const MAX_PENDING_WANTS = 64;
const WANT_TIMEOUT_MS = 3000;
/**
 * A `want` made before signaling first welcomed this page (the page's
 * first reads start while it connects) waits for the welcome this long
 * after `start()`, rather than sending the read to the origin at once.
 */
export const FIRST_WELCOME_WAIT_MS = 4000;
const HAVE_FLUSH_MS = 250;
const REPORT_EVERY_MS = 5000;
/** A link unused for this long is closed to make room. */
const IDLE_LINK_MS = 60_000;

export class Swarm {
  /**
   * @param {{
   *   descriptor: SwarmDescriptor,
   *   pieces: {get(key: string): PieceBytes | undefined, keys(): string[]},
   *   onWelcome?: (peerId: string) => void,
   *   onLinkReady?: (peer: string) => void,
   *   onLinkClosed?: (peer: string, why: string) => void,
   *   log?: (...args: unknown[]) => void,
   * }} opts
   */
  constructor(opts) {
    this.opts = opts;
    this.log = opts.log ?? (() => {});
    this.descriptor = opts.descriptor;
    /** The descriptor's ICE servers; each welcome adds its own (TURN credentials). @type {RTCIceServer[]} */
    this.iceServers = toRtcIceServers(opts.descriptor.ice_servers);
    /** @type {Map<string, PeerLink>} */
    this.links = new Map();
    this.nextConn = (Math.random() * 0x7fffffff) >>> 0;
    this.nextReq = 1;
    /** req → {hashes, callback, timer} @type {Map<number, {hashes: string[], cb: (p: Provider[] | null) => void, timer: ReturnType<typeof setTimeout>}>} */
    this.wants = new Map();
    /** @type {Set<string>} */
    this.haveQueue = new Set();
    /** @type {Set<string>} */
    this.lostQueue = new Set();
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.haveTimer = undefined;
    /** peer → {up, down} since the last report @type {Map<string, {up: number, down: number}>} */
    this.transfers = new Map();
    /** @type {Array<{peer: string, piece: string}>} */
    this.bad = [];
    this.servedBytes = 0;
    /** @type {string | null} */
    this.peerId = null;
    this.signaling = new Signaling({
      url: opts.descriptor.signaling,
      onWelcome: (w) => this.welcomed(w.peer_id, w.ice_servers ?? []),
      onMessage: (m) => this.message(m),
      onDown: () => this.signalingDown(),
      log: this.log,
    });
    this.reportTimer = setInterval(() => this.flushReport(), REPORT_EVERY_MS);
    /** When `start()` ran (0: not yet). */
    this.startedAt = 0;
    this.everWelcomed = false;
    /** Wants made before the first welcome. @type {Array<{hashes: string[], cb: (p: Provider[] | null) => void}>} */
    this.earlyWants = [];
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.earlyTimer = undefined;
  }

  start() {
    this.startedAt = Date.now();
    this.signaling.start();
  }

  /** Sends (`up`) or fails the wants made before the first welcome. @param {boolean} up */
  flushEarlyWants(up) {
    clearTimeout(this.earlyTimer);
    this.earlyTimer = undefined;
    for (const { hashes, cb } of this.earlyWants.splice(0)) {
      if (up) this.want(hashes, cb);
      else cb(null);
    }
  }

  stop() {
    clearInterval(this.reportTimer);
    clearTimeout(this.haveTimer);
    this.flushReport();
    this.signaling.stop();
    this.flushEarlyWants(false);
    for (const link of [...this.links.values()]) link.close('page stopping');
  }

  /** Whether signaling is up (wants can be answered). */
  get online() {
    return this.signaling.up;
  }

  /**
   * The ICE path of every open link (test hook: direct or relayed).
   * @returns {Promise<Array<{peer: string} & import('./peer.js').IcePath>>}
   */
  async paths() {
    const out = [];
    for (const [peer, link] of this.links) {
      if (!link.ready) continue;
      const p = await link.path().catch(() => null);
      if (p) out.push({ peer, ...p });
    }
    return out;
  }

  get peersConnected() {
    let n = 0;
    for (const l of this.links.values()) if (l.ready) n++;
    return n;
  }

  get connecting() {
    let n = 0;
    for (const l of this.links.values()) if (!l.ready) n++;
    return n;
  }

  /**
   * @param {string} peerId
   * @param {import('./proto/descriptor.js').IceServer[]} iceServers this session's own (short-lived TURN credentials)
   */
  welcomed(peerId, iceServers) {
    this.peerId = peerId;
    this.iceServers = toRtcIceServers([...this.descriptor.ice_servers, ...iceServers]);
    // A new session: the hub knows nothing of what we hold.
    for (const key of this.opts.pieces.keys()) this.haveQueue.add(key);
    this.scheduleHave();
    this.everWelcomed = true;
    this.opts.onWelcome?.(peerId);
    this.flushEarlyWants(true);
  }

  signalingDown() {
    this.peerId = null;
    for (const [req, w] of [...this.wants]) {
      clearTimeout(w.timer);
      this.wants.delete(req);
      w.cb(null);
    }
  }

  /** @param {HubToClient} m */
  message(m) {
    switch (m.type) {
      case 'providers': {
        const w = this.wants.get(m.req);
        if (!w) return;
        clearTimeout(w.timer);
        this.wants.delete(m.req);
        w.cb(m.providers);
        return;
      }
      case 'offer':
        this.onOffer(m.from, m.conn, m.sdp);
        return;
      case 'answer': {
        const link = this.links.get(m.from);
        if (link && link.conn === m.conn) link.remoteAnswer(m.sdp);
        return;
      }
      case 'candidate': {
        const link = this.links.get(m.from);
        if (link && link.conn === m.conn) link.remoteCandidate(m.candidate);
        return;
      }
      default:
        // assign/unassign are for trusted peers; pong needs nothing.
    }
  }

  /**
   * Asks the planner who holds `hashes` (≤ 512); `cb` gets the providers,
   * or null when no answer comes (signaling down, timeout, too many asks).
   * @param {string[]} hashes @param {(p: Provider[] | null) => void} cb
   */
  want(hashes, cb) {
    const waitUntil = this.startedAt + FIRST_WELCOME_WAIT_MS;
    if (!this.online && !this.everWelcomed && this.startedAt > 0 && Date.now() < waitUntil
      && this.earlyWants.length < MAX_PENDING_WANTS && hashes.length > 0) {
      // Signaling is still connecting for the first time: ask once it is up.
      this.earlyWants.push({ hashes, cb });
      if (this.earlyTimer === undefined) {
        this.earlyTimer = setTimeout(() => this.flushEarlyWants(false), Math.max(0, waitUntil - Date.now()));
      }
      return;
    }
    if (!this.online || this.wants.size >= MAX_PENDING_WANTS || hashes.length === 0) {
      queueMicrotask(() => cb(null));
      return;
    }
    const req = this.nextReq;
    this.nextReq = (this.nextReq + 1) >>> 0 || 1;
    const list = hashes.slice(0, MAX_HASHES_PER_MESSAGE);
    if (!this.signaling.send({ type: 'want', req, pieces: list })) {
      queueMicrotask(() => cb(null));
      return;
    }
    const timer = setTimeout(() => {
      if (this.wants.delete(req)) cb(null);
    }, WANT_TIMEOUT_MS);
    this.wants.set(req, { hashes: list, cb, timer });
  }

  /** Whether another link may be set up now. */
  canConnect() {
    return this.links.size < MAX_LINKS && this.connecting < MAX_CONNECTING;
  }

  /**
   * Offers a connection to `peer` (a provider). False if there is no room
   * or no signaling.
   * @param {string} peer
   */
  connect(peer) {
    if (this.links.has(peer)) return true;
    if (!this.online || peer === this.peerId) return false;
    if (!this.canConnect() && !this.evictIdle()) return false;
    const link = this.makeLink(peer, this.nextConn, true);
    this.nextConn = (this.nextConn + 1) >>> 0;
    link.start();
    return true;
  }

  /**
   * Closes the least recently used idle link, if any, to make room.
   */
  evictIdle() {
    let victim = null;
    for (const l of this.links.values()) {
      if (!l.ready) continue;
      const busy = (l.session?.outgoing.size ?? 0) + (l.session?.incoming.size ?? 0);
      if (busy === 0 && Date.now() - l.lastUsed > 2000 && (!victim || l.lastUsed < victim.lastUsed)) victim = l;
    }
    if (!victim) return false;
    victim.close('idle, making room');
    return true;
  }

  /**
   * @param {string} from @param {number} conn @param {string} sdp
   */
  onOffer(from, conn, sdp) {
    if (!this.peerId || from === this.peerId) return;
    const existing = this.links.get(from);
    if (existing) {
      // Both offered at once: the offer of the lower id wins on both sides.
      if (existing.offering && !existing.ready && this.peerId < from) return;
      existing.close('replaced by a new offer');
    }
    if (this.links.size >= MAX_LINKS && !this.evictIdle()) return;
    const link = this.makeLink(from, conn, false);
    link.start(sdp);
  }

  /**
   * @param {string} peer @param {number} conn @param {boolean} offering
   */
  makeLink(peer, conn, offering) {
    const link = new PeerLink({
      remote: peer,
      conn,
      offering,
      iceServers: this.iceServers,
      maxIncoming: MAX_INCOMING,
      log: this.log,
      signal: (s) => {
        if (s.kind === 'candidate') this.signaling.send({ type: 'candidate', to: peer, conn, candidate: s.candidate });
        else this.signaling.send({ type: s.kind, to: peer, conn, sdp: s.sdp });
      },
      onReady: () => this.opts.onLinkReady?.(peer),
      onClose: (l, why) => {
        if (this.links.get(peer) === l) this.links.delete(peer);
        this.opts.onLinkClosed?.(peer, why);
      },
      onRequest: (l, req) => this.serveRequest(l, req),
      onSent: (l, n) => {
        this.servedBytes += n;
        this.count(l.remote, n, 0);
      },
    });
    this.links.set(peer, link);
    return link;
  }

  /**
   * A remote asks us for a piece: from memory, verified, or `missing`.
   * @param {PeerLink} link @param {import('./wire-session.js').IncomingRequest} req
   */
  serveRequest(link, req) {
    const s = link.session;
    if (!s) return;
    const bytes = this.opts.pieces.get(toHex(req.piece));
    if (!bytes || req.offset + req.length > bytes.byteLength) {
      s.respondMissing(req.id);
      return;
    }
    link.serve(req.id, bytes.subarray(req.offset, req.offset + req.length), req.offset);
  }

  /**
   * The ready link to `peer`, if any.
   * @param {string} peer
   */
  link(peer) {
    const l = this.links.get(peer);
    return l && l.ready ? l : undefined;
  }

  /**
   * Closes the link to `peer` (a liar, or one that stopped answering).
   * @param {string} peer @param {string} why
   */
  drop(peer, why) {
    this.links.get(peer)?.close(why);
  }

  /** Closes links nobody used for a minute. */
  reapIdle() {
    const now = Date.now();
    for (const l of [...this.links.values()]) {
      const busy = (l.session?.outgoing.size ?? 0) + (l.session?.incoming.size ?? 0) + l.sendQueue.length;
      if (busy === 0 && now - l.lastUsed > IDLE_LINK_MS) l.close('idle');
    }
  }

  /** @param {string} hash */
  announceHave(hash) {
    this.lostQueue.delete(hash);
    this.haveQueue.add(hash);
    this.scheduleHave();
  }

  /** @param {string} hash */
  announceLost(hash) {
    if (this.haveQueue.delete(hash)) return;
    this.lostQueue.add(hash);
    this.scheduleHave();
  }

  scheduleHave() {
    if (this.haveTimer === undefined) this.haveTimer = setTimeout(() => this.flushHave(), HAVE_FLUSH_MS);
  }

  flushHave() {
    this.haveTimer = undefined;
    if (!this.online) {
      // Re-announced in full after the next welcome.
      this.haveQueue.clear();
      this.lostQueue.clear();
      return;
    }
    for (const [queue, type] of /** @type {const} */ ([[this.lostQueue, 'lost'], [this.haveQueue, 'have']])) {
      while (queue.size > 0) {
        const batch = [...queue].slice(0, MAX_HASHES_PER_MESSAGE);
        for (const h of batch) queue.delete(h);
        this.signaling.send({ type, pieces: batch });
      }
    }
  }

  /**
   * Bytes moved with `peer` (down: verified pieces only).
   * @param {string} peer @param {number} up @param {number} down
   */
  count(peer, up, down) {
    let t = this.transfers.get(peer);
    if (!t) {
      if (this.transfers.size >= MAX_REPORT_ENTRIES) this.flushReport();
      t = { up: 0, down: 0 };
      this.transfers.set(peer, t);
    }
    t.up = Math.min(MAX_JSON_INT, t.up + up);
    t.down = Math.min(MAX_JSON_INT, t.down + down);
  }

  /**
   * A piece from `peer` failed verification.
   * @param {string} peer @param {string} piece
   */
  reportBad(peer, piece) {
    if (this.bad.length >= MAX_BAD_PIECES) this.flushReport();
    if (this.bad.length < MAX_BAD_PIECES) this.bad.push({ peer, piece });
    // Bans should not wait for the timer.
    this.flushReport();
  }

  flushReport() {
    if (!this.online) return;
    if (this.transfers.size === 0 && this.bad.length === 0) return;
    const transfers = [...this.transfers].slice(0, MAX_REPORT_ENTRIES).map(([peer, t]) => ({ peer, up: t.up, down: t.down }));
    const bad = this.bad.slice(0, MAX_BAD_PIECES);
    this.transfers.clear();
    this.bad = [];
    if (!this.signaling.send({ type: 'report', transfers, bad })) this.log('report not sent');
  }
}

export { fromHex, errorText };

/**
 * Protocol ICE servers as `RTCIceServer`s (absent credentials left out).
 * @param {import('./proto/descriptor.js').IceServer[]} servers
 * @returns {RTCIceServer[]}
 */
function toRtcIceServers(servers) {
  return servers.map((s) => {
    /** @type {RTCIceServer} */
    const out = { urls: s.urls };
    if (s.username !== undefined) out.username = s.username;
    if (s.credential !== undefined) out.credential = s.credential;
    return out;
  });
}
