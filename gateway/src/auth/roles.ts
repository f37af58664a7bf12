/**
 * What each role may do, as the routes ask it. The caller's tenant and role
 * are set once per request (`authenticate`); every lookup of a tenant's
 * object is scoped by that tenant, so another tenant's object is simply not
 * found (404, never 403: a user cannot even learn that it exists). Only
 * fleet-wide routes check the role (`requireAdmin`: 403 for a user).
 */
import type { MiddlewareHandler } from 'hono';
import { FlurryError, type Role } from '@flurry/core';
import type { KeyRing } from './key-ring.js';
import { header } from '../request-headers.js';

/** The request variables every route reads to know who is calling. */
export type CallerVariables = { tenant: string; role: Role };

/** Sets `tenant` and `role` from the request's API key; 401 when it has none or an unknown one. */
export function authenticate(ring: KeyRing): MiddlewareHandler<{ Variables: CallerVariables }> {
  return async (c, next) => {
    const caller = ring.identify(header(c, 'authorization'));
    c.set('tenant', caller.tenant);
    c.set('role', caller.role);
    await next();
  };
}

/** 403 unless the caller is an admin: for routes about the fleet rather than a tenant's objects. */
export function requireAdmin(role: Role, what: string): void {
  if (role !== 'admin') throw new FlurryError('forbidden', `${what} needs an admin API key`);
}
