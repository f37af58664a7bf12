/**
 * `PATCH /v1/functions/:name` with `{ "limits": { ... } }`: sets a function's
 * own limits (docs/manifests.md). Any caller of the tenant may, as for a
 * deploy; the record is the tenant's own, so another tenant's is not found.
 * `GET /v1/functions/:name` shows them with the record.
 */
import type { Hono } from 'hono';
import { FlurryError, type FunctionLimits } from '@flurry/core';
import type { CallerVariables } from '../auth/roles.js';
import type { FunctionRegistry } from '../function-registry.js';
import { readBody } from '../request-body.js';

export interface FunctionLimitsRoutesDeps {
  registry: Pick<FunctionRegistry, 'setLimits'>;
  maxBodyBytes: number;
}

type Env = { Variables: CallerVariables };

const LIMIT_KEYS = ['timeoutMs', 'memoryBytes', 'outputBytes'] as const;

export function addFunctionLimitsRoutes<E extends Env>(app: Hono<E>, deps: FunctionLimitsRoutesDeps): void {
  app.patch('/v1/functions/:name', async (c) => {
    const limits = limitsBody(await readBody(c, deps.maxBodyBytes));
    const { record } = await deps.registry.setLimits(c.var.tenant, c.req.param('name'), limits);
    return c.json({ function: record });
  });
}

/** `{ "limits": { timeoutMs?, memoryBytes?, outputBytes? } }`, positive integers, nothing else. */
export function limitsBody(raw: Uint8Array): FunctionLimits {
  let body: unknown;
  try {
    body = JSON.parse(new TextDecoder().decode(raw));
  } catch (err) {
    throw new FlurryError('bad_request', `body is not valid JSON: ${(err as Error).message}`);
  }
  if (!isObject(body)) throw new FlurryError('bad_request', 'body must be a JSON object: { "limits": { ... } }');
  for (const k of Object.keys(body)) if (k !== 'limits') throw new FlurryError('bad_request', `unknown field "${k}" (only "limits")`);
  const given = body.limits;
  if (!isObject(given)) throw new FlurryError('bad_request', '"limits" must be an object');
  const limits: FunctionLimits = {};
  for (const [k, v] of Object.entries(given)) {
    if (!(LIMIT_KEYS as readonly string[]).includes(k)) throw new FlurryError('bad_request', `unknown field "limits.${k}" (${LIMIT_KEYS.join(', ')})`);
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) throw new FlurryError('bad_request', `"limits.${k}" must be a positive integer`);
    limits[k as (typeof LIMIT_KEYS)[number]] = v;
  }
  return limits;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
