/**
 * The services HTTP API (docs/services.md): /v1/services to manage them,
 * `ANY /svc/:name/*` to call them. Errors go through the app's one mapping.
 */
import { randomBytes } from 'node:crypto';
import type { Context, Hono } from 'hono';
import { FlurryError, type InvokeRequest } from '@flurry/core';
import { base64Field } from '../base64-field.js';
import { readBody } from '../request-body.js';
import type { CallerVariables } from '../auth/roles.js';
import type { TraceVariables } from '../metrics/trace-context.js';
import type { MigrationTuning } from './instance-migration.js';
import type { CreateServiceBody } from './service-records.js';
import type { Services } from './services.js';
import type { UploadedData } from '../uploads/uploaded-data.js';

export interface ServiceRoutesDeps {
  services: Pick<Services, 'records' | 'router' | 'migrations'>;
  maxBodyBytes: number;
  /** Keep the caller's Authorization header from the guest (API keys are configured). */
  hideAuthorization: boolean;
  /** Uploaded data that `initData` names; without it `initData` is refused. */
  data?: UploadedData;
}

type Env = { Variables: { requestId: string } & CallerVariables & TraceVariables };

const HOP_HEADERS = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade']);
export const ROUTE_HEADER = 'x-flurry-route';
export const ROUTE_COOKIE = 'flurry-route';

export function addServiceRoutes<E extends Env>(app: Hono<E>, deps: ServiceRoutesDeps): void {
  const { records, router, migrations } = deps.services;

  app.post('/v1/services', async (c) => {
    const body = parseJson(await readBody(c, deps.maxBodyBytes));
    const spec = createServiceBody(body);
    if (body.initData !== undefined) {
      if (typeof body.initData !== 'string') throw new FlurryError('bad_request', '"initData" must be the name of uploaded data (PUT /v1/data/:name)');
      if (!deps.data) throw new FlurryError('bad_request', 'this gateway keeps no uploaded data: "initData" is not available');
      spec.initData = await deps.data.ref(c.var.tenant, body.initData);
    }
    return c.json({ service: await records.create(c.var.tenant, spec) }, 201);
  });
  app.get('/v1/services', async (c) => c.json({ services: await records.list(c.var.tenant) }));
  app.get('/v1/services/:name', async (c) => c.json({ service: await records.get(c.var.tenant, c.req.param('name')) }));
  app.patch('/v1/services/:name', async (c) => {
    const body = parseJson(await readBody(c, deps.maxBodyBytes)) as Record<string, unknown>;
    for (const k of Object.keys(body)) {
      if (k === 'init' || k === 'initData' || k === 'function') throw new FlurryError('bad_request', `cannot change "${k}" of a service: its instances are clones of one parent (create a new service instead)`);
      if (k !== 'min' && k !== 'max' && k !== 'targetConcurrency') throw new FlurryError('bad_request', `cannot change "${k}" (only min, max and targetConcurrency)`);
    }
    return c.json({ service: await records.update(c.var.tenant, c.req.param('name'), body) });
  });
  app.delete('/v1/services/:name', async (c) => {
    await records.delete(c.var.tenant, c.req.param('name'));
    return c.json({ deleted: c.req.param('name') });
  });

  app.post('/v1/instances/:id/migrate', async (c) => {
    const raw = await readBody(c, deps.maxBodyBytes);
    const body = raw.length === 0 ? {} : parseJson(raw);
    for (const k of Object.keys(body)) if (!['target', 'downtimeBudgetMs', 'maxRounds', 'verify'].includes(k)) throw new FlurryError('bad_request', `unknown field "${k}" (target, downtimeBudgetMs, maxRounds, verify)`);
    const opts: MigrationTuning = {};
    const { downtimeBudgetMs, maxRounds } = body;
    if (downtimeBudgetMs !== undefined) {
      if (typeof downtimeBudgetMs !== 'number' || !(downtimeBudgetMs > 0) || downtimeBudgetMs > 60_000) throw new FlurryError('bad_request', '"downtimeBudgetMs" must be a number of milliseconds above 0 and at most 60000');
      opts.downtimeBudgetMs = downtimeBudgetMs;
    }
    if (maxRounds !== undefined) {
      if (typeof maxRounds !== 'number' || !Number.isInteger(maxRounds) || maxRounds < 0 || maxRounds > 100) throw new FlurryError('bad_request', '"maxRounds" must be an integer from 0 (stop-and-copy only) to 100');
      opts.maxRounds = maxRounds;
    }
    if (body.verify !== undefined) {
      if (typeof body.verify !== 'boolean') throw new FlurryError('bad_request', '"verify" must be true or false');
      opts.verify = body.verify;
    }
    // A user moves its own instances; an admin any tenant's (another tenant's instance is not found for a user).
    const scope = c.var.role === 'admin' ? undefined : c.var.tenant;
    return c.json({ migration: await migrations.migrate(scope, c.req.param('id'), body.target as string | undefined, opts) });
  });

  const call = async (c: Context<E>, name: string, path: string) => {
    const rawUrl = c.req.url;
    const q = rawUrl.indexOf('?');
    const body = await readBody(c, deps.maxBodyBytes);
    const headers: [string, string][] = [];
    c.req.raw.headers.forEach((value, key) => {
      if (!(deps.hideAuthorization && key === 'authorization')) headers.push([key, value]);
    });
    const routeKey = c.req.header(ROUTE_HEADER) || cookie(c.req.header('cookie'), ROUTE_COOKIE) || undefined;
    // The host runs each request id once (a resend gets the first reply): an id the client chose, which it may
    // reuse, gets a suffix of its own; one the gateway made is unique already.
    const requestId = c.var.requestId === c.req.header('x-request-id') ? `${c.var.requestId}.${randomBytes(6).toString('hex')}` : c.var.requestId;
    const reply = await router.forward(c.var.tenant, name, (record): InvokeRequest => ({
      requestId,
      tenant: record.tenant,
      name: record.function,
      digest: record.digest,
      method: c.req.method,
      path: path || '/',
      query: q < 0 ? '' : rawUrl.slice(q + 1),
      headers,
      body,
    }), routeKey, c.var.trace);
    const out = new Headers();
    for (const [k, v] of reply.headers) {
      const lower = k.toLowerCase();
      if (!HOP_HEADERS.has(lower) && !lower.startsWith('x-flurry-')) out.append(k, v);
    }
    out.set('x-flurry-request-id', c.var.requestId);
    out.set('x-flurry-host', reply.hostId);
    out.set('x-flurry-instance', reply.instanceId);
    out.set('x-flurry-duration-ms', reply.durationMs.toFixed(3));
    const nullBody = reply.status === 204 || reply.status === 304 || c.req.method === 'HEAD';
    return new Response(nullBody ? null : (reply.body as Uint8Array<ArrayBuffer>), { status: reply.status, headers: out });
  };

  app.all('/svc/:name', (c) => call(c, c.req.param('name'), '/'));
  app.all('/svc/:name/*', (c) => call(c, c.req.param('name'), c.req.path.slice(`/svc/${c.req.param('name')}`.length)));
}

/** POST /v1/services's body: `init` is base64, as in the jobs API. */
function createServiceBody(b: Record<string, unknown>): CreateServiceBody {
  if (b.init !== undefined && typeof b.init !== 'string') throw new FlurryError('bad_request', '"init" must be a base64 string');
  const { name, function: fn, min, max, targetConcurrency, init } = b;
  return { name, function: fn, min, max, targetConcurrency, ...(typeof init === 'string' ? { init: base64Field('init', init) } : {}) };
}

function parseJson(raw: Uint8Array): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder().decode(raw));
  } catch (err) {
    throw new FlurryError('bad_request', `body is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new FlurryError('bad_request', 'body must be a JSON object');
  return v as Record<string, unknown>;
}

function cookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return percentDecoded(part.slice(eq + 1).trim());
  }
  return undefined;
}

/** A cookie value is percent-encoded by convention only: one that is not (a stray `%`) is a routing key as it stands. */
function percentDecoded(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}
