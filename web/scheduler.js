// Piece scheduling: which peer gets which piece, when to wait, when to
// give up on peers and fetch a piece from the origin, and when a late peer
// request is also asked of the origin (`HedgePolicy`, at the end). Pure
// bookkeeping, no I/O and no timers (the caller passes the clock), so it is
// unit-tested.
//
// Rules:
// - A piece goes to one of its providers (from the planner's `providers`)
//   that is connected, not banned, has not failed this piece, is not backing
//   off after `busy`, and has fewer than `maxPerPeer` of our requests in
//   flight; among those: trusted permanent peers first, then permanent, then
//   browsers; then the fewest in flight; then the fewest failures; then the
//   planner's order.
// - At most `maxInFlight` peer requests in flight in all.
// - `missing`, a timeout or a closed link: that provider is not asked for
//   that piece again; `busy`: the provider backs off for a while (its
//   `retry_after_ms`, 100 ms–2 s) and may be asked again; a bad piece bans the
//   sender for good. Each counts one attempt; after `maxAttempts` attempts
//   the piece comes from the origin.
// - A peer given up (`MAX_PEER_FAILURES` timeouts or closed links in a row,
//   or a link that failed) is tried again, for the pieces it has not failed,
//   after `peerRetryMs` (30 s), doubled each time it is given up again, up to
//   8 times that: one stall of a donor's path (a burst of loss, a busy
//   uplink) must not cost every piece of a long video for the rest of the
//   visit. A banned peer is never tried again.
// - A piece whose providers are all used up is asked about once more
//   (`rewant`: browsers that fetched it since may have announced it), then
//   comes from the origin; so does a piece with no provider at all.
// - An answer older than `providerTtlMs` (5 min) is asked for again before
//   dialing a provider we have no link to: the hub relays an offer only to a
//   provider it named to us recently (10 min), so an old answer would make a
//   dial the hub refuses. This re-ask does not use up the one `rewant`.
// - A piece that waits without any connected provider (links still being
//   set up, every provider backing off, no `providers` answer yet) for
//   `maxWaitMs` comes from the origin. Waiting behind our own requests to a
//   connected provider does not count: that is just a queue.

/** @typedef {'idle' | 'connecting' | 'ready' | 'failed'} PeerStatus */
/** @typedef {'missing' | 'busy' | 'timeout' | 'closed' | 'bad'} FailReason */
/** @typedef {{peer: string, trusted: boolean, role: 'browser' | 'permanent'}} ProviderInfo */
/**
 * @typedef {{kind: 'peer', peer: string}
 *   | {kind: 'wait', until: number}
 *   | {kind: 'rewant'}
 *   | {kind: 'origin', reason: string}} Decision
 */

/**
 * @typedef {object} PeerState
 * @property {PeerStatus} status
 * @property {boolean} trusted
 * @property {'browser' | 'permanent'} role
 * @property {number} inFlight our requests to it now
 * @property {number} failures consecutive failures (reset by a success)
 * @property {number} busyUntil back off until this time (ms)
 * @property {boolean} banned
 * @property {number} since when it entered its status (ms)
 * @property {number} retryAt a `failed` peer may be tried again from then (ms)
 * @property {number} givenUp how many times it was given up
 */

/**
 * @typedef {object} PieceState
 * @property {number} attempts
 * @property {Set<string>} tried providers that failed this piece
 * @property {number} since when it started waiting (ms)
 * @property {number} rewants
 * @property {boolean} asked a `providers` answer arrived (or none will)
 */

/** Consecutive failures after which a peer is given up. */
export const MAX_PEER_FAILURES = 3;

export class Scheduler {
  /**
   * @param {{maxInFlight?: number, maxPerPeer?: number, maxAttempts?: number, maxWaitMs?: number,
   *   maxPeers?: number, maxPieces?: number, providerTtlMs?: number, peerRetryMs?: number}} [opts]
   */
  constructor(opts = {}) {
    this.maxInFlight = opts.maxInFlight ?? 24;
    this.maxPerPeer = opts.maxPerPeer ?? 8;
    this.maxAttempts = opts.maxAttempts ?? 5;
    this.maxWaitMs = opts.maxWaitMs ?? 5000;
    /** How long a `providers` answer is good for dialing (see above). */
    this.providerTtlMs = opts.providerTtlMs ?? 5 * 60_000;
    /** How long a peer given up rests before it is tried again (see above). */
    this.peerRetryMs = opts.peerRetryMs ?? 30_000;
    /** Bounds on the bookkeeping itself. */
    this.maxPeers = opts.maxPeers ?? 1024;
    this.maxPieces = opts.maxPieces ?? 8192;
    /** @type {Map<string, PeerState>} */
    this.peers = new Map();
    /** @type {Map<string, PieceState>} */
    this.pieces = new Map();
    /** piece → {list of providers, when learnt} @type {Map<string, {list: ProviderInfo[], at: number}>} */
    this.providers = new Map();
    this.inFlight = 0;
  }

  /**
   * The state of peer `id`, created as `idle`.
   * @param {string} id
   * @returns {PeerState}
   */
  peer(id) {
    let p = this.peers.get(id);
    if (!p) {
      if (this.peers.size >= this.maxPeers) this.prunePeers();
      p = { status: 'idle', trusted: false, role: 'browser', inFlight: 0, failures: 0, busyUntil: 0, banned: false, since: 0, retryAt: 0, givenUp: 0 };
      this.peers.set(id, p);
    }
    return p;
  }

  /** Forgets idle peers nobody lists any more, to stay bounded. */
  prunePeers() {
    const listed = new Set();
    for (const { list } of this.providers.values()) for (const p of list) listed.add(p.peer);
    for (const [id, p] of this.peers) {
      if (!listed.has(id) && p.inFlight === 0 && !p.banned && p.status !== 'ready') this.peers.delete(id);
    }
  }

  /**
   * @param {string} id @param {PeerStatus} status @param {number} [now]
   */
  setPeerStatus(id, status, now = 0) {
    const p = this.peer(id);
    if (status === 'failed') {
      this.giveUp(p, now);
      return;
    }
    if (p.status !== status) p.since = now;
    p.status = status;
    if (status === 'ready') p.failures = 0;
  }

  /**
   * `p` is given up until its rest is over; a peer given up already keeps
   * the rest it has (a second report of the same stall does not lengthen it).
   * @param {PeerState} p @param {number} now
   */
  giveUp(p, now) {
    if (p.status === 'failed') return;
    p.status = 'failed';
    p.since = now;
    p.retryAt = now + this.peerRetryMs * 2 ** Math.min(p.givenUp, 3);
    p.givenUp++;
  }

  /**
   * Peer `id`'s state, a peer given up made `idle` again once its rest is
   * over (banned peers stay failed).
   * @param {string} id @param {number} now
   */
  current(id, now) {
    const p = this.peer(id);
    if (p.status === 'failed' && !p.banned && now >= p.retryAt) {
      p.status = 'idle';
      p.since = now;
      p.failures = 0;
    }
    return p;
  }

  /** @param {string} id */
  ban(id) {
    const p = this.peer(id);
    p.banned = true;
    p.status = 'failed';
  }

  /** @param {string} id */
  isBanned(id) {
    return this.peers.get(id)?.banned ?? false;
  }

  /**
   * Registers a piece we need; its wait starts now.
   * @param {string} piece @param {number} now
   */
  need(piece, now) {
    let st = this.pieces.get(piece);
    if (!st) {
      st = { attempts: 0, tried: new Set(), since: now, rewants: 0, asked: false };
      this.pieces.set(piece, st);
    }
    return st;
  }

  /**
   * The planner's answer for `piece` (an empty list: nobody has it).
   * @param {string} piece @param {ProviderInfo[]} list @param {number} now
   */
  setProviders(piece, list, now) {
    if (!this.providers.has(piece) && this.providers.size >= this.maxPieces) {
      // Drop the oldest answers (Map order is insertion order).
      const drop = Math.ceil(this.maxPieces / 8);
      for (const k of [...this.providers.keys()].slice(0, drop)) this.providers.delete(k);
    }
    this.providers.delete(piece);
    this.providers.set(piece, { list: list.slice(0, 64), at: now });
    for (const info of list) {
      const p = this.peer(info.peer);
      p.trusted = info.trusted;
      p.role = info.role;
    }
    const st = this.pieces.get(piece);
    if (st) st.asked = true;
  }

  /**
   * The `want` for `piece` went unanswered (or signaling is down): decide
   * without providers.
   * @param {string} piece
   */
  noAnswer(piece) {
    const st = this.pieces.get(piece);
    if (st) st.asked = true;
  }

  /** Whether another peer request may start. */
  canStart() {
    return this.inFlight < this.maxInFlight;
  }

  /**
   * Provider order: trusted permanent, permanent, browsers; then the fewest
   * in flight; then the fewest failures; then the planner's order.
   * @param {string[]} ids
   */
  rank(ids) {
    const rankOf = (/** @type {PeerState} */ p) => (p.trusted && p.role === 'permanent' ? 0 : p.role === 'permanent' ? 1 : p.trusted ? 2 : 3);
    return ids
      .map((id, order) => ({ id, order, p: this.peer(id) }))
      .sort((a, b) => rankOf(a.p) - rankOf(b.p) || a.p.inFlight - b.p.inFlight || a.p.failures - b.p.failures || a.order - b.order)
      .map((x) => x.id);
  }

  /**
   * What to do about `piece` now.
   * @param {string} piece @param {number} now
   * @returns {Decision}
   */
  choose(piece, now) {
    const st = this.need(piece, now);
    if (st.attempts >= this.maxAttempts) return { kind: 'origin', reason: `${st.attempts} failed attempts` };
    const known = this.providers.get(piece);
    if (!known) {
      if (st.asked) return { kind: 'origin', reason: 'no answer from the planner' };
      if (now - st.since >= this.maxWaitMs) return { kind: 'origin', reason: 'no providers in time' };
      return { kind: 'wait', until: st.since + this.maxWaitMs };
    }
    const usable = known.list
      .map((x) => x.peer)
      .filter((id) => {
        const p = this.current(id, now);
        return !p.banned && p.status !== 'failed' && !st.tried.has(id);
      });
    if (usable.length === 0) {
      if (st.rewants < 1 && known.list.length > 0) return { kind: 'rewant' };
      return { kind: 'origin', reason: known.list.length ? 'every provider failed' : 'no provider' };
    }
    const connected = usable.filter((id) => this.peer(id).status === 'ready');
    if (connected.length === 0 && now - known.at >= this.providerTtlMs) return { kind: 'rewant' };
    const ready = connected.filter((id) => {
      const p = this.peer(id);
      return p.inFlight < this.maxPerPeer && p.busyUntil <= now;
    });
    if (ready.length > 0) return { kind: 'peer', peer: this.rank(ready)[0] };
    // Queued behind our own requests to a healthy provider: not a wait.
    if (connected.some((id) => this.peer(id).busyUntil <= now)) {
      st.since = now;
      return { kind: 'wait', until: now + this.maxWaitMs };
    }
    if (now - st.since >= this.maxWaitMs) return { kind: 'origin', reason: 'no provider ready in time' };
    // Links that have been coming up for longer than a piece may wait are
    // not worth waiting for (a dead peer still listed by the planner).
    const hopeful = usable.some((id) => {
      const p = this.peer(id);
      return p.status === 'ready' || p.status === 'idle' || now - p.since < this.maxWaitMs;
    });
    if (!hopeful) return { kind: 'origin', reason: 'no provider reachable' };
    let until = st.since + this.maxWaitMs;
    for (const id of connected) until = Math.min(until, Math.max(now, this.peer(id).busyUntil));
    return { kind: 'wait', until };
  }

  /**
   * A `want` is being sent again for `piece`: forget the old answer.
   * @param {string} piece @param {number} now
   */
  rewanted(piece, now) {
    const st = this.need(piece, now);
    const known = this.providers.get(piece);
    // Re-asking because the answer aged out is not the one retry.
    if (!known || now - known.at < this.providerTtlMs) st.rewants++;
    st.asked = false;
    st.since = now;
    st.tried.clear();
    this.providers.delete(piece);
  }

  /**
   * Providers of the pieces we need that are neither connected nor being
   * connected, in the order to connect them (trusted permanent first).
   * @param {Iterable<string>} pieces @param {number} now
   */
  toConnect(pieces, now) {
    const seen = new Set();
    for (const piece of pieces) {
      const known = this.providers.get(piece);
      const st = this.pieces.get(piece);
      if (!known) continue;
      for (const { peer } of known.list) {
        const p = this.current(peer, now);
        if (p.status === 'idle' && !p.banned && !st?.tried.has(peer)) seen.add(peer);
      }
    }
    return this.rank([...seen]);
  }

  /**
   * A request for `piece` went to `peer`.
   * @param {string} piece @param {string} peer
   */
  started(piece, peer) {
    this.peer(peer).inFlight++;
    this.inFlight++;
  }

  /**
   * The request for `piece` to `peer` ended (either way): the counters.
   * @param {string} peer
   */
  ended(peer) {
    const p = this.peer(peer);
    p.inFlight = Math.max(0, p.inFlight - 1);
    this.inFlight = Math.max(0, this.inFlight - 1);
  }

  /**
   * `peer` delivered `piece`, verified.
   * @param {string} piece @param {string} peer
   */
  succeeded(piece, peer) {
    this.ended(peer);
    this.peer(peer).failures = 0;
    this.done(piece);
  }

  /**
   * `peer` did not deliver `piece`.
   * @param {string} piece @param {string} peer @param {FailReason} reason
   * @param {number} now @param {number} [retryAfterMs] from `busy`
   */
  failed(piece, peer, reason, now, retryAfterMs = 0) {
    this.ended(peer);
    const st = this.need(piece, now);
    const p = this.peer(peer);
    st.attempts++;
    st.since = now;
    switch (reason) {
      case 'busy':
        p.busyUntil = now + Math.min(2000, Math.max(100, retryAfterMs || 250));
        break;
      case 'bad':
        st.tried.add(peer);
        this.ban(peer);
        break;
      case 'timeout':
      case 'closed':
        st.tried.add(peer);
        p.failures++;
        if (p.failures >= MAX_PEER_FAILURES) this.giveUp(p, now);
        break;
      default:
        st.tried.add(peer);
    }
  }

  /**
   * `piece` is no longer needed (done, from wherever): forget its state.
   * @param {string} piece
   */
  done(piece) {
    this.pieces.delete(piece);
  }
}

// Hedged fetches: when a piece asked of a peer is late, the fetcher also
// asks the origin for it and takes whichever verified copy comes first.
// `HedgePolicy` decides when, and how many at once:
//
// - A peer request is late at `start + clamp(factor × expected, minMs,
//   maxMs)`. `expected` is the time the peer needs for the bytes we have
//   queued at it, up to and including this piece (`ahead`, counted when the
//   request starts), at the rate it has shown: an average of `ahead / time`
//   over its verified answers; before its first answer, `priorBytesPerMs`.
//   The deadline is recomputed from the current rate, so a peer's first
//   answers correct the deadlines of the requests already out to it.
// - `minMs` (1.5 s) leaves a peer that is merely slow on a busy machine
//   (measured: pieces at 0.8–1.5 s under load) to finish, so hedges do not
//   turn into hub traffic (at 800 ms, 40 hedges in one live run cost the
//   peer offload 0.66 instead of 0.75), while a piece whose tail was lost
//   on the link (SCTP resends it after 1 s, then 3 s) is hedged in time
//   for a player with one 2 s segment buffered. `maxMs` keeps a peer that
//   has been slow from pushing deadlines past what a player's buffer holds.
// - At most `maxPerResource` pieces of one resource (one stream of a
//   player, one HLS segment) and `maxTotal` in all are hedged at once, so
//   a slow swarm does not become a flood of origin requests; a late piece
//   waits for a hedge to end.
//
// (It lives here, not in a file of its own, because the hub builds every
// web/ file into its binary from a list in crates/tuber-hub/src/routes.rs.)

/** @typedef {{rate: number, samples: number, bytes: number}} PeerRate */

export const HEDGE_MIN_MS = 1500;
export const HEDGE_MAX_MS = 3000;
export const HEDGE_FACTOR = 3;
/** Before a peer's first answer: 4 MiB/s (in bytes per ms). */
export const HEDGE_PRIOR_BYTES_PER_MS = (4 << 20) / 1000;
export const HEDGE_MAX_PER_RESOURCE = 2;
export const HEDGE_MAX_TOTAL = 4;
/** Weight of a new sample in a peer's rate. */
const ALPHA = 0.25;

export class HedgePolicy {
  /**
   * @param {{minMs?: number, maxMs?: number, factor?: number, priorBytesPerMs?: number,
   *   maxPerResource?: number, maxTotal?: number, maxPeers?: number}} [opts]
   */
  constructor(opts = {}) {
    this.minMs = opts.minMs ?? HEDGE_MIN_MS;
    this.maxMs = opts.maxMs ?? HEDGE_MAX_MS;
    this.factor = opts.factor ?? HEDGE_FACTOR;
    this.prior = opts.priorBytesPerMs ?? HEDGE_PRIOR_BYTES_PER_MS;
    this.maxPerResource = opts.maxPerResource ?? HEDGE_MAX_PER_RESOURCE;
    this.maxTotal = opts.maxTotal ?? HEDGE_MAX_TOTAL;
    this.maxPeers = opts.maxPeers ?? 1024;
    /** @type {Map<string, PeerRate>} */
    this.peers = new Map();
    /** resource key → hedges running @type {Map<string, number>} */
    this.running = new Map();
    this.total = 0;
  }

  /** @param {string} id @returns {PeerRate} */
  peer(id) {
    let p = this.peers.get(id);
    if (!p) {
      if (this.peers.size >= this.maxPeers) {
        for (const [k, q] of this.peers) if (q.bytes === 0) this.peers.delete(k);
      }
      p = { rate: 0, samples: 0, bytes: 0 };
      this.peers.set(id, p);
    }
    return p;
  }

  /**
   * A request of `len` bytes goes to `peer`: the bytes queued at it, this
   * request's included (keep it for `deadline` and `answered`).
   * @param {string} peer @param {number} len
   */
  sent(peer, len) {
    const p = this.peer(peer);
    p.bytes += len;
    return p.bytes;
  }

  /**
   * The request of `len` bytes to `peer` ended, whichever way.
   * @param {string} peer @param {number} len
   */
  ended(peer, len) {
    const p = this.peer(peer);
    p.bytes = Math.max(0, p.bytes - len);
  }

  /**
   * `peer` delivered a verified piece `ms` after the request, with `ahead`
   * bytes queued at it (from `sent`): a sample of its rate.
   * @param {string} peer @param {number} ahead @param {number} ms
   */
  answered(peer, ahead, ms) {
    const p = this.peer(peer);
    const sample = ahead / Math.max(1, ms);
    p.rate = p.samples === 0 ? sample : p.rate + ALPHA * (sample - p.rate);
    p.samples++;
  }

  /**
   * The rate `peer` has shown (bytes per ms), or the prior.
   * @param {string} peer
   */
  rate(peer) {
    const p = this.peers.get(peer);
    return p && p.samples > 0 ? p.rate : this.prior;
  }

  /**
   * When a request to `peer` sent at `start` with `ahead` bytes queued is
   * late (ms, the caller's clock).
   * @param {string} peer @param {number} ahead @param {number} start
   */
  deadline(peer, ahead, start) {
    const expected = ahead / this.rate(peer);
    return start + Math.min(this.maxMs, Math.max(this.minMs, this.factor * expected));
  }

  /**
   * Whether another piece of resource `key` may be hedged now.
   * @param {string} key
   */
  canHedge(key) {
    return this.total < this.maxTotal && (this.running.get(key) ?? 0) < this.maxPerResource;
  }

  /** A hedge of a piece of `key` starts. @param {string} key */
  hedgeStarted(key) {
    this.running.set(key, (this.running.get(key) ?? 0) + 1);
    this.total++;
  }

  /** A hedge of a piece of `key` ended. @param {string} key */
  hedgeEnded(key) {
    const n = (this.running.get(key) ?? 0) - 1;
    if (n > 0) this.running.set(key, n);
    else this.running.delete(key);
    this.total = Math.max(0, this.total - 1);
  }
}
