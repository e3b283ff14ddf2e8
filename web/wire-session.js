// One DataChannel's peer wire (docs/protocol.md §6) as a state machine with
// no I/O of its own: the owner hands it every received message and gives it
// a `send` and a `close`. It enforces the frame limit in force (§6.4), the
// hello rules, the order of `data` frames and the error codes of §6.3/§6.5;
// it assembles the answers to our requests and tells the owner about the
// remote's.

import {
  decodeFrame, encodeFrame, negotiatedMaxFrame, WireError, WIRE_CODE, KIND,
} from './proto/wire.js';
import { DEFAULT_MAX_FRAME, LARGE_MAX_FRAME, PROTOCOL_VERSION, DATA_HEADER_LEN, MAX_PIECE_SIZE } from './proto/limits.js';

/** Why one of our requests got no bytes. */
export class RequestFailed extends Error {
  /**
   * @param {'missing' | 'busy' | 'closed' | 'timeout' | 'cancelled'} reason
   * @param {number} [retryAfterMs]
   */
  constructor(reason, retryAfterMs = 0) {
    super(`request failed: ${reason}`);
    this.name = 'RequestFailed';
    this.reason = reason;
    this.retryAfterMs = retryAfterMs;
  }
}

/**
 * @typedef {object} Outgoing
 * @property {number} offset
 * @property {number} length
 * @property {number} received
 * @property {Uint8Array} buf
 * @property {number} lastProgress
 * @property {(bytes: Uint8Array) => void} resolve
 * @property {(e: RequestFailed) => void} reject
 */

/** @typedef {{id: number, piece: Uint8Array, offset: number, length: number}} IncomingRequest */

/** How many ids of cancelled requests are remembered (their late frames are dropped). */
const CANCELLED_MEMORY = 256;

export class WireSession {
  /**
   * @param {{
   *   maxFrame: number,
   *   maxIncoming?: number,
   *   maxOutgoing?: number,
   *   send: (bytes: Uint8Array) => void,
   *   close: (why: string) => void,
   *   onRequest: (req: IncomingRequest) => void,
   *   onCancel?: (id: number) => void,
   *   onReady?: () => void,
   *   onRemoteError?: (code: number, reason: string) => void,
   * }} opts
   */
  constructor(opts) {
    this.mine = Math.min(Math.max(opts.maxFrame, DEFAULT_MAX_FRAME), LARGE_MAX_FRAME);
    this.maxIncoming = opts.maxIncoming ?? 16;
    this.maxOutgoing = opts.maxOutgoing ?? 32;
    this.sendRaw = opts.send;
    this.closeRaw = opts.close;
    this.onRequest = opts.onRequest;
    this.onCancel = opts.onCancel;
    this.onReady = opts.onReady;
    this.onRemoteError = opts.onRemoteError;
    /** The remote's `max_frame`, once its hello arrived. @type {number | null} */
    this.theirs = null;
    this.opened = false;
    /** @type {string | null} */
    this.closedWhy = null;
    /** @type {Map<number, Outgoing>} */
    this.outgoing = new Map();
    /** Recently cancelled ids of ours, oldest first. @type {Set<number>} */
    this.cancelled = new Set();
    /** The remote's open requests. @type {Set<number>} */
    this.incoming = new Set();
    this.nextId = (Math.random() * 0xffffffff) >>> 0;
  }

  /** The frame limit in force, for sending and receiving. */
  get limit() {
    return this.theirs === null ? DEFAULT_MAX_FRAME : negotiatedMaxFrame(this.mine, this.theirs);
  }

  /** Both hellos are exchanged: requests may flow. */
  get ready() {
    return this.opened && this.theirs !== null && this.closedWhy === null;
  }

  get closed() {
    return this.closedWhy !== null;
  }

  /** The channel opened: our hello goes first. */
  open() {
    if (this.opened || this.closed) return;
    this.opened = true;
    this.sendRaw(encodeFrame({ type: 'hello', version: PROTOCOL_VERSION, max_frame: this.mine }));
    if (this.ready) this.onReady?.();
  }

  /**
   * Sends an `error` frame and closes (§6.3 "close").
   * @param {number} code @param {string} reason
   */
  fail(code, reason) {
    if (this.closed) return;
    try {
      this.sendRaw(encodeFrame({ type: 'error', code, reason }));
    } catch {
      // The channel may already be gone.
    }
    this.shutdown(`sent error ${code}: ${reason}`);
  }

  /**
   * Ends the session: every open request of ours fails with `closed`.
   * @param {string} why
   */
  shutdown(why) {
    if (this.closed) return;
    this.closedWhy = why;
    const open = [...this.outgoing.values()];
    this.outgoing.clear();
    this.incoming.clear();
    for (const o of open) o.reject(new RequestFailed('closed'));
    try {
      this.closeRaw(why);
    } catch {
      // Closing is best effort.
    }
  }

  /**
   * One received DataChannel message.
   * @param {ArrayBuffer | Uint8Array | string} message
   * @param {number} now
   */
  receive(message, now) {
    if (this.closed) return;
    if (typeof message === 'string') {
      this.fail(WIRE_CODE.MALFORMED, 'text messages are not frames');
      return;
    }
    const bytes = message instanceof Uint8Array ? message : new Uint8Array(message);
    let f;
    try {
      f = decodeFrame(bytes, this.limit);
    } catch (e) {
      if (e instanceof WireError) {
        if (e.fatal) this.fail(e.code, e.message);
        else this.sendRaw(encodeFrame({ type: 'error', code: e.code, reason: e.message }));
        return;
      }
      throw e;
    }
    if (this.theirs === null) {
      if (f.type !== 'hello') {
        if (f.type === 'error') this.remoteError(f.code, f.reason);
        else this.fail(WIRE_CODE.PROTOCOL, 'first frame is not hello');
        return;
      }
      if (f.version !== PROTOCOL_VERSION) {
        this.fail(WIRE_CODE.UNSUPPORTED_VERSION, `this peer speaks version ${PROTOCOL_VERSION}, not ${f.version}`);
        return;
      }
      this.theirs = f.max_frame;
      if (this.ready) this.onReady?.();
      return;
    }
    switch (f.type) {
      case 'hello':
        this.fail(WIRE_CODE.PROTOCOL, 'second hello');
        return;
      case 'request':
        if (this.incoming.has(f.id)) {
          this.fail(WIRE_CODE.PROTOCOL, `request id ${f.id} is already open`);
          return;
        }
        if (this.incoming.size >= this.maxIncoming) {
          this.sendRaw(encodeFrame({ type: 'busy', id: f.id, retry_after_ms: 0 }));
          return;
        }
        this.incoming.add(f.id);
        this.onRequest({ id: f.id, piece: f.piece, offset: f.offset, length: f.length });
        return;
      case 'cancel':
        if (this.incoming.delete(f.id)) this.onCancel?.(f.id);
        return;
      case 'data': {
        const o = this.outgoing.get(f.id);
        if (!o) {
          if (!this.cancelled.has(f.id)) this.fail(WIRE_CODE.PROTOCOL, `data for no request (${f.id})`);
          return;
        }
        if (f.offset !== o.offset + o.received || o.received + f.bytes.length > o.length) {
          this.fail(WIRE_CODE.PROTOCOL, `data out of order for request ${f.id}`);
          return;
        }
        o.buf.set(f.bytes, o.received);
        o.received += f.bytes.length;
        o.lastProgress = now;
        if (o.received === o.length) {
          this.outgoing.delete(f.id);
          o.resolve(o.buf);
        }
        return;
      }
      case 'missing':
      case 'busy': {
        const o = this.outgoing.get(f.id);
        if (!o) {
          if (!this.cancelled.has(f.id)) this.fail(WIRE_CODE.PROTOCOL, `${f.type} for no request (${f.id})`);
          return;
        }
        this.outgoing.delete(f.id);
        o.reject(f.type === 'busy' ? new RequestFailed('busy', f.retry_after_ms) : new RequestFailed('missing'));
        return;
      }
      case 'error':
        this.remoteError(f.code, f.reason);
        return;
      default:
        return;
    }
  }

  /**
   * The remote refused something of ours. Never answered with an error;
   * any code but `unsupported` means the remote closes, so do we.
   * @param {number} code @param {string} reason
   */
  remoteError(code, reason) {
    this.onRemoteError?.(code, reason);
    if (code !== WIRE_CODE.UNSUPPORTED) this.shutdown(`remote error ${code}: ${reason}`);
  }

  /** Whether another request of ours may go out. */
  canRequest() {
    return this.ready && this.outgoing.size < this.maxOutgoing;
  }

  /**
   * Asks for `length` bytes of `piece` from `offset`. Resolves with the
   * assembled bytes (unverified: the caller checks the hash).
   * @param {Uint8Array} piece @param {number} offset @param {number} length @param {number} now
   * @returns {{id: number, done: Promise<Uint8Array>}}
   */
  request(piece, offset, length, now) {
    if (!this.ready) return { id: -1, done: Promise.reject(new RequestFailed('closed')) };
    if (!(length >= 1 && offset + length <= MAX_PIECE_SIZE)) throw new RangeError('request out of range');
    let id = this.nextId;
    while (this.outgoing.has(id) || this.cancelled.has(id)) id = (id + 1) >>> 0;
    this.nextId = (id + 1) >>> 0;
    /** @type {Outgoing} */
    const o = /** @type {any} */ ({ offset, length, received: 0, buf: new Uint8Array(length), lastProgress: now });
    const done = new Promise((resolve, reject) => {
      o.resolve = resolve;
      o.reject = reject;
    });
    this.outgoing.set(id, o);
    this.sendRaw(encodeFrame({ type: 'request', id, piece, offset, length }));
    return { id, done: /** @type {Promise<Uint8Array>} */ (done) };
  }

  /**
   * We no longer want request `id`; it fails with `reason`.
   * @param {number} id @param {'timeout' | 'cancelled'} [reason]
   */
  cancel(id, reason = 'cancelled') {
    const o = this.outgoing.get(id);
    if (!o) return;
    this.outgoing.delete(id);
    this.cancelled.add(id);
    if (this.cancelled.size > CANCELLED_MEMORY) {
      const oldest = this.cancelled.values().next();
      if (!oldest.done) this.cancelled.delete(oldest.value);
    }
    if (!this.closed) this.sendRaw(encodeFrame({ type: 'cancel', id }));
    o.reject(new RequestFailed(reason));
  }

  /**
   * Cancels our requests without progress for `timeoutMs`.
   * @param {number} now @param {number} timeoutMs
   */
  reapTimeouts(now, timeoutMs) {
    for (const [id, o] of [...this.outgoing]) {
      if (now - o.lastProgress >= timeoutMs) this.cancel(id, 'timeout');
    }
  }

  /**
   * Whether the remote's request `id` is still open (not cancelled).
   * @param {number} id
   */
  isIncomingOpen(id) {
    return this.incoming.has(id);
  }

  /**
   * The `data` frames answering the remote's request `id` with `bytes`
   * (the requested range, starting at `offset` within the piece), each
   * within the limit in force. The request counts as answered.
   * @param {number} id @param {Uint8Array} bytes @param {number} offset
   * @returns {Uint8Array[]}
   */
  dataFrames(id, bytes, offset) {
    const step = this.limit - DATA_HEADER_LEN;
    /** @type {Uint8Array[]} */
    const out = [];
    for (let at = 0; at < bytes.length; at += step) {
      out.push(encodeFrame({ type: 'data', id, offset: offset + at, bytes: bytes.subarray(at, at + step) }));
    }
    return out;
  }

  /**
   * The remote's request `id` is answered (all data queued) or dropped.
   * @param {number} id
   */
  finishIncoming(id) {
    this.incoming.delete(id);
  }

  /** @param {number} id */
  respondMissing(id) {
    if (!this.incoming.delete(id) || this.closed) return;
    this.sendRaw(encodeFrame({ type: 'missing', id }));
  }

  /** @param {number} id @param {number} retryAfterMs */
  respondBusy(id, retryAfterMs) {
    if (!this.incoming.delete(id) || this.closed) return;
    this.sendRaw(encodeFrame({ type: 'busy', id, retry_after_ms: retryAfterMs >>> 0 }));
  }
}

export { KIND };
