/**
 * The callback parts of the HTTP API: a tenant reads its own signing secret
 * (`GET /v1/callback-secret`), and a job's callbackUrl is checked at submit.
 */
import type { Hono } from 'hono';
import { FlurryError, type Logger } from '@flurry/core';
import { resolveCallbackTarget } from './callback-address.js';
import type { CallbackConfig } from './callback-config.js';

type Env = { Variables: { requestId: string; tenant: string; log: Logger } };

export function addCallbackRoutes<E extends Env>(app: Hono<E>, config: CallbackConfig): void {
  // The caller's tenant only: a secret is what lets a receiver trust a POST as that tenant's.
  app.get('/v1/callback-secret', (c) => {
    if (!config.secrets) throw new FlurryError('not_found', 'callbacks are off: this gateway has no FLURRY_CALLBACK_SECRET');
    return c.json({ tenant: c.var.tenant, secret: config.secrets.forTenant(c.var.tenant) });
  });
}

/**
 * Refuses (400) a callbackUrl that no delivery could use: callbacks off, a
 * bad URL, or a host with an address that is not allowed.
 */
export async function checkCallbackUrl(config: CallbackConfig, url: string): Promise<void> {
  if (!config.secrets) throw new FlurryError('bad_request', 'callbacks are off: this gateway has no FLURRY_CALLBACK_SECRET to sign them with');
  await resolveCallbackTarget(url, config.allow);
}
