/**
 * A tenant's calls in flight at this gateway, bounded: a call takes a slot
 * before it is routed and gives it back when it is answered, however it ends.
 *
 *   if (!calls.tryAcquire(tenant)) refuse with 429;
 *   try { await call(); } finally { calls.release(tenant); }
 */
export class ConcurrentCalls {
  private readonly active = new Map<string, number>();

  /** `limit` 0: no limit. */
  constructor(readonly limit: number) {}

  /** Takes a slot for `tenant`; false when it has `limit` calls in flight already. */
  tryAcquire(tenant: string): boolean {
    const n = this.active.get(tenant) ?? 0;
    if (this.limit > 0 && n >= this.limit) return false;
    this.active.set(tenant, n + 1);
    return true;
  }

  release(tenant: string): void {
    const n = (this.active.get(tenant) ?? 0) - 1;
    if (n > 0) this.active.set(tenant, n);
    else this.active.delete(tenant);
  }

  /** Calls `tenant` has in flight now. */
  inFlight(tenant: string): number {
    return this.active.get(tenant) ?? 0;
  }
}
