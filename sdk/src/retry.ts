/**
 * When the SDK tries again: how many times, for how long, and how long it waits in between
 * (exponential back-off with jitter, or the gateway's `Retry-After` when it sends one). Which
 * requests may be sent twice is the transport's business (transport.ts).
 */

/**
 * How the client retries a request that got no answer, or a 429 or 503.
 *
 * @example
 * new Flurry({ url, retries: { count: 8, withinMs: 120_000 } }); // patient
 * new Flurry({ url, retries: 0 });                               // never retry
 */
export interface RetryOptions {
  /** Retries after the first attempt; 0 turns retrying off. Default 4 (5 attempts in all). */
  count?: number;
  /** No retry starts later than this after the first attempt (ms). Default 30 000. */
  withinMs?: number;
  /** The first back-off (ms), doubled for each further retry up to 10 s; each wait is randomly 50-100% of it. Default 1000. */
  delayMs?: number;
}

const DEFAULTS = { count: 4, withinMs: 30_000, delayMs: 1000 };
const MAX_DELAY_MS = 10_000;

/** RetryOptions with the defaults filled in, and the waits they give. */
export class RetryPolicy {
  readonly count: number;
  readonly withinMs: number;
  readonly delayMs: number;

  constructor(options: number | RetryOptions = {}) {
    const given = typeof options === 'number' ? { count: options } : options;
    this.count = given.count ?? DEFAULTS.count;
    this.withinMs = given.withinMs ?? DEFAULTS.withinMs;
    this.delayMs = given.delayMs ?? DEFAULTS.delayMs;
    for (const [name, value] of Object.entries({ count: this.count, withinMs: this.withinMs, delayMs: this.delayMs })) {
      if (!Number.isFinite(value) || value < 0) throw new RangeError(`retries.${name} must be a number >= 0, got ${value}`);
    }
  }

  /**
   * The wait before retry number `retry` (1 for the first) of something first tried at
   * `startedAt` (ms since the epoch), or undefined when the retries or the time are spent.
   * `retryAfterSeconds` (the gateway's `Retry-After`) replaces the back-off.
   */
  delayBefore(retry: number, startedAt: number, retryAfterSeconds?: number): number | undefined {
    if (retry > this.count) return undefined;
    const backoff = Math.min(MAX_DELAY_MS, this.delayMs * 2 ** (retry - 1));
    // Jitter spreads the retries of many clients that failed together.
    const wait = retryAfterSeconds !== undefined ? retryAfterSeconds * 1000 : backoff / 2 + (Math.random() * backoff) / 2;
    return Date.now() + wait - startedAt > this.withinMs ? undefined : wait;
  }
}

/** Waits `ms`; rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Network failures after which the same request may well succeed: the gateway restarting, a connection cut. */
const TRANSIENT_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN',
  'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT',
]);

/**
 * Whether a fetch failure is a transient network one. Node's fetch hides the code in `cause`
 * (an AggregateError's `errors` when it tried several addresses).
 */
export function isTransientNetworkError(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && TRANSIENT_CODES.has(code)) return true;
    if (e instanceof AggregateError && e.errors.some((inner) => isTransientNetworkError(inner))) return true;
  }
  return false;
}
