/**
 * The per-request quotas: the request rate on every route but the health
 * checks, the concurrent calls on the call routes (functions and services).
 * Refusals are 429 `rate_limited` with Retry-After. Each is a plain check
 * (`takeRequest`, `inCallSlot`), used as it is by the call routes
 * (call-route/); the rate also as Hono middleware by the rest of the API.
 */
import type { MiddlewareHandler } from 'hono';
import { FlurryError } from '@flurry/core';
import type { ConcurrentCalls } from './concurrent-calls.js';
import type { RequestRate } from './request-rate.js';

type Env = { Variables: { tenant: string } };

/** A call waits this long before trying again: calls are short, a slot frees soon. */
const CALL_RETRY_AFTER_S = 1;

/** Counts one request of `tenant`; throws `rate_limited` when it sends more than its rate. */
export function takeRequest(rate: RequestRate, tenant: string): void {
  const wait = rate.take(tenant, performance.now());
  if (wait > 0) {
    throw new FlurryError('rate_limited', `tenant "${tenant}" sends more than ${rate.perSecond} requests a second (FLURRY_QUOTA_REQUESTS_PER_S)`, { retryAfterSeconds: wait });
  }
}

/** `call` in one of `tenant`'s call slots, given back however it ends; throws `rate_limited` at once when none is free. */
export async function inCallSlot<T>(calls: ConcurrentCalls | undefined, tenant: string, call: () => Promise<T>): Promise<T> {
  if (!calls) return call();
  if (!calls.tryAcquire(tenant)) {
    throw new FlurryError('rate_limited', `tenant "${tenant}" has ${calls.limit} calls in flight, its limit at this gateway (FLURRY_QUOTA_CONCURRENT_CALLS)`, { retryAfterSeconds: CALL_RETRY_AFTER_S });
  }
  try {
    return await call();
  } finally {
    calls.release(tenant);
  }
}

export function limitRequestRate(rate: RequestRate): MiddlewareHandler<Env> {
  return async (c, next) => {
    takeRequest(rate, c.get('tenant'));
    await next();
  };
}
