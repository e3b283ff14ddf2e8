// The signaling client (docs/protocol.md §5): one WebSocket to the hub,
// challenge → hello (role browser) → welcome, pongs for the hub's pings,
// reconnects with backoff, and keeps its own sending within the hub's rate
// limit (a token bucket in front of a bounded queue).

import { decodeHubToClient, encodeClientToHub, SignalError } from './proto/signal.js';
import { PROTOCOL_VERSION } from './proto/limits.js';

/** @typedef {import('./proto/signal.js').HubToClient} HubToClient */
/** @typedef {import('./proto/signal.js').ClientToHub} ClientToHub */
/** @typedef {Extract<HubToClient, {type: 'welcome'}>} Welcome */

export const AGENT = 'tuber-web/0.1';
/** The hub allows 50 messages/s with a burst of 200; stay below. */
const RATE_PER_S = 40;
const BURST = 150;
/** Messages waiting for tokens or for the connection, at most. */
const MAX_QUEUE = 1024;
const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 30_000;
/** Time for challenge + welcome after the socket opens. */
const WELCOME_TIMEOUT_MS = 10_000;

export class Signaling {
  /**
   * @param {{
   *   url: string,
   *   onWelcome: (w: Welcome) => void,
   *   onMessage: (m: HubToClient) => void,
   *   onDown: () => void,
   *   log?: (...args: unknown[]) => void,
   *   WebSocketImpl?: typeof WebSocket,
   * }} opts
   */
  constructor(opts) {
    this.opts = opts;
    this.log = opts.log ?? (() => {});
    /** @type {WebSocket | null} */
    this.ws = null;
    /** @type {Welcome | null} */
    this.welcome = null;
    this.stopped = false;
    this.backoff = BACKOFF_MIN_MS;
    /** @type {string[]} */
    this.queue = [];
    this.tokens = BURST;
    this.lastRefill = Date.now();
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.flushTimer = undefined;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.retryTimer = undefined;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.welcomeTimer = undefined;
  }

  /** Whether the hub welcomed this connection (messages can flow). */
  get up() {
    return this.welcome !== null && this.ws !== null && this.ws.readyState === 1;
  }

  start() {
    if (this.stopped || this.ws) return;
    let ws;
    try {
      ws = new (this.opts.WebSocketImpl ?? WebSocket)(this.opts.url);
    } catch (e) {
      this.log('signaling: cannot open', e);
      this.retry();
      return;
    }
    this.ws = ws;
    this.welcomeTimer = setTimeout(() => {
      if (!this.welcome) {
        this.log('signaling: no welcome in time');
        ws.close();
      }
    }, WELCOME_TIMEOUT_MS);
    ws.onmessage = (e) => this.receive(e.data);
    ws.onclose = () => this.closed(ws);
    ws.onerror = () => {
      // onclose follows.
    };
  }

  /** @param {unknown} data */
  receive(data) {
    if (typeof data !== 'string') {
      this.sendNow({ type: 'error', code: 'bad_message', message: 'signaling messages are JSON text frames' });
      return;
    }
    /** @type {HubToClient} */
    let m;
    try {
      m = decodeHubToClient(data);
    } catch (e) {
      if (e instanceof SignalError) {
        this.log('signaling: refused a message:', e.message);
        this.sendNow({ type: 'error', code: e.code, message: e.message.slice(0, 900) });
        return;
      }
      throw e;
    }
    switch (m.type) {
      case 'challenge':
        if (m.version !== PROTOCOL_VERSION) {
          this.sendNow({
            type: 'error', code: 'unsupported_version',
            message: `this client speaks protocol version ${PROTOCOL_VERSION}, not ${m.version}`,
          });
          this.stop();
          return;
        }
        this.sendNow({ type: 'hello', version: PROTOCOL_VERSION, role: 'browser', agent: AGENT });
        return;
      case 'welcome':
        clearTimeout(this.welcomeTimer);
        this.welcome = m;
        this.backoff = BACKOFF_MIN_MS;
        try {
          this.opts.onWelcome(m);
        } catch (e) {
          this.log('signaling: welcome handler failed', e);
        }
        this.flush();
        return;
      case 'ping':
        this.sendNow({ type: 'pong', nonce: m.nonce });
        return;
      case 'error':
        // Never answered with an error (§5.2).
        this.log('signaling: hub error', m.code, m.message);
        if (m.code === 'banned' || m.code === 'unsupported_version') this.stop();
        return;
      default:
        try {
          this.opts.onMessage(m);
        } catch (e) {
          this.log('signaling: handler failed', e);
        }
    }
  }

  /**
   * Sends a message once welcomed, within the rate limit; false if it could
   * not be queued (encoder refused it, queue full, stopped).
   * @param {ClientToHub} msg
   */
  send(msg) {
    if (this.stopped) return false;
    let text;
    try {
      text = encodeClientToHub(msg);
    } catch (e) {
      this.log('signaling: not sending an invalid message', e);
      return false;
    }
    if (this.queue.length >= MAX_QUEUE) return false;
    this.queue.push(text);
    this.flush();
    return true;
  }

  /**
   * Sends at once, bypassing the queue (handshake, pongs, errors).
   * @param {ClientToHub} msg
   */
  sendNow(msg) {
    const ws = this.ws;
    if (!ws || ws.readyState !== 1) return;
    try {
      ws.send(encodeClientToHub(msg));
    } catch (e) {
      this.log('signaling: send failed', e);
    }
  }

  flush() {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (!this.up) return;
    const now = Date.now();
    this.tokens = Math.min(BURST, this.tokens + ((now - this.lastRefill) / 1000) * RATE_PER_S);
    this.lastRefill = now;
    const ws = /** @type {WebSocket} */ (this.ws);
    while (this.queue.length > 0 && this.tokens >= 1) {
      const text = /** @type {string} */ (this.queue.shift());
      this.tokens -= 1;
      try {
        ws.send(text);
      } catch {
        return;
      }
    }
    if (this.queue.length > 0) {
      this.flushTimer = setTimeout(() => this.flush(), Math.ceil(1000 / RATE_PER_S));
    }
  }

  /** @param {WebSocket} ws */
  closed(ws) {
    if (this.ws !== ws) return;
    clearTimeout(this.welcomeTimer);
    const wasUp = this.welcome !== null;
    this.ws = null;
    this.welcome = null;
    // Messages for the old connection name peers of the old session.
    this.queue = [];
    if (wasUp) {
      try {
        this.opts.onDown();
      } catch (e) {
        this.log('signaling: down handler failed', e);
      }
    }
    this.retry();
  }

  retry() {
    if (this.stopped) return;
    const wait = this.backoff * (0.75 + Math.random() * 0.5);
    this.backoff = Math.min(BACKOFF_MAX_MS, this.backoff * 2);
    this.retryTimer = setTimeout(() => this.start(), wait);
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.flushTimer);
    clearTimeout(this.welcomeTimer);
    const ws = this.ws;
    this.ws = null;
    this.welcome = null;
    try {
      ws?.close();
    } catch {
      // gone
    }
  }
}
