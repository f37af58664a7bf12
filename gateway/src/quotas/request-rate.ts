/**
 * A tenant's request rate: one token bucket per tenant, filled at
 * `perSecond` up to `burst`; a request takes a token or is refused with the
 * seconds until one is there.
 *
 * A few lines instead of a library: it runs on every request inside the
 * 0.1 ms budget, so it is synchronous and allocates nothing after a tenant's
 * first request (`rate-limiter-flexible`, the usual choice, answers each call
 * with a Promise and a result object, and counts fixed windows rather than a
 * bucket with a burst).
 *
 *   const rate = new RequestRate(1000, 2000);
 *   const wait = rate.take('tenant-a', performance.now());
 *   if (wait > 0) refuse with Retry-After: wait
 */
export class RequestRate {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  /** `perSecond` 0: no limit. */
  constructor(
    readonly perSecond: number,
    readonly burst: number,
  ) {}

  /** 0 when `tenant` may send a request at `nowMs` (it took a token); else the whole seconds until it may. */
  take(tenant: string, nowMs: number): number {
    if (this.perSecond === 0) return 0;
    let b = this.buckets.get(tenant);
    if (b === undefined) {
      b = { tokens: this.burst, at: nowMs };
      this.buckets.set(tenant, b);
    } else if (nowMs > b.at) {
      b.tokens = Math.min(this.burst, b.tokens + ((nowMs - b.at) * this.perSecond) / 1000);
      b.at = nowMs;
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - b.tokens) / this.perSecond));
  }
}
