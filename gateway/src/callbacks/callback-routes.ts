/**
 * The callback parts of the HTTP API: a tenant reads its own signing secret
 * (`GET /v1/callback-secret`), and a job's callbackUrl is checked at submit.
 */
import { createRoute, z } from '@hono/zod-openapi';
import { FlurryError } from '@flurry/core';
import { apiRouter, errorResponses, jsonResponse } from '../api/api-app.js';
import { resolveCallbackTarget } from './callback-address.js';
import type { CallbackConfig } from './callback-config.js';

export function callbackRoutes(config: CallbackConfig) {
  const app = apiRouter();
  // The caller's tenant only: a secret is what lets a receiver trust a POST as that tenant's.
  app.openapi(createRoute({
    method: 'get', path: '/v1/callback-secret', tags: ['Callbacks'], summary: 'The caller\'s callback signing secret',
    description: 'Job callbacks are signed with it (Flurry-Signature); 404 when callbacks are off.',
    responses: { 200: jsonResponse(z.strictObject({ tenant: z.string(), secret: z.string() }), 'The tenant and its secret'), ...errorResponses },
  }), (c) => {
    if (!config.secrets) throw new FlurryError('not_found', 'callbacks are off: this gateway has no FLURRY_CALLBACK_SECRET');
    return c.json({ tenant: c.get('tenant'), secret: config.secrets.forTenant(c.get('tenant')) }, 200);
  });
  return app;
}

/**
 * Refuses (400) a callbackUrl that no delivery could use: callbacks off, a
 * bad URL, or a host with an address that is not allowed.
 */
export async function checkCallbackUrl(config: CallbackConfig, url: string): Promise<void> {
  if (!config.secrets) throw new FlurryError('bad_request', 'callbacks are off: this gateway has no FLURRY_CALLBACK_SECRET to sign them with');
  await resolveCallbackTarget(url, config.allow);
}
