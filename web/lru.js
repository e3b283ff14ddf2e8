// A byte-bounded LRU of verified pieces, keyed by piece hash (hex).

/**
 * @template V
 * @typedef {{value: V, size: number}} Entry
 */

/**
 * Least recently used first out, bounded by the sum of entry sizes.
 * @template {{byteLength: number}} V
 */
export class ByteLru {
  /**
   * @param {number} maxBytes
   * @param {(key: string, value: V) => void} [onEvict] called for entries
   *   pushed out to make room (not for `delete` or replacement)
   */
  constructor(maxBytes, onEvict) {
    this.maxBytes = maxBytes;
    this.onEvict = onEvict;
    /** @type {Map<string, V>} */
    this.map = new Map();
    this.bytes = 0;
  }

  get size() {
    return this.map.size;
  }

  /** @param {string} key */
  has(key) {
    return this.map.has(key);
  }

  /**
   * The value, marked as just used.
   * @param {string} key
   */
  get(key) {
    const v = this.map.get(key);
    if (v !== undefined) {
      this.map.delete(key);
      this.map.set(key, v);
    }
    return v;
  }

  /**
   * The value, without touching its recency.
   * @param {string} key
   */
  peek(key) {
    return this.map.get(key);
  }

  /**
   * Stores `value`; evicts the least recently used until it fits. A value
   * larger than the whole budget is not stored (false).
   * @param {string} key @param {V} value
   */
  set(key, value) {
    if (value.byteLength > this.maxBytes) return false;
    this.delete(key);
    while (this.bytes + value.byteLength > this.maxBytes) {
      const oldest = this.map.keys().next();
      if (oldest.done) break;
      const k = oldest.value;
      const v = /** @type {V} */ (this.map.get(k));
      this.map.delete(k);
      this.bytes -= v.byteLength;
      if (this.onEvict) {
        try {
          this.onEvict(k, v);
        } catch {
          // A listener's failure must not corrupt the cache.
        }
      }
    }
    this.map.set(key, value);
    this.bytes += value.byteLength;
    return true;
  }

  /** @param {string} key */
  delete(key) {
    const v = this.map.get(key);
    if (v === undefined) return false;
    this.map.delete(key);
    this.bytes -= v.byteLength;
    return true;
  }

  /** Keys, least recently used first. */
  keys() {
    return [...this.map.keys()];
  }
}
