// @ts-check
/** An answer the engine refused, or no answer at all. */
export class ApiError extends Error {
  /**
   * @param {string} message what went wrong and what to do
   * @param {number} status HTTP status (the desktop maps its errors to the
   *   same ones), 0 when nothing answered
   */
  constructor(message, status) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
  }
}
