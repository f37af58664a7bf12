// Tenants and roles against a real fleet (nats-server, a gateway with API
// keys, two host processes): two `user` tenants, alice and bob, each with a
// function, a job, uploaded data and a service, and an `admin`. Every route
// a tenant can name an object in is tried by each tenant on the other's
// objects and must answer 404 (never 403: a tenant cannot even learn that
// the object exists) and change nothing; the fleet-wide routes answer 403 to
// a user; `GET /v1/hosts` shows a user nothing of another tenant; no key or
// an unknown one gets 401.
import { hostname } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newApiKey } from '@flurry/core';
import { LocalFleet } from '../infra/src/local-fleet.js';
import { startGateway } from '../infra/src/services.js';
import { guestProgram } from './helpers/functions.js';
import { json, until } from './helpers/gateway-api.js';
import { b64, finishedJob } from './helpers/jobs.js';

const KEYS = { alice: newApiKey(), bob: newApiKey(), admin: newApiKey() };
type Who = keyof typeof KEYS;
const TENANTS = ['alice', 'bob'] as const;
type Tenant = (typeof TENANTS)[number];
const other = (t: Tenant): Tenant => (t === 'alice' ? 'bob' : 'alice');

let fleet: LocalFleet;

/** A request as `who` (a key name), or with the raw Authorization header given. */
function call(who: Who | { authorization?: string }, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Response> {
  const auth: Record<string, string> = typeof who === 'string' ? { authorization: `Bearer ${KEYS[who]}` } : who.authorization === undefined ? {} : { authorization: who.authorization };
  const raw = body instanceof Uint8Array;
  const h = { ...auth, ...(body === undefined || raw ? {} : { 'content-type': 'application/json' }), ...headers };
  return fetch(`${fleet.url}${path}`, { method, headers: h, body: body === undefined ? undefined : raw ? (body as Uint8Array<ArrayBuffer>) : JSON.stringify(body) });
}


/** What each tenant made in beforeAll. */
const made = {} as Record<Tenant, { jobId: string; instanceId: string; digest: string }>;

beforeAll(async () => {
  fleet = await LocalFleet.start({
    hosts: 2,
    hostEnv: { FLURRY_GUEST_THREADS: '2', FLURRY_HEARTBEAT_MS: '200', FLURRY_HOST_TTL_S: '4', LOG_LEVEL: 'warn' },
    gatewayEnv: {
      FLURRY_API_KEYS: `${KEYS.alice}=alice,${KEYS.bob}=bob,${KEYS.admin}=ops:admin`,
      FLURRY_HOST_TTL_S: '4', FLURRY_CONSOLIDATE_MS: '0', LOG_LEVEL: 'warn',
    },
    apiKey: KEYS.admin,
  });
  await Promise.all(TENANTS.map(async (t) => {
    const echo = await json<{ function: { digest: string } }>(await call(t, 'PUT', `/v1/functions/${t}-echo`, guestProgram('echo')), 201);
    await json(await call(t, 'PUT', `/v1/functions/${t}-pattern`, guestProgram('pattern')), 201);
    await json(await call(t, 'PUT', `/v1/functions/${t}-room`, guestProgram('room')), 201);
    await json(await call(t, 'PUT', `/v1/data/${t}.bin`, new TextEncoder().encode(JSON.stringify({ mib: 1 }))), 201);
    // A warm parent on some host: what GET /v1/hosts would leak.
    expect((await call(t, 'POST', `/fn/${t}-echo/hi`, { from: t })).status).toBe(200);
    const job = await json<{ job: { id: string } }>(await call(t, 'POST', '/v1/jobs', { function: `${t}-pattern`, clones: 2, init: b64({ mib: 1 }) }), 202);
    await json(await call(t, 'POST', '/v1/services', { name: `${t}-svc`, function: `${t}-room`, min: 1 }), 201);
    // Held until the instance is up.
    expect((await call(t, 'POST', `/svc/${t}-svc/join`, { name: t })).status).toBe(200);
    const svc = await json<{ service: { instances: { id: string }[] } }>(await call(t, 'GET', `/v1/services/${t}-svc`));
    expect((await finishedJob((...request) => call(t, ...request), job.job.id)).state, `${t}'s job`).toBe('done');
    made[t] = { jobId: job.job.id, instanceId: svc.service.instances[0].id, digest: echo.function.digest };
  }));
}, 120_000);

afterAll(async () => {
  await fleet?.stop();
});

/** Every route that names a tenant's object, aimed at `owner`'s objects. */
function routesOn(owner: Tenant): [string, string, unknown?][] {
  const { jobId, instanceId } = made[owner];
  return [
    ['GET', `/v1/functions/${owner}-echo`],
    ['GET', `/v1/functions/${owner}-echo/logs`],
    ['DELETE', `/v1/functions/${owner}-echo`],
    ['POST', `/v1/functions/${owner}-echo/invoke?path=/x`, { a: 1 }],
    ['GET', `/fn/${owner}-echo`],
    ['POST', `/fn/${owner}-echo/deep/path?q=1`, { a: 1 }],
    ['GET', `/v1/data/${owner}.bin`],
    ['DELETE', `/v1/data/${owner}.bin`],
    ['POST', '/v1/jobs', { function: `${owner}-pattern`, clones: 1 }],
    ['GET', `/v1/jobs/${jobId}`],
    ['GET', `/v1/jobs/${jobId}/result`],
    ['GET', `/v1/jobs/${jobId}/clones/0/output`],
    ['GET', `/v1/jobs/${jobId}/events`],
    ['GET', `/v1/jobs/${jobId}/logs`],
    ['GET', `/v1/jobs/${jobId}/logs?clone=0&follow=true`],
    ['DELETE', `/v1/jobs/${jobId}`],
    ['GET', `/v1/services/${owner}-svc`],
    ['PATCH', `/v1/services/${owner}-svc`, { max: 3 }],
    ['DELETE', `/v1/services/${owner}-svc`],
    ['POST', '/v1/services', { name: 'stolen', function: `${owner}-room` }],
    ['GET', `/svc/${owner}-svc/state`],
    ['POST', `/svc/${owner}-svc/join`, { name: 'intruder' }],
    ['POST', `/v1/instances/${instanceId}/migrate`, {}],
  ];
}

describe('tenancy', () => {
  it('isolation - each tenant gets 404 on every route naming the other\'s objects, and the objects are untouched', async () => {
    for (const caller of TENANTS) {
      const owner = other(caller);
      for (const [method, path, body] of routesOn(owner)) {
        const res = await call(caller, method, path, body);
        const text = await res.text();
        expect(res.status, `${caller}: ${method} ${path}: ${text}`).toBe(404);
        expect(text).not.toContain(made[owner].digest);
      }
      // Jobs and services naming the other's uploaded data as their init input.
      expect((await call(caller, 'POST', '/v1/jobs', { function: `${caller}-pattern`, clones: 1, initData: `${owner}.bin` })).status).toBe(404);
      expect((await call(caller, 'POST', '/v1/services', { name: 'borrowed', function: `${caller}-room`, initData: `${owner}.bin` })).status).toBe(404);
      // Listings hold only the caller's own objects.
      const lists = await Promise.all(['/v1/functions', '/v1/data', '/v1/jobs', '/v1/services'].map(async (p) => (await call(caller, 'GET', p)).text()));
      // Every object of the other's is named (or owned) by a string starting with its tenant's name; a random id may hold it inside.
      for (const text of lists) expect(text).not.toContain(`"${owner}`);
    }
    for (const t of TENANTS) {
      expect((await json<{ function: { digest: string } }>(await call(t, 'GET', `/v1/functions/${t}-echo`))).function.digest).toBe(made[t].digest);
      expect((await call(t, 'GET', `/v1/data/${t}.bin`)).status).toBe(200);
      expect((await json<{ job: { state: string } }>(await call(t, 'GET', `/v1/jobs/${made[t].jobId}`))).job.state).toBe('done');
      expect((await call(t, 'GET', `/v1/jobs/${made[t].jobId}/result`)).status).toBe(200);
      const svc = await json<{ service: { max: number; instances: { id: string }[] } }>(await call(t, 'GET', `/v1/services/${t}-svc`));
      expect(svc.service.max).toBe(1);
      expect(svc.service.instances.map((i) => i.id)).toEqual([made[t].instanceId]);
      // No intruder joined the room.
      expect((await json<{ members: string[] }>(await call(t, 'GET', `/svc/${t}-svc/state`))).members).toEqual([t]);
    }
  });

  it('same names - a function deployed under another tenant\'s function name is the caller\'s own and replaces nothing', async () => {
    await json(await call('bob', 'PUT', '/v1/functions/alice-echo', guestProgram('status')), 201);
    expect((await json<{ function: { digest: string } }>(await call('alice', 'GET', '/v1/functions/alice-echo'))).function.digest).toBe(made.alice.digest);
    const res = await call('alice', 'POST', '/fn/alice-echo/mine', { who: 'alice' });
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('alice');
    await json(await call('bob', 'DELETE', '/v1/functions/alice-echo'));
    expect((await call('alice', 'GET', '/v1/functions/alice-echo')).status).toBe(200);
  });

  it('roles - a user gets 403 on drain, activate and the consolidation journal, and the host keeps its state', async () => {
    const hostId = fleet.hosts[0].ready.hostId as string;
    for (const t of TENANTS) {
      for (const [method, path] of [['POST', `/v1/hosts/${hostId}/drain`], ['POST', `/v1/hosts/${hostId}/activate`], ['GET', '/v1/consolidation']]) {
        const res = await call(t, method, path);
        expect(res.status, `${t}: ${method} ${path}`).toBe(403);
        expect(res.headers.get('x-flurry-error')).toBe('forbidden');
      }
    }
    const hosts = await json<{ hosts: { id: string; state: string }[] }>(await call('admin', 'GET', '/v1/hosts'));
    expect(hosts.hosts.find((h) => h.id === hostId)?.state).toBe('active');
    expect(await json(await call('admin', 'POST', `/v1/hosts/${hostId}/activate`))).toEqual({ activated: hostId });
    expect((await call('admin', 'GET', '/v1/consolidation')).status).toBe(200);
  });

  it('instances - a user cannot migrate another tenant\'s instance; an admin migrates any tenant\'s, and it keeps its state', async () => {
    expect((await call('alice', 'POST', `/v1/instances/${made.bob.instanceId}/migrate`, {})).status).toBe(404);
    const before = await json<{ service: { instances: { id: string; host: string }[] } }>(await call('bob', 'GET', '/v1/services/bob-svc'));
    const migration = await json<{ migration: { source: string; target: string } }>(await call('admin', 'POST', `/v1/instances/${made.bob.instanceId}/migrate`, {}));
    expect(migration.migration.source).toBe(before.service.instances[0].host);
    expect(migration.migration.target).not.toBe(migration.migration.source);
    const after = await json<{ service: { instances: { id: string; host: string }[] } }>(await call('bob', 'GET', '/v1/services/bob-svc'));
    expect(after.service.instances).toMatchObject([{ id: made.bob.instanceId, host: migration.migration.target }]);
    expect((await json<{ members: string[] }>(await call('bob', 'GET', '/svc/bob-svc/state'))).members).toEqual(['bob']);
    // An admin is a tenant of its own for everything else: it does not see a user's functions.
    expect((await call('admin', 'GET', '/v1/functions/bob-echo')).status).toBe(404);
  });

  it('hosts - a user sees capacity figures only: no tenant\'s functions, instances, parents, pids or hostnames', async () => {
    // The fleet holds both tenants' work, so there is something to leak (a migrated instance shows from its new host's next heartbeat).
    const admin = await until('the admin\'s host list to show both tenants\' functions and instances', async () => {
      const text = await (await call('admin', 'GET', '/v1/hosts')).text();
      return TENANTS.every((t) => text.includes(`${t}-echo`) && text.includes(made[t].instanceId)) ? text : undefined;
    }, 10_000);
    expect(admin).toContain(hostname());
    for (const t of TENANTS) {
      const res = await call(t, 'GET', '/v1/hosts');
      const text = await res.text();
      expect(res.status).toBe(200);
      const { hosts } = JSON.parse(text) as { hosts: Record<string, unknown>[] };
      expect(hosts).toHaveLength(2);
      for (const h of hosts) {
        expect(Object.keys(h).sort()).toEqual(['cores', 'draining', 'guestSlots', 'heartbeatAt', 'id', 'memoryBudget', 'memoryBytes', 'pager', 'releasable', 'runningGuests', 'startedAt', 'state']);
      }
      for (const name of [...TENANTS, made.alice.instanceId, made.bob.instanceId, made.alice.digest, hostname(), '"pid"', 'snapshot', 'warm']) {
        expect(text, `${t} sees ${name}`).not.toContain(name);
      }
    }
  });

  it('keys - no key, an unknown key or another scheme get 401 on every kind of route; health checks need none', async () => {
    const wrong = [{}, { authorization: `Bearer ${newApiKey()}` }, { authorization: `Basic ${Buffer.from(`alice:${KEYS.alice}`).toString('base64')}` }, { authorization: `Bearer ${KEYS.alice}x` }];
    for (const who of wrong) {
      for (const [method, path] of [['GET', '/v1/hosts'], ['GET', '/v1/functions/alice-echo'], ['POST', '/fn/alice-echo'], ['GET', `/v1/jobs/${made.alice.jobId}`], ['GET', '/svc/alice-svc/state'], ['GET', '/v1/consolidation'], ['GET', '/no/such/route']]) {
        const res = await call(who, method, path);
        expect(res.status, `${JSON.stringify(who)} ${method} ${path}`).toBe(401);
        expect(res.headers.get('x-flurry-error')).toBe('unauthorized');
      }
    }
    expect((await call({}, 'GET', '/healthz')).status).toBe(200);
    expect((await call({}, 'GET', '/readyz')).status).toBe(200);
  });

  it('start - without keys a gateway refuses to start and says how; FLURRY_AUTH=none starts with a warning; the logged configuration names no key', async () => {
    const env = { ...fleet.gatewayNatsEnv(), FLURRY_API_KEYS: '', FLURRY_API_KEYS_FILE: '', FLURRY_AUTH: '', LOG_LEVEL: 'info' };
    const refused = await startGateway({ natsUrl: fleet.natsUrl, env }).then(async (g) => {
      await g.stop();
      return 'started';
    }, (err: Error) => err.message);
    expect(refused).toMatch(/exited with code 2[\s\S]*no API keys: give FLURRY_API_KEYS_FILE or FLURRY_API_KEYS .* or set FLURRY_AUTH=none/);
    const open = await startGateway({ natsUrl: fleet.natsUrl, env: { ...env, FLURRY_AUTH: 'none' } });
    const keyed = await startGateway({ natsUrl: fleet.natsUrl, env: { ...env, FLURRY_API_KEYS: `${KEYS.alice}=alice,${KEYS.bob}=bob,${KEYS.admin}=ops:admin` } });
    try {
      expect(open.lines.join('\n')).toMatch(/"level":40,.*FLURRY_AUTH=none: no API keys, every caller is admin/);
      const log = keyed.lines.join('\n');
      expect(log).toContain('"auth":"3 keys (1 admin, 2 user)"');
      for (const key of Object.values(KEYS)) expect(log).not.toContain(key);
    } finally {
      await Promise.all([open.stop(), keyed.stop()]);
    }
  });
});
