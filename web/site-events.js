// The site's fetch listeners inside Tuber's Service Worker (a host, see
// site-worker.js): Tuber's listener sees every request first; the site's
// see every request Tuber does not answer, as if they were alone.
//
// The site's script runs in the same global after Tuber's, so its listeners
// for every other event (install, activate, message, push, sync,
// notificationclick, …) are ordinary listeners of that global and get their
// events from the browser. Its `fetch` listeners are kept here instead
// (`addEventListener`/`removeEventListener`/`onfetch` of the global are
// wrapped for `fetch` only, before the site's script runs), because Tuber
// decides about some requests only after looking (a `HEAD`, the hub's
// manifest), and by then the browser's dispatch is over. So:
// - a request Tuber lets pass at once goes to the site's listeners with the
//   browser's own event, during the browser's dispatch (`passOn`);
// - a request Tuber held and then let go (not distributable after all, or
//   no page to feed it) goes to them with a stand-in for the event whose
//   `respondWith` answers Tuber's held response (`answer`); everything
//   else of the event is the browser's (`request`, `clientId`,
//   `preloadResponse`, `waitUntil`, …; `instanceof FetchEvent` holds).
// When no site listener responds, the network answers, as without a
// worker; `preventDefault()` without a response is a network error, as the
// browser makes it.

/**
 * What the host needs of a fetch event.
 * @typedef {{request: Request, respondWith(r: Response | PromiseLike<Response>): void,
 *   waitUntil(p: PromiseLike<unknown>): void, stopImmediatePropagation(): void,
 *   preventDefault(): void, readonly defaultPrevented: boolean}} FetchEventLike
 */

/**
 * @typedef {((event: any) => unknown) | {handleEvent(event: any): unknown}} Listener
 * @typedef {{listener: Listener, capture: boolean, once: boolean, active: boolean}} Entry
 */

/**
 * @typedef {object} SiteFetch
 * @property {(event: FetchEventLike) => void} passOn hands a request Tuber
 *   did not take to the site's listeners, during the browser's dispatch
 * @property {(event: FetchEventLike) => Promise<Response>} answer the answer
 *   to a request Tuber held and let go: the site's, else the network's
 * @property {() => number} count how many site listeners there are
 */

/**
 * Keeps the `fetch` listeners that code run after this call adds to
 * `global`; other events are untouched.
 * @param {any} global the worker's global scope
 * @param {{fetch?: (r: Request) => Promise<Response>, report?: (e: unknown) => void}} [deps]
 * @returns {SiteFetch}
 */
export function captureSiteFetch(global, deps = {}) {
  const network = deps.fetch ?? ((/** @type {Request} */ r) => fetch(r));
  const report = deps.report ?? ((/** @type {unknown} */ e) => {
    if (typeof global.reportError === 'function') global.reportError(e);
    else console.error(e);
  });
  /** @type {Entry[]} */
  const entries = [];
  /** @type {Entry | null} */
  let handlerEntry = null;
  /** @type {((event: any) => unknown) | null} */
  let handler = null;

  const nativeAdd = global.addEventListener;
  const nativeRemove = global.removeEventListener;
  /** @param {unknown} options */
  const captureOf = (options) => (typeof options === 'boolean' ? options : !!(options && /** @type {any} */ (options).capture));
  /** @param {unknown} l @param {boolean} capture */
  const find = (l, capture) => entries.find((e) => e.active && e.listener === l && e.capture === capture);
  /** @param {Entry} e */
  const drop = (e) => {
    e.active = false;
    entries.splice(entries.indexOf(e), 1);
  };

  /**
   * @this {unknown}
   * @param {string} type @param {Listener | null} listener
   * @param {boolean | {capture?: boolean, once?: boolean, signal?: AbortSignal}} [options]
   */
  function addEventListener(type, listener, options) {
    if (type !== 'fetch') return nativeAdd.call(this ?? global, type, listener, options);
    if (!listener) return undefined;
    const capture = captureOf(options);
    if (find(listener, capture)) return undefined;
    const o = typeof options === 'object' && options ? options : {};
    if (o.signal && o.signal.aborted) return undefined;
    /** @type {Entry} */
    const entry = { listener, capture, once: !!o.once, active: true };
    entries.push(entry);
    o.signal?.addEventListener('abort', () => { if (entry.active) drop(entry); }, { once: true });
    return undefined;
  }
  /**
   * @this {unknown}
   * @param {string} type @param {Listener | null} listener @param {boolean | {capture?: boolean}} [options]
   */
  function removeEventListener(type, listener, options) {
    if (type !== 'fetch') return nativeRemove.call(this ?? global, type, listener, options);
    const e = find(listener, captureOf(options));
    if (e && e !== handlerEntry) drop(e);
    return undefined;
  }
  Object.defineProperty(global, 'addEventListener', { value: addEventListener, writable: true, configurable: true });
  Object.defineProperty(global, 'removeEventListener', { value: removeEventListener, writable: true, configurable: true });
  // `self.onfetch = fn`: a listener at the place of its first assignment, as the DOM does.
  Object.defineProperty(global, 'onfetch', {
    configurable: true,
    enumerable: true,
    get: () => handler,
    set: (fn) => {
      handler = typeof fn === 'function' ? fn : null;
      if (handler && !handlerEntry) {
        handlerEntry = {
          listener: (/** @type {any} */ ev) => (handler ? handler.call(global, ev) : undefined),
          capture: false,
          once: false,
          active: true,
        };
        entries.push(handlerEntry);
      } else if (!handler && handlerEntry) {
        drop(handlerEntry);
        handlerEntry = null;
      }
    },
  });

  /**
   * Runs the site's listeners with `event` until one stops propagation.
   * @param {any} event @param {() => boolean} stopped
   */
  const run = (event, stopped) => {
    for (const e of entries.slice()) {
      if (!e.active) continue;
      if (e.once) drop(e);
      try {
        const l = e.listener;
        if (typeof l === 'function') l.call(global, event);
        else if (l && typeof l.handleEvent === 'function') l.handleEvent(event);
      } catch (err) {
        report(err);
      }
      if (stopped()) break;
    }
  };

  return {
    count: () => entries.length,
    passOn(event) {
      if (entries.length === 0) return;
      let stopped = false;
      const stop = event.stopImmediatePropagation;
      // Only to see a stop among the site's listeners; the browser's own flag is set too.
      const probe = new Proxy(event, {
        get(target, key) {
          if (key === 'stopImmediatePropagation') {
            return () => {
              stopped = true;
              stop.call(target);
            };
          }
          const v = Reflect.get(target, key, target);
          return typeof v === 'function' ? v.bind(target) : v;
        },
      });
      run(probe, () => stopped);
    },
    answer(event) {
      const req = event.request;
      if (entries.length === 0) return network(req);
      /** @type {Response | PromiseLike<Response> | null} */
      let response = null;
      let responded = false;
      let dispatching = true;
      let stopped = false;
      let canceled = false;
      const stand = new Proxy(event, {
        get(target, key) {
          switch (key) {
            case 'respondWith':
              return (/** @type {Response | PromiseLike<Response>} */ r) => {
                if (!dispatching || responded) {
                  throw new DOMException('respondWith() was already called or the event is over', 'InvalidStateError');
                }
                responded = true;
                response = r;
              };
            case 'stopImmediatePropagation':
              return () => { stopped = true; };
            case 'stopPropagation':
              return () => {};
            case 'preventDefault':
              return () => { canceled = true; };
            case 'defaultPrevented':
              return canceled;
            default: {
              const v = Reflect.get(target, key, target);
              return typeof v === 'function' ? v.bind(target) : v;
            }
          }
        },
      });
      run(stand, () => stopped);
      dispatching = false;
      if (responded) {
        return Promise.resolve(response).then((/** @type {unknown} */ r) => {
          if (!(r instanceof Response)) throw new TypeError('the site\'s worker responded with something that is not a Response');
          return r;
        });
      }
      if (canceled) return Promise.resolve(Response.error());
      return network(req);
    },
  };
}
