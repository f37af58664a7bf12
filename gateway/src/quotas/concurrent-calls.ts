/**
 * A tenant's calls in flight at this gateway, bounded: a call takes a slot
 * before it is routed and gives it back when it is answered, however it ends.
 *
 *   if (!calls.tryAcquire(tenant)) refuse with 429;
 *   try { await call(); } finally { calls.release(tenant); }
 */
export class ConcurrentCalls {
  /**
   * A counter per tenant, kept once made: taking and giving back a slot is
   * then one lookup and no allocation (tenants are as many as API keys).
   */
  private readonly active = new Map<string, { n: number }>();

  /** `limit` 0: no limit. */
  constructor(readonly limit: number) {}

  /** Takes a slot for `tenant`; false when it has `limit` calls in flight already. */
  tryAcquire(tenant: string): boolean {
    let counter = this.active.get(tenant);
    if (counter === undefined) {
      counter = { n: 0 };
      this.active.set(tenant, counter);
    }
    if (this.limit > 0 && counter.n >= this.limit) return false;
    counter.n++;
    return true;
  }

  release(tenant: string): void {
    const counter = this.active.get(tenant);
    if (counter !== undefined && counter.n > 0) counter.n--;
  }

  /** Calls `tenant` has in flight now. */
  inFlight(tenant: string): number {
    return this.active.get(tenant)?.n ?? 0;
  }
}
