/**
 * The per-request quotas as Hono middleware: the request rate on every route
 * but the health checks, the concurrent calls on the call routes. Refusals
 * are 429 `rate_limited` with Retry-After, through the app's one error mapping.
 */
import type { MiddlewareHandler } from 'hono';
import { FlurryError } from '@flurry/core';
import type { ConcurrentCalls } from './concurrent-calls.js';
import type { RequestRate } from './request-rate.js';

type Env = { Variables: { tenant: string } };

/** Routes that call a guest: each holds a slot of ConcurrentCalls while it runs. */
export const CALL_ROUTES = ['/fn/*', '/v1/functions/:name/invoke', '/svc/*'] as const;

/** A call waits this long before trying again: calls are short, a slot frees soon. */
const CALL_RETRY_AFTER_S = 1;

export function limitRequestRate(rate: RequestRate): MiddlewareHandler<Env> {
  return async (c, next) => {
    const wait = rate.take(c.get('tenant'), performance.now());
    if (wait > 0) {
      throw new FlurryError('rate_limited', `tenant "${c.get('tenant')}" sends more than ${rate.perSecond} requests a second (FLURRY_QUOTA_REQUESTS_PER_S)`, { retryAfterSeconds: wait });
    }
    await next();
  };
}

export function limitConcurrentCalls(calls: ConcurrentCalls): MiddlewareHandler<Env> {
  return async (c, next) => {
    const tenant = c.get('tenant');
    if (!calls.tryAcquire(tenant)) {
      throw new FlurryError('rate_limited', `tenant "${tenant}" has ${calls.limit} calls in flight, its limit at this gateway (FLURRY_QUOTA_CONCURRENT_CALLS)`, { retryAfterSeconds: CALL_RETRY_AFTER_S });
    }
    try {
      await next();
    } finally {
      calls.release(tenant);
    }
  };
}
