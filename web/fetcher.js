// Getting verified pieces: from memory, from peers (scheduler.js decides
// which), or from the origin with an HTTP Range request of the resource's
// URL; and reading a byte range of a resource as a stream of chunks.
//
// A peer request that is late is hedged (`HedgePolicy` in scheduler.js
// decides when): the piece is asked of the origin too, the first verified
// copy is used and the other request is cancelled (a copy that still
// arrives is dropped, not counted).
//
// Every piece is checked with SHA-256 (crypto.subtle) before it is used,
// kept or served, whatever its source. A piece that fails from a peer is
// reported with the sender, who is dropped; one that fails from the origin
// means the resource changed under its manifest: the read fails, and the
// Service Worker goes to the network for the rest.

import { Scheduler, HedgePolicy } from './scheduler.js';

/** How soon a late piece that waits behind earlier ones is looked at again. */
const HEDGE_RECHECK_MS = 100;
import { RequestFailed } from './wire-session.js';
import { sha256Hex, fromHex } from './proto/json.js';
import { pieceRange } from './proto/manifest.js';
import { BYPASS_HEADER } from './rules.js';
import { errorText } from './peer.js';

/** @typedef {import('./proto/manifest.js').Manifest} Manifest */
/** @typedef {import('./swarm.js').Swarm} Swarm */
/** @typedef {import('./lru.js').ByteLru<Uint8Array>} PieceCache */

/**
 * A resource being read. `hedge: false`: late pieces are not hedged (a
 * download, which no player waits on; see `maybeHedge`).
 * @typedef {{manifest: Manifest, url: string, hedge?: boolean}} Resource
 */

/**
 * @typedef {object} Job
 * @property {string} hash
 * @property {Resource} res
 * @property {number} index
 * @property {number} len
 * @property {number} refs streams waiting for it
 * @property {string | null} peer the peer asked now
 * @property {number} peerAt when it was asked (ms)
 * @property {number} ahead bytes queued at that peer then, this piece's included
 * @property {AbortController | null} peerStop cancels the peer request
 * @property {boolean} origin an origin request has it
 * @property {AbortController | null} hedge the origin request of a hedge, while it runs
 * @property {boolean} hedged the peer request now out was hedged already
 * @property {boolean} done a verified copy was handed out
 * @property {(b: Uint8Array) => void} resolve
 * @property {(e: Error) => void} reject
 * @property {Promise<Uint8Array>} promise
 */

/** Origin requests at once, at most. */
const MAX_ORIGIN = 4;
/** Bytes one origin Range request covers, at most. */
const ORIGIN_RUN_BYTES = 4 * 1024 * 1024;
/** An origin body without progress for this long is abandoned. */
const ORIGIN_STALL_MS = 20_000;
const ORIGIN_RETRIES = 2;
/** Pieces asked about in one `want` when a read starts or moves on. */
const WANT_AHEAD = 256;
/** Links to set up for one round of scheduling, at most. */
const CONNECT_PER_ROUND = 4;

/** Counters shown by `__tuber.stats()`. */
export class Stats {
  constructor() {
    this.bytesFromPeers = 0;
    this.bytesFromOrigin = 0;
    this.piecesVerified = 0;
    this.piecesCorrupt = 0;
    /** Peer requests that were late and also asked of the origin. */
    this.piecesHedged = 0;
    /** Hedged pieces whose origin copy came first. */
    this.hedgeWonByOrigin = 0;
  }
}

export class PieceFetcher {
  /**
   * @param {{
   *   swarm: Swarm | null,
   *   cache: PieceCache,
   *   stats: Stats,
   *   pieceSize: number,
   *   log?: (...args: unknown[]) => void,
   *   fetchImpl?: typeof fetch,
   *   hedgePolicy?: HedgePolicy,
   * }} opts
   */
  constructor(opts) {
    this.swarm = opts.swarm;
    this.cache = opts.cache;
    this.stats = opts.stats;
    this.log = opts.log ?? (() => {});
    this.fetchImpl = opts.fetchImpl ?? ((input, init) => fetch(input, init));
    // Bytes in flight bound the counts: ~8 MiB per peer, ~32 MiB in all.
    const ps = opts.pieceSize;
    this.scheduler = new Scheduler({
      maxPerPeer: Math.min(8, Math.max(2, Math.floor((8 << 20) / ps))),
      maxInFlight: Math.min(24, Math.max(4, Math.floor((32 << 20) / ps))),
    });
    this.hedgePolicy = opts.hedgePolicy ?? new HedgePolicy();
    /** hash → job, in the order they were asked for. @type {Map<string, Job>} */
    this.jobs = new Map();
    /** Hashes whose `want` is out. @type {Set<string>} */
    this.wanting = new Set();
    this.originActive = 0;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.wakeTimer = undefined;
    this.wakeAt = Infinity;
    this.pumping = false;
    this.pumpAgain = false;
  }

  /**
   * A link came up or went down: scheduling may change. A link that failed
   * to come up, or broke, is given up for a while (the scheduler's
   * `peerRetryMs`).
   * @param {string} peer @param {boolean} ready @param {string} [why] why it closed
   */
  linkChanged(peer, ready, why = '') {
    if (ready) {
      this.scheduler.setPeerStatus(peer, 'ready', Date.now());
    } else if (/idle|replaced|stopping/.test(why) && this.scheduler.peer(peer).status !== 'failed') {
      this.scheduler.setPeerStatus(peer, 'idle', Date.now());
    } else {
      // A no-op for a peer given up already: its rest is not restarted.
      this.scheduler.setPeerStatus(peer, 'failed', Date.now());
    }
    this.pump();
  }

  /**
   * The verified bytes of piece `index` of `res`.
   * @param {Resource} res @param {number} index
   * @returns {Promise<Uint8Array>}
   */
  get(res, index) {
    const hash = res.manifest.pieces[index];
    const cached = this.cache.get(hash);
    if (cached) return Promise.resolve(cached);
    let job = this.jobs.get(hash);
    if (job) {
      job.refs++;
      return job.promise;
    }
    const range = /** @type {{start: number, len: number}} */ (pieceRange(res.manifest, index));
    /** @type {Job} */
    const j = /** @type {any} */ ({
      hash, res, index, len: range.len, refs: 1, peer: null, peerAt: 0, ahead: 0, peerStop: null,
      origin: false, hedge: null, hedged: false, done: false,
    });
    j.promise = new Promise((resolve, reject) => {
      j.resolve = resolve;
      j.reject = reject;
    });
    // Nobody may be listening when a cancelled read's job fails.
    j.promise.catch(() => {});
    this.jobs.set(hash, j);
    this.scheduler.need(hash, Date.now());
    if (!this.swarm) this.scheduler.noAnswer(hash);
    this.pump();
    return j.promise;
  }

  /**
   * A reader no longer waits for piece `index` of `res`.
   * @param {Resource} res @param {number} index
   */
  release(res, index) {
    const hash = res.manifest.pieces[index];
    const job = this.jobs.get(hash);
    if (!job) return;
    job.refs--;
    if (job.refs <= 0 && !job.peer && !job.origin) {
      this.jobs.delete(hash);
      this.scheduler.done(hash);
      job.reject(new Error('cancelled'));
    }
  }

  /**
   * Asks the planner about the pieces of `res` from `from` on (those not
   * held, not asked yet).
   * @param {Resource} res @param {number} from
   */
  wantAhead(res, from) {
    const swarm = this.swarm;
    if (!swarm) return;
    const hashes = [];
    const pieces = res.manifest.pieces;
    for (let i = from; i < pieces.length && hashes.length < WANT_AHEAD; i++) {
      const h = pieces[i];
      if (this.wanting.has(h) || this.cache.has(h) || this.scheduler.providers.has(h)) continue;
      hashes.push(h);
    }
    this.sendWant(hashes);
  }

  /** @param {string[]} hashes */
  sendWant(hashes) {
    const swarm = this.swarm;
    if (!swarm || hashes.length === 0) return;
    for (const h of hashes) this.wanting.add(h);
    swarm.want(hashes, (providers) => {
      const now = Date.now();
      for (const h of hashes) this.wanting.delete(h);
      if (providers === null) {
        for (const h of hashes) this.scheduler.noAnswer(h);
      } else {
        hashes.forEach((h, i) => {
          const list = providers
            .filter((p) => p.pieces.includes(i) && !this.scheduler.isBanned(p.peer) && p.peer !== swarm.peerId)
            .map((p) => ({ peer: p.peer, trusted: p.trusted, role: p.role }));
          this.scheduler.setProviders(h, list, now);
        });
      }
      this.pump();
    });
  }

  /** Runs scheduling until nothing more can start now. */
  pump() {
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.pumpAgain = false;
        this.round();
      } while (this.pumpAgain);
    } catch (e) {
      this.log('scheduling failed', e);
    } finally {
      this.pumping = false;
    }
  }

  round() {
    const now = Date.now();
    let wake = Infinity;
    /** @type {string[]} */
    const rewant = [];
    /** @type {string[]} */
    const unasked = [];
    for (const job of this.jobs.values()) {
      if (job.peer && !job.origin) wake = Math.min(wake, this.maybeHedge(job, now));
      if (job.peer || job.origin) continue;
      if (this.cache.has(job.hash)) {
        this.complete(job, /** @type {Uint8Array} */ (this.cache.get(job.hash)));
        continue;
      }
      if (this.swarm && !this.scheduler.providers.has(job.hash) && !this.wanting.has(job.hash)
        && !(this.scheduler.pieces.get(job.hash)?.asked)) {
        unasked.push(job.hash);
      }
      const d = this.scheduler.choose(job.hash, now);
      if (d.kind === 'peer') {
        if (!this.scheduler.canStart()) wake = Math.min(wake, now + 1000);
        else if (this.startPeer(job, d.peer)) wake = Math.min(wake, this.maybeHedge(job, now));
      } else if (d.kind === 'wait') {
        wake = Math.min(wake, d.until);
      } else if (d.kind === 'rewant') {
        this.scheduler.rewanted(job.hash, now);
        rewant.push(job.hash);
      } else if (this.originActive < MAX_ORIGIN) {
        this.startOrigin(job, d.reason);
      } else {
        wake = Math.min(wake, now + 250);
      }
    }
    this.sendWant([...new Set([...unasked, ...rewant])].filter((h) => !this.wanting.has(h)).slice(0, 512));
    this.connectProviders();
    this.armWake(wake);
  }

  /** Sets up links to providers of what we wait for (trusted first). */
  connectProviders() {
    const swarm = this.swarm;
    if (!swarm) return;
    const waiting = [];
    for (const job of this.jobs.values()) if (!job.peer && !job.origin) waiting.push(job.hash);
    let n = 0;
    for (const peer of this.scheduler.toConnect(waiting, Date.now())) {
      if (n >= CONNECT_PER_ROUND || !swarm.canConnect()) break;
      if (swarm.connect(peer)) {
        this.scheduler.setPeerStatus(peer, swarm.link(peer) ? 'ready' : 'connecting', Date.now());
        n++;
      }
    }
  }

  /** @param {number} at */
  armWake(at) {
    if (!Number.isFinite(at)) return;
    if (this.wakeTimer !== undefined && this.wakeAt <= at) return;
    clearTimeout(this.wakeTimer);
    this.wakeAt = at;
    this.wakeTimer = setTimeout(() => {
      this.wakeTimer = undefined;
      this.wakeAt = Infinity;
      this.pump();
    }, Math.max(10, at - Date.now()));
  }

  /**
   * Asks `peer` for `job`'s piece; false when its link is not up.
   * @param {Job} job @param {string} peer
   */
  startPeer(job, peer) {
    const link = this.swarm?.link(peer);
    if (!link) {
      this.scheduler.setPeerStatus(peer, this.swarm?.links.has(peer) ? 'connecting' : 'idle', Date.now());
      return false;
    }
    const stop = new AbortController();
    job.peer = peer;
    job.peerAt = Date.now();
    job.ahead = this.hedgePolicy.sent(peer, job.len);
    job.peerStop = stop;
    job.hedged = false;
    this.scheduler.started(job.hash, peer);
    const ahead = job.ahead;
    const ended = () => {
      this.hedgePolicy.ended(peer, job.len);
      if (job.peerStop === stop) {
        job.peer = null;
        job.peerStop = null;
      }
    };
    link.request(fromHex(job.hash), job.len, stop.signal).then(
      async (bytes) => {
        const ok = (await sha256Hex(bytes)) === job.hash;
        ended();
        if (ok && job.done) {
          // The origin's copy came first: this one is dropped, not counted.
          this.scheduler.ended(peer);
          this.swarm?.count(peer, 0, bytes.length);
        } else if (ok) {
          this.hedgePolicy.answered(peer, ahead, Date.now() - job.peerAt);
          this.scheduler.succeeded(job.hash, peer);
          this.stats.bytesFromPeers += bytes.length;
          this.swarm?.count(peer, 0, bytes.length);
          this.complete(job, bytes);
        } else {
          this.stats.piecesCorrupt++;
          this.log('bad piece from', peer.slice(0, 12));
          if (job.done) {
            this.scheduler.ended(peer);
            this.scheduler.ban(peer);
          } else {
            this.scheduler.failed(job.hash, peer, 'bad', Date.now());
          }
          this.swarm?.reportBad(peer, job.hash);
          this.swarm?.drop(peer, 'sent a bad piece');
          this.settleIfUnwanted(job);
        }
        this.pump();
      },
      (e) => {
        ended();
        if (job.done) {
          // Cancelled because the origin's copy came first: not the peer's fault.
          this.scheduler.ended(peer);
        } else {
          const reason = e instanceof RequestFailed ? e.reason : 'closed';
          const retry = e instanceof RequestFailed ? e.retryAfterMs : 0;
          this.scheduler.failed(job.hash, peer, reason === 'cancelled' ? 'timeout' : reason, Date.now(), retry);
          if (this.scheduler.peer(peer).status === 'failed') this.swarm?.drop(peer, 'stopped answering');
          this.settleIfUnwanted(job);
        }
        this.pump();
      },
    );
    return true;
  }

  /**
   * Hedges `job`, out to a peer, once it is late and the bounds allow, and
   * only while it is among the first pieces of its resource still out (the
   * ones a reader waits for next): read-ahead pieces have time, and hedging
   * them would turn a peer that is merely slow on a busy machine into hub
   * traffic.
   * @param {Job} job @param {number} now
   * @returns {number} when to look again (Infinity: a hedge's end will pump)
   */
  maybeHedge(job, now) {
    if (job.refs <= 0 || !job.peer || job.hedged || job.res.hedge === false) return Infinity;
    const at = this.hedgePolicy.deadline(job.peer, job.ahead, job.peerAt);
    if (now < at) return at;
    let before = 0;
    for (const other of this.jobs.values()) {
      if (other !== job && other.res === job.res && other.index < job.index && other.refs > 0) before++;
    }
    if (before >= this.hedgePolicy.maxPerResource) return now + HEDGE_RECHECK_MS;
    const key = job.res.url;
    if (!this.hedgePolicy.canHedge(key)) return Infinity;
    const ctrl = new AbortController();
    job.origin = true;
    job.hedge = ctrl;
    job.hedged = true;
    this.hedgePolicy.hedgeStarted(key);
    this.stats.piecesHedged++;
    this.log('hedge', job.res.manifest.path, `piece ${job.index}: ${job.peer.slice(0, 12)} late by ${now - at} ms`);
    this.fetchRun(job.res, [job], ctrl.signal)
      .catch((e) => {
        // A failed hedge fails the piece only if no peer request is left.
        this.log('hedge failed', errorText(e));
        if (!job.done && !job.peer && !ctrl.signal.aborted) this.fail([job], e);
      })
      .finally(() => {
        this.hedgePolicy.hedgeEnded(key);
        job.origin = false;
        job.hedge = null;
        this.settleIfUnwanted(job);
        this.pump();
      });
    return Infinity;
  }

  /** A job nobody waits for any more is dropped once nothing runs for it. @param {Job} job */
  settleIfUnwanted(job) {
    if (job.refs <= 0 && !job.peer && !job.origin && this.jobs.get(job.hash) === job) {
      this.jobs.delete(job.hash);
      this.scheduler.done(job.hash);
      job.reject(new Error('cancelled'));
    }
  }

  /**
   * Fetches `job`'s piece, and the following pieces of the same resource
   * that also go to the origin, with one Range request.
   * @param {Job} job @param {string} reason
   */
  startOrigin(job, reason) {
    const m = job.res.manifest;
    /** @type {Job[]} */
    const run = [job];
    let bytes = job.len;
    const now = Date.now();
    for (let i = job.index + 1; i < m.pieces.length && bytes < ORIGIN_RUN_BYTES; i++) {
      const next = this.jobs.get(m.pieces[i]);
      if (!next || next.res !== job.res || next.peer || next.origin) break;
      const d = this.scheduler.choose(next.hash, now);
      if (d.kind !== 'origin') break;
      run.push(next);
      bytes += next.len;
    }
    for (const j of run) j.origin = true;
    this.originActive++;
    this.log('origin', m.path, `pieces ${job.index}..${job.index + run.length - 1}:`, reason);
    this.fetchRun(job.res, run)
      .catch((e) => this.fail(run, e))
      .finally(() => {
        this.originActive--;
        for (const j of run) j.origin = false;
        this.pump();
      });
  }

  /** The origin could not give these pieces: their reads fail. @param {Job[]} run @param {unknown} e */
  fail(run, e) {
    for (const j of run) {
      if (this.jobs.get(j.hash) === j) {
        this.jobs.delete(j.hash);
        this.scheduler.done(j.hash);
        j.reject(e instanceof Error ? e : new Error(String(e)));
      }
    }
  }

  /**
   * One Range request for consecutive pieces; each is verified and
   * completed as soon as its bytes are in. Retries what is left.
   * @param {Resource} res @param {Job[]} run @param {AbortSignal} [signal] ends it (a hedge a peer won)
   */
  async fetchRun(res, run, signal) {
    let left = run.filter((j) => this.jobs.get(j.hash) === j);
    for (let attempt = 0; left.length > 0 && !signal?.aborted; attempt++) {
      try {
        await this.fetchRange(res, left, signal);
        return;
      } catch (e) {
        if (signal?.aborted) return;
        if (e instanceof ChangedError || attempt >= ORIGIN_RETRIES) throw e;
        this.log('origin request failed; retrying', errorText(e));
        await new Promise((r) => setTimeout(r, 300 * (attempt + 1)));
        left = left.filter((j) => this.jobs.get(j.hash) === j);
      }
    }
  }

  /**
   * @param {Resource} res @param {Job[]} run (consecutive indices) @param {AbortSignal} [signal]
   */
  async fetchRange(res, run, signal) {
    const ps = res.manifest.piece_size;
    const start = run[0].index * ps;
    const last = run[run.length - 1];
    const end = last.index * ps + last.len - 1;
    const ctrl = new AbortController();
    let stall = setTimeout(() => ctrl.abort(), ORIGIN_STALL_MS);
    const stop = () => ctrl.abort();
    signal?.addEventListener('abort', stop);
    try {
      const resp = await this.fetchImpl(res.url, {
        headers: { range: `bytes=${start}-${end}`, [BYPASS_HEADER]: '1' },
        cache: 'no-store',
        credentials: 'same-origin',
        signal: ctrl.signal,
      });
      let skip = 0;
      if (resp.status === 206) {
        const cr = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(resp.headers.get('content-range') ?? '');
        if (!cr || Number(cr[1]) !== start) throw new Error(`origin answered range ${resp.headers.get('content-range')}`);
      } else if (resp.status === 200) {
        skip = start; // the origin ignored Range: the piece is the slice at `start`
      } else {
        throw new Error(`origin answered ${resp.status}`);
      }
      if (!resp.body) throw new Error('origin answered without a body');
      const reader = resp.body.getReader();
      let k = 0;
      let buf = new Uint8Array(run[0].len);
      let filled = 0;
      while (k < run.length) {
        const { done, value } = await reader.read();
        if (done) throw new Error('origin body ended early');
        clearTimeout(stall);
        stall = setTimeout(() => ctrl.abort(), ORIGIN_STALL_MS);
        let chunk = value;
        if (skip > 0) {
          const drop = Math.min(skip, chunk.length);
          skip -= drop;
          chunk = chunk.subarray(drop);
        }
        while (chunk.length > 0 && k < run.length) {
          const take = Math.min(chunk.length, buf.length - filled);
          buf.set(chunk.subarray(0, take), filled);
          filled += take;
          chunk = chunk.subarray(take);
          if (filled === buf.length) {
            const job = run[k];
            if ((await sha256Hex(buf)) !== job.hash) {
              this.stats.piecesCorrupt++;
              throw new ChangedError(`piece ${job.index} of ${res.manifest.path} from the origin does not match its manifest`);
            }
            if (job.done) {
              // A peer's copy came first: this one is dropped, not counted.
            } else if (this.jobs.get(job.hash) === job) {
              this.stats.bytesFromOrigin += buf.length;
              if (job.hedge) this.stats.hedgeWonByOrigin++;
              job.origin = false;
              this.complete(job, buf);
            } else {
              this.stats.bytesFromOrigin += buf.length;
              this.keep(job.hash, buf);
            }
            k++;
            if (k < run.length) {
              buf = new Uint8Array(run[k].len);
              filled = 0;
            }
          }
        }
      }
      ctrl.abort(); // the rest of a 200 body is not needed
    } finally {
      clearTimeout(stall);
      signal?.removeEventListener('abort', stop);
    }
  }

  /**
   * A verified piece: kept, announced, handed to whoever waits; the other
   * request of a hedged piece is cancelled.
   * @param {Job} job @param {Uint8Array} bytes
   */
  complete(job, bytes) {
    job.done = true;
    job.hedge?.abort();
    job.peerStop?.abort();
    if (this.jobs.get(job.hash) === job) this.jobs.delete(job.hash);
    this.scheduler.done(job.hash);
    this.keep(job.hash, bytes);
    job.resolve(bytes);
  }

  /** @param {string} hash @param {Uint8Array} bytes */
  keep(hash, bytes) {
    this.stats.piecesVerified++;
    if (!this.cache.has(hash) && this.cache.set(hash, bytes)) this.swarm?.announceHave(hash);
  }
}

/** The origin's bytes no longer match the manifest. */
export class ChangedError extends Error {}

/** Chunks handed to the Service Worker, at most this size. */
export const MAX_CHUNK = 256 * 1024;

/**
 * Bytes [start, end] (inclusive) of a resource, in order, as chunks of at
 * most MAX_CHUNK; pieces ahead of the reader are fetched in parallel within
 * a window of about 16 MiB.
 */
export class ResourceStream {
  /**
   * @param {PieceFetcher} fetcher @param {Resource} res @param {number} start @param {number} end
   */
  constructor(fetcher, res, start, end) {
    this.fetcher = fetcher;
    this.res = res;
    this.pos = start;
    this.end = end;
    const ps = res.manifest.piece_size;
    this.window = Math.min(64, Math.max(2, Math.floor((16 << 20) / ps)));
    /** index → promise of its bytes @type {Map<number, Promise<Uint8Array>>} */
    this.ahead = new Map();
    this.nextToAsk = Math.floor(start / ps);
    this.lastPiece = end >= start ? Math.floor(end / ps) : -1;
    this.wantedUpTo = -1;
    this.cancelled = false;
  }

  /** The next chunk, or null at the end. @returns {Promise<Uint8Array | null>} */
  async pull() {
    if (this.cancelled) throw new Error('cancelled');
    if (this.pos > this.end) return null;
    const ps = this.res.manifest.piece_size;
    const index = Math.floor(this.pos / ps);
    this.fill(index);
    const piece = await /** @type {Promise<Uint8Array>} */ (this.ahead.get(index));
    if (this.cancelled) throw new Error('cancelled');
    const base = index * ps;
    const from = this.pos - base;
    const to = Math.min(piece.length, this.end - base + 1, from + MAX_CHUNK);
    const chunk = piece.subarray(from, to);
    this.pos += chunk.length;
    if (this.pos >= base + piece.length || this.pos > this.end) this.ahead.delete(index);
    return chunk;
  }

  /** Asks for pieces index..index+window. @param {number} index */
  fill(index) {
    const upTo = Math.min(this.lastPiece, index + this.window - 1);
    if (index + this.window > this.wantedUpTo && this.wantedUpTo < this.lastPiece) {
      this.fetcher.wantAhead(this.res, Math.max(index, this.wantedUpTo + 1));
      this.wantedUpTo = Math.min(this.res.manifest.pieces.length - 1, Math.max(index, this.wantedUpTo + 1) + 255);
    }
    for (let i = Math.max(index, this.nextToAsk); i <= upTo; i++) {
      if (!this.ahead.has(i)) this.ahead.set(i, this.fetcher.get(this.res, i));
      this.nextToAsk = i + 1;
    }
  }

  cancel() {
    if (this.cancelled) return;
    this.cancelled = true;
    for (const i of this.ahead.keys()) this.fetcher.release(this.res, i);
    this.ahead.clear();
  }
}
