// One WebRTC connection to one remote peer: an RTCPeerConnection with one
// reliable, ordered DataChannel labelled "tuber" (docs/protocol.md §6.1),
// negotiated over signaling (offer/answer/trickled candidates, §5.5), and
// the peer wire on it (wire-session.js). Outgoing data is queued with
// backpressure on the channel's buffered amount.

import { WireSession, RequestFailed } from './wire-session.js';
import { DEFAULT_MAX_FRAME, LARGE_MAX_FRAME, MAX_CANDIDATE_LEN } from './proto/limits.js';
import { utf8Len } from './proto/json.js';

export const CHANNEL_LABEL = 'tuber';
/** Time from start to an open channel with both hellos. */
export const CONNECT_TIMEOUT_MS = 10_000;
/** A request of ours without data for this long is cancelled. */
export const REQUEST_TIMEOUT_MS = 5_000;
/** Stop queueing into the channel above this many buffered bytes. */
const HIGH_WATER = 4 * 1024 * 1024;
const LOW_WATER = 1024 * 1024;
/** Remote candidates kept until the remote description is set. */
const MAX_PENDING_CANDIDATES = 64;
/** Data frames waiting for the channel to drain, at most. */
const MAX_SEND_QUEUE = 4096;

/** @typedef {import('./proto/signal.js').IceCandidate} IceCandidate */
/** @typedef {import('./wire-session.js').IncomingRequest} IncomingRequest */
/**
 * Signals this link sends to its remote (the owner wraps them in
 * `offer`/`answer`/`candidate` messages with `to` and `conn`).
 * @typedef {{kind: 'offer' | 'answer', sdp: string} | {kind: 'candidate', candidate: IceCandidate | null}} LinkSignal
 */

/**
 * @typedef {{local: string, remote: string, protocol: string, relayProtocol: string | null, relayed: boolean}} IcePath
 */

export class PeerLink {
  /**
   * @param {{
   *   remote: string,
   *   conn: number,
   *   offering: boolean,
   *   iceServers: RTCIceServer[],
   *   signal: (s: LinkSignal) => void,
   *   onReady: (link: PeerLink) => void,
   *   onClose: (link: PeerLink, why: string) => void,
   *   onRequest: (link: PeerLink, req: IncomingRequest) => void,
   *   onSent?: (link: PeerLink, bytes: number) => void,
   *   maxIncoming?: number,
   *   log?: (...args: unknown[]) => void,
   * }} opts
   */
  constructor(opts) {
    this.remote = opts.remote;
    this.conn = opts.conn;
    this.offering = opts.offering;
    this.opts = opts;
    this.log = opts.log ?? (() => {});
    /** @type {RTCPeerConnection | null} */
    this.pc = null;
    /** @type {RTCDataChannel | null} */
    this.dc = null;
    /** @type {WireSession | null} */
    this.session = null;
    this.remoteDescriptionSet = false;
    /** @type {IceCandidate[]} */
    this.pendingCandidates = [];
    /** @type {Array<{id: number, frame: Uint8Array, last: boolean}>} */
    this.sendQueue = [];
    this.closed = false;
    this.readyAt = 0;
    this.startedAt = Date.now();
    this.lastUsed = Date.now();
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.connectTimer = undefined;
    /** @type {ReturnType<typeof setInterval> | undefined} */
    this.reaper = undefined;
  }

  /** The channel is open and both hellos are exchanged. */
  /**
   * The ICE path in use (the selected candidate pair), for tests and
   * diagnostics: `relayed` when either end is a TURN relay candidate.
   * Null before a pair is selected.
   * @returns {Promise<IcePath | null>}
   */
  async path() {
    if (!this.pc) return null;
    /** @type {Map<string, any>} */
    const byId = new Map();
    (await this.pc.getStats()).forEach((r) => byId.set(r.id, r));
    let pair = null;
    for (const r of byId.values()) {
      if (r.type === 'transport' && r.selectedCandidatePairId) pair = byId.get(r.selectedCandidatePairId) ?? pair;
    }
    if (!pair) return null;
    const local = byId.get(pair.localCandidateId) ?? {};
    const remote = byId.get(pair.remoteCandidateId) ?? {};
    return {
      local: local.candidateType ?? 'unknown',
      remote: remote.candidateType ?? 'unknown',
      protocol: local.protocol ?? 'unknown',
      relayProtocol: local.relayProtocol ?? null,
      relayed: local.candidateType === 'relay' || remote.candidateType === 'relay',
    };
  }

  get ready() {
    return !this.closed && this.session !== null && this.session.ready;
  }

  /**
   * Starts negotiating: the offering side creates the channel and sends an
   * offer; the answering side applies `offerSdp` and answers.
   * @param {string} [offerSdp]
   */
  async start(offerSdp) {
    this.connectTimer = setTimeout(() => {
      if (!this.ready) this.close('connect timeout');
    }, CONNECT_TIMEOUT_MS);
    try {
      const pc = new RTCPeerConnection({ iceServers: this.opts.iceServers });
      this.pc = pc;
      pc.onicecandidate = (e) => this.localCandidate(e.candidate);
      pc.onconnectionstatechange = () => {
        if (pc.connectionState === 'failed' || pc.connectionState === 'closed') this.close(`connection ${pc.connectionState}`);
      };
      if (this.offering) {
        this.attach(pc.createDataChannel(CHANNEL_LABEL, { ordered: true }));
        const offer = await pc.createOffer();
        await pc.setLocalDescription(offer);
        if (this.closed) return;
        this.opts.signal({ kind: 'offer', sdp: pc.localDescription?.sdp ?? offer.sdp ?? '' });
      } else {
        pc.ondatachannel = (e) => {
          if (e.channel.label === CHANNEL_LABEL && !this.dc) this.attach(e.channel);
          else e.channel.close();
        };
        await pc.setRemoteDescription({ type: 'offer', sdp: offerSdp ?? '' });
        this.remoteDescriptionSet = true;
        await this.flushCandidates();
        const answer = await pc.createAnswer();
        await pc.setLocalDescription(answer);
        if (this.closed) return;
        this.opts.signal({ kind: 'answer', sdp: pc.localDescription?.sdp ?? answer.sdp ?? '' });
      }
    } catch (e) {
      this.close(`negotiation failed: ${errorText(e)}`);
    }
  }

  /** @param {RTCIceCandidate | null} c */
  localCandidate(c) {
    if (this.closed) return;
    if (!c || !c.candidate) {
      this.opts.signal({ kind: 'candidate', candidate: null });
      return;
    }
    if (utf8Len(c.candidate) > MAX_CANDIDATE_LEN) return;
    /** @type {IceCandidate} */
    const out = { candidate: c.candidate };
    if (c.sdpMid !== null && c.sdpMid !== undefined && utf8Len(c.sdpMid) <= MAX_CANDIDATE_LEN) out.sdp_mid = c.sdpMid;
    if (c.sdpMLineIndex !== null && c.sdpMLineIndex !== undefined) out.sdp_mline_index = c.sdpMLineIndex;
    this.opts.signal({ kind: 'candidate', candidate: out });
  }

  /**
   * The remote's answer (offering side).
   * @param {string} sdp
   */
  async remoteAnswer(sdp) {
    if (!this.pc || this.closed || !this.offering || this.remoteDescriptionSet) return;
    try {
      await this.pc.setRemoteDescription({ type: 'answer', sdp });
      this.remoteDescriptionSet = true;
      await this.flushCandidates();
    } catch (e) {
      this.close(`bad answer: ${errorText(e)}`);
    }
  }

  /**
   * A candidate from the remote (`null`: no more).
   * @param {IceCandidate | null} c
   */
  async remoteCandidate(c) {
    if (!c || this.closed) return;
    if (!this.remoteDescriptionSet) {
      if (this.pendingCandidates.length < MAX_PENDING_CANDIDATES) this.pendingCandidates.push(c);
      return;
    }
    await this.addCandidate(c);
  }

  async flushCandidates() {
    const queued = this.pendingCandidates;
    this.pendingCandidates = [];
    for (const c of queued) await this.addCandidate(c);
  }

  /** @param {IceCandidate} c */
  async addCandidate(c) {
    if (!this.pc) return;
    let line = c.candidate;
    if (line.startsWith('a=')) line = line.slice(2);
    if (line !== '' && !line.startsWith('candidate:')) line = `candidate:${line}`;
    // The Rust engine sends no mid (its library writes an empty one) and
    // m-line index 0; with one m-line either identifies it.
    const sdpMid = c.sdp_mid ?? null;
    const sdpMLineIndex = c.sdp_mline_index ?? (sdpMid === null ? 0 : null);
    try {
      await this.pc.addIceCandidate({ candidate: line, sdpMid, sdpMLineIndex });
    } catch (e) {
      this.log('remote candidate refused', errorText(e));
    }
  }

  /** @param {RTCDataChannel} dc */
  attach(dc) {
    this.dc = dc;
    dc.binaryType = 'arraybuffer';
    dc.bufferedAmountLowThreshold = LOW_WATER;
    dc.onopen = () => this.channelOpen();
    dc.onclose = () => this.close('channel closed');
    dc.onerror = () => this.close('channel error');
    dc.onbufferedamountlow = () => this.pump();
    dc.onmessage = (e) => {
      this.lastUsed = Date.now();
      try {
        this.session?.receive(e.data, Date.now());
      } catch (err) {
        this.close(`receive failed: ${errorText(err)}`);
      }
    };
  }

  channelOpen() {
    if (this.closed || !this.dc) return;
    const dc = this.dc;
    // §6.4: min(RTCSctpTransport.maxMessageSize, 256 KiB), never below 64 KiB.
    const sctpMax = this.pc?.sctp?.maxMessageSize;
    const max = typeof sctpMax === 'number' && sctpMax > 0 && Number.isFinite(sctpMax) ? sctpMax : LARGE_MAX_FRAME;
    this.session = new WireSession({
      maxFrame: Math.max(DEFAULT_MAX_FRAME, Math.min(max, LARGE_MAX_FRAME)),
      maxIncoming: this.opts.maxIncoming ?? 16,
      send: (bytes) => {
        if (dc.readyState === 'open') dc.send(/** @type {Uint8Array<ArrayBuffer>} */ (bytes));
      },
      close: (why) => this.close(why),
      onRequest: (req) => this.opts.onRequest(this, req),
      onCancel: (id) => {
        this.sendQueue = this.sendQueue.filter((q) => q.id !== id);
      },
      onReady: () => {
        this.readyAt = Date.now();
        clearTimeout(this.connectTimer);
        this.opts.onReady(this);
      },
      onRemoteError: (code, reason) => this.log('remote wire error', code, reason),
    });
    this.reaper = setInterval(() => this.session?.reapTimeouts(Date.now(), REQUEST_TIMEOUT_MS), 1000);
    this.session.open();
  }

  /**
   * Asks for `length` bytes of `piece` (raw hash) from offset 0; `signal`
   * cancels the request (it then fails with `cancelled`).
   * @param {Uint8Array} piece @param {number} length @param {AbortSignal} [signal]
   * @returns {Promise<Uint8Array>}
   */
  request(piece, length, signal) {
    const s = this.session;
    if (!this.ready || !s) return Promise.reject(new RequestFailed('closed'));
    if (signal?.aborted) return Promise.reject(new RequestFailed('cancelled'));
    this.lastUsed = Date.now();
    const { id, done } = s.request(piece, 0, length, Date.now());
    if (signal) {
      const stop = () => s.cancel(id);
      signal.addEventListener('abort', stop, { once: true });
      done.then(() => signal.removeEventListener('abort', stop), () => signal.removeEventListener('abort', stop));
    }
    return done;
  }

  /**
   * Answers the remote's request `id` with `bytes` (its range, from
   * `offset` within the piece), queued behind the channel's backpressure.
   * @param {number} id @param {Uint8Array} bytes @param {number} offset
   */
  serve(id, bytes, offset) {
    const s = this.session;
    if (!s || this.closed) return;
    const frames = s.dataFrames(id, bytes, offset);
    if (this.sendQueue.length + frames.length > MAX_SEND_QUEUE) {
      s.respondBusy(id, 500);
      return;
    }
    frames.forEach((frame, k) => this.sendQueue.push({ id, frame, last: k === frames.length - 1 }));
    this.lastUsed = Date.now();
    this.pump();
  }

  /** Sends queued data while the channel has room. */
  pump() {
    const dc = this.dc;
    const s = this.session;
    if (!dc || !s || this.closed || dc.readyState !== 'open') return;
    while (this.sendQueue.length > 0 && dc.bufferedAmount < HIGH_WATER) {
      const q = /** @type {{id: number, frame: Uint8Array, last: boolean}} */ (this.sendQueue.shift());
      if (!s.isIncomingOpen(q.id)) continue; // cancelled
      try {
        dc.send(/** @type {Uint8Array<ArrayBuffer>} */ (q.frame));
      } catch (e) {
        this.close(`send failed: ${errorText(e)}`);
        return;
      }
      this.opts.onSent?.(this, q.frame.length - 9);
      if (q.last) s.finishIncoming(q.id);
    }
  }

  /** @param {string} why */
  close(why) {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.connectTimer);
    clearInterval(this.reaper);
    this.sendQueue = [];
    this.session?.shutdown(why);
    try {
      this.dc?.close();
    } catch {
      // already closed
    }
    try {
      this.pc?.close();
    } catch {
      // already closed
    }
    this.log('link closed', this.remote.slice(0, 12), why);
    this.opts.onClose(this, why);
  }
}

/** @param {unknown} e */
export function errorText(e) {
  return e instanceof Error ? e.message : String(e);
}
