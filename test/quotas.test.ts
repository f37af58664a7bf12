// Per-tenant quotas and store byte limits over a real fleet: a nats-server, a
// gateway with two tenants' API keys and one host. Each quota is tried by
// tenant A as an attack would (more calls, jobs, instances and bytes than it
// may have) while tenant B, below its own quotas, is served throughout.
import { request, type ClientRequest } from 'node:http';
import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_STORE_MAX_BYTES, dataStoreName, JobObjects, JobOutputObjects, ObjectStores, fitStream, type JobRecord, type StoreContext } from '@flurry/core';
import { LocalFleet } from '../infra/src/local-fleet.js';
import { guestProgram } from './helpers/functions.js';
import { json, until } from './helpers/gateway-api.js';
import { finishedJob } from './helpers/jobs.js';
import { wat } from './helpers/wat.js';

const KEY_A = 'quota-key-tenant-a';
const KEY_B = 'quota-key-tenant-b';
const MiB = 1024 * 1024;
/** This fleet's quotas: small enough to reach in a test. Concurrent calls keep their default, 64. */
const RUNNING_JOBS = 2;
const RUNNING_CLONES = 8;
const SERVICE_INSTANCES = 3;
const DATA_BYTES = 1 * MiB;
/** The modules store is made small, so that one deploy can fill it; one limit set below its default shows the override. */
const MODULES_BYTES = 1 * MiB;
const JOB_KEYS_BYTES = 32 * MiB;
/** The results stream is made small too, so that a job's outputs can fill it. */
const RESULTS_BYTES = 1 * MiB;
/** Requests a second per tenant, and the burst: the rest of this file sends far fewer. */
const RATE = 50;
const BURST = 300;

type Tenant = 'a' | 'b';
const keyOf = (t: Tenant) => (t === 'a' ? KEY_A : KEY_B);

let fleet: LocalFleet;
let nc: Awaited<ReturnType<typeof connect>>;
let jsm: JetStreamManager;

function api(tenant: Tenant, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Response> {
  const h: Record<string, string> = { authorization: `Bearer ${keyOf(tenant)}`, ...headers };
  let payload: BodyInit | undefined;
  if (body instanceof Uint8Array) payload = body as Uint8Array<ArrayBuffer>;
  else if (body !== undefined) {
    h['content-type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  return fetch(`${fleet.url}${path}`, { method, headers: h, body: payload });
}

/** The platform error of an answer, once its status is `status`. */
async function refusal(res: Response, status: number): Promise<{ code: string; message: string; retryAfter: string | null }> {
  const body = await json<{ error: { code: string; message: string } }>(res, status);
  expect(res.headers.get('x-flurry-error')).toBe(body.error.code);
  return { ...body.error, retryAfter: res.headers.get('retry-after') };
}

interface HeldCall {
  /** Sends the body; the call then completes. */
  finish(): Promise<{ status: number; text: string }>;
}

/**
 * A call whose body is held back: it asks `Expect: 100-continue` and sends
 * nothing until `finish`. The gateway answers 100 Continue in the same turn in
 * which it takes the call's slot, so once `continue` is here the call holds a
 * slot, and any request sent after it is counted after it.
 */
function holdCall(path: string, tenant: Tenant): Promise<HeldCall> {
  const body = 'held';
  return new Promise((resolve, reject) => {
    const req: ClientRequest = request(`${fleet.url}${path}`, {
      method: 'POST',
      agent: false,
      headers: { authorization: `Bearer ${keyOf(tenant)}`, 'content-type': 'text/plain', 'content-length': String(body.length), expect: '100-continue' },
    });
    const answered = new Promise<{ status: number; text: string }>((done, failed) => {
      req.on('response', (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => done({ status: res.statusCode ?? 0, text }));
        res.on('error', failed);
      });
      req.on('error', failed);
    });
    // An answer before the body was sent (a refusal) ends the wait at once.
    answered.then((a) => reject(new Error(`answered ${a.status} before its body was sent: ${a.text}`)), reject);
    req.on('continue', () => resolve({ finish: () => (req.end(body), answered) }));
    req.flushHeaders();
  });
}

/** A module over `bytes` long (a data segment of that size): more than the modules store takes. */
function bigModule(bytes: number): Uint8Array {
  const pages = Math.ceil(bytes / 65536) + 1;
  return wat(`(module
    (memory (export "memory") ${pages} ${pages})
    (data (i32.const 0) "${'x'.repeat(bytes)}")
    (func (export "handle") (result i32) (i32.const 0)))`);
}

async function submitJob(tenant: Tenant, body: Record<string, unknown>): Promise<Response> {
  return api(tenant, 'POST', '/v1/jobs', body);
}

async function jobState(tenant: Tenant, id: string): Promise<JobRecord> {
  return (await json<{ job: JobRecord }>(await api(tenant, 'GET', `/v1/jobs/${id}`))).job;
}

beforeAll(async () => {
  fleet = await LocalFleet.start({
    hosts: 1,
    apiKey: KEY_A,
    // Hosts create the shared stores too: they read the same table.
    env: { FLURRY_STORE_MAX_BYTES: `flurry_modules=${MODULES_BYTES},flurry_job_keys=${JOB_KEYS_BYTES},FLURRY_RESULTS=${RESULTS_BYTES}` },
    hostEnv: { FLURRY_GUEST_THREADS: '2', LOG_LEVEL: 'warn' },
    gatewayEnv: {
      FLURRY_API_KEYS: `${KEY_A}=tenant-a,${KEY_B}=tenant-b`,
      FLURRY_QUOTA_RUNNING_JOBS: String(RUNNING_JOBS),
      FLURRY_QUOTA_RUNNING_CLONES: String(RUNNING_CLONES),
      FLURRY_QUOTA_SERVICE_INSTANCES: String(SERVICE_INSTANCES),
      FLURRY_QUOTA_DATA_BYTES: String(DATA_BYTES),
      FLURRY_QUOTA_REQUESTS_PER_S: String(RATE),
      FLURRY_QUOTA_REQUESTS_BURST: String(BURST),
      LOG_LEVEL: 'warn',
    },
  });
  nc = await connect(fleet.adminConnectOptions());
  jsm = await jetstreamManager(nc);
  for (const t of ['a', 'b'] as const) {
    for (const name of ['echo', 'spin', 'pattern', 'big-output']) expect((await api(t, 'PUT', `/v1/functions/${name}`, guestProgram(name))).status).toBe(201);
  }
});

afterAll(async () => {
  await nc?.close();
  await fleet?.stop();
});

describe('quotas - concurrent calls', () => {
  it('the 65th concurrent call of tenant A (limit 64) gets 429 with Retry-After; tenant B is served meanwhile; A\'s 64 all succeed', async () => {
    // Warm the function for both tenants, and a service of A, so that held calls only wait for their bodies.
    for (const t of ['a', 'b'] as const) expect((await api(t, 'POST', '/fn/echo/warm', new TextEncoder().encode('warm'))).status).toBe(200);
    await json(await api('a', 'POST', '/v1/services', { name: 'calls', function: 'echo', min: 1, max: 1 }), 201);
    expect((await api('a', 'POST', '/svc/calls/warm', new TextEncoder().encode('warm'))).status).toBe(200);
    const routes = [(i: number) => `/fn/echo/held-${i}`, (i: number) => `/v1/functions/echo/invoke?path=/held-${i}`, (i: number) => `/svc/calls/held-${i}`];
    const held: HeldCall[] = [];
    try {
      // A third each on /fn, the invoke route and /svc: all three count.
      for (let i = 0; i < 64; i++) held.push(await holdCall(routes[i % 3](i), 'a'));
      const over = await refusal(await api('a', 'POST', '/fn/echo/one-too-many', new TextEncoder().encode('x')), 429);
      expect(over.code).toBe('rate_limited');
      expect(over.message).toMatch(/64 calls in flight/);
      expect(Number(over.retryAfter)).toBeGreaterThanOrEqual(1);

      const b = await api('b', 'POST', '/fn/echo/from-b', new TextEncoder().encode('b'));
      expect(b.status).toBe(200);
      expect(((await b.json()) as { body: string }).body).toBe('b');
    } finally {
      const answers = await Promise.all(held.map((h) => h.finish()));
      expect(answers.map((a) => a.status)).toEqual(new Array(held.length).fill(200));
      for (const a of answers) expect((JSON.parse(a.text) as { body: string }).body).toBe('held');
    }
    // Every slot was given back.
    expect((await api('a', 'POST', '/fn/echo/after', new TextEncoder().encode('after'))).status).toBe(200);
    expect((await api('a', 'DELETE', '/v1/services/calls')).status).toBe(200);
  });
});

describe('quotas - running jobs and clones', () => {
  it('a job with more clones than tenant A may run is refused with 429', async () => {
    const err = await refusal(await submitJob('a', { function: 'pattern', clones: RUNNING_CLONES + 1 }), 429);
    expect(err.code).toBe('rate_limited');
    expect(err.message).toMatch(/FLURRY_QUOTA_RUNNING_CLONES/);
  });

  it('the job past the running-jobs quota is refused with 429 and Retry-After, accepted once one has finished; tenant B is not refused', async () => {
    const short = await json<{ job: JobRecord }>(await submitJob('a', { function: 'spin', clones: 1, timeoutMs: 3000, retries: 0 }), 202);
    const long = await json<{ job: JobRecord }>(await submitJob('a', { function: 'spin', clones: 1, timeoutMs: 120_000, retries: 0 }), 202);
    const started: string[] = [];
    try {
      const err = await refusal(await submitJob('a', { function: 'pattern', clones: 1 }), 429);
      expect(err.code).toBe('rate_limited');
      expect(err.message).toMatch(/2 jobs running/);
      expect(Number(err.retryAfter)).toBeGreaterThanOrEqual(1);

      const fromB = await json<{ job: JobRecord }>(await submitJob('b', { function: 'pattern', clones: 2 }), 202);
      expect((await finishedJob((...request) => api('b', ...request), fromB.job.id, { timeoutMs: 90_000 })).state).toBe('done');

      // The short job's clone runs past its 3 s limit: the job fails, and A may run another.
      await until(`job ${short.job.id} to fail`, async () => {
        const s = (await jobState('a', short.job.id)).state;
        expect(['queued', 'running', 'failed']).toContain(s);
        return s === 'failed' ? true : undefined;
      }, 90_000);
      // This gateway learns of the end from its watch of the job records, a moment after the record says so.
      const third = await until('a third job of A to be accepted', async () => {
        const res = await submitJob('a', { function: 'pattern', clones: 1 });
        if (res.status === 429) return undefined;
        return json<{ job: JobRecord }>(res, 202);
      }, 10_000);
      started.push(third.job.id);
    } finally {
      for (const id of [long.job.id, ...started]) await api('a', 'DELETE', `/v1/jobs/${id}`);
    }
  });
});

describe('quotas - service instances', () => {
  it('the sum of a tenant\'s service max may not pass its quota: create and raise are refused with 403, lowering is allowed; B has its own', async () => {
    // min 0: the services hold no instance, so the test needs no guest threads.
    await json(await api('a', 'POST', '/v1/services', { name: 'one', function: 'echo', min: 0, max: 2 }), 201);
    const err = await refusal(await api('a', 'POST', '/v1/services', { name: 'two', function: 'echo', min: 0, max: 2 }), 403);
    expect(err.code).toBe('quota_exceeded');
    expect(err.message).toMatch(/FLURRY_QUOTA_SERVICE_INSTANCES/);
    expect(err.retryAfter).toBeNull();
    expect((await api('a', 'GET', '/v1/services/two')).status).toBe(404);

    await json(await api('a', 'POST', '/v1/services', { name: 'two', function: 'echo', min: 0, max: 1 }), 201);
    expect((await refusal(await api('a', 'PATCH', '/v1/services/one', { max: 3 }), 403)).code).toBe('quota_exceeded');
    await json(await api('a', 'PATCH', '/v1/services/one', { max: 1 }), 200);
    await json(await api('a', 'PATCH', '/v1/services/two', { max: 2 }), 200);

    await json(await api('b', 'POST', '/v1/services', { name: 'one', function: 'echo', min: 0, max: SERVICE_INSTANCES }), 201);
    for (const [t, name] of [['a', 'one'], ['a', 'two'], ['b', 'one']] as const) expect((await api(t, 'DELETE', `/v1/services/${name}`)).status).toBe(200);
  });
});

describe('quotas - stored data', () => {
  const bytes = (n: number, fill: number) => new Uint8Array(n).fill(fill);

  it('uploads past the data quota are refused with 403, by Content-Length and by the bytes of a chunked body; B has its own; a delete makes room', async () => {
    await json(await api('a', 'PUT', '/v1/data/first', bytes(600 * 1024, 1)), 201);

    const declared = await refusal(await api('a', 'PUT', '/v1/data/second', bytes(600 * 1024, 2)), 403);
    expect(declared.code).toBe('quota_exceeded');
    expect(declared.message).toMatch(/FLURRY_QUOTA_DATA_BYTES/);

    // A body without Content-Length is cut off when it passes the room left.
    const chunks = [bytes(300 * 1024, 3), bytes(300 * 1024, 3)];
    const chunked = new ReadableStream<Uint8Array>({ pull(c) { const next = chunks.shift(); if (next) c.enqueue(next); else c.close(); } });
    const res = await fetch(`${fleet.url}/v1/data/second`, { method: 'PUT', headers: { authorization: `Bearer ${KEY_A}` }, body: chunked, duplex: 'half' } as RequestInit);
    expect((await refusal(res, 403)).code).toBe('quota_exceeded');
    // Nothing of the refused uploads was kept.
    const listed = await json<{ data: { name: string }[] }>(await api('a', 'GET', '/v1/data'));
    expect(listed.data.map((d) => d.name)).toEqual(['first']);

    await json(await api('b', 'PUT', '/v1/data/first', bytes(600 * 1024, 4)), 201);

    expect((await api('a', 'DELETE', '/v1/data/first')).status).toBe(200);
    await json(await api('a', 'PUT', '/v1/data/second', bytes(600 * 1024, 2)), 201);
  });

  it('each tenant\'s data store has a byte limit of its quota plus room for chunk headers', async () => {
    for (const tenant of ['tenant-a', 'tenant-b']) {
      const info = await jsm.streams.info(`OBJ_${dataStoreName(tenant)}`);
      expect(info.config.max_bytes).toBeGreaterThanOrEqual(DATA_BYTES);
      expect(info.config.max_bytes).toBeLessThanOrEqual(DATA_BYTES + 8 * MiB);
    }
  });
});

describe('quotas - request rate', () => {
  it('a tenant sending faster than its rate gets 429 with Retry-After past its burst; the other tenant is served', async () => {
    // 32 at a time, far faster than the 50 a second that refill the bucket, until one is refused (at most 20 bursts' worth).
    const statuses: number[] = [];
    let limited: Response | undefined;
    while (!limited && statuses.length < 20 * BURST) {
      for (const res of await Promise.all(Array.from({ length: 32 }, () => api('b', 'GET', '/v1/functions')))) {
        statuses.push(res.status);
        if (res.status === 429) limited ??= res;
        else await res.arrayBuffer();
      }
    }
    expect(limited, `no refusal in ${statuses.length} requests`).toBeDefined();
    expect(statuses.every((s) => s === 200 || s === 429)).toBe(true);
    // The burst went through first (B sent only a few requests in the seconds before this test).
    expect(statuses.indexOf(429)).toBeGreaterThanOrEqual(BURST / 2);
    const err = await refusal(limited!, 429);
    expect(err.code).toBe('rate_limited');
    expect(err.message).toMatch(/FLURRY_QUOTA_REQUESTS_PER_S/);
    expect(Number(err.retryAfter)).toBeGreaterThanOrEqual(1);
    expect((await api('a', 'GET', '/v1/functions')).status).toBe(200);
  });
});

describe('store limits', () => {
  const objectStores = new Set<string>([ObjectStores.modules, JobObjects, JobOutputObjects]);
  const streamOf = (name: string) => (name.startsWith('FLURRY_') ? name : objectStores.has(name) ? `OBJ_${name}` : `KV_${name}`);
  const configured: Record<string, number> = { flurry_modules: MODULES_BYTES, flurry_job_keys: JOB_KEYS_BYTES, FLURRY_RESULTS: RESULTS_BYTES };
  const expected = (name: string) => configured[name] ?? DEFAULT_STORE_MAX_BYTES[name as keyof typeof DEFAULT_STORE_MAX_BYTES];

  it('every bucket, object store and stream reports its configured max_bytes', async () => {
    for (const name of Object.keys(DEFAULT_STORE_MAX_BYTES)) {
      const info = await jsm.streams.info(streamOf(name));
      expect({ name, maxBytes: info.config.max_bytes }).toEqual({ name, maxBytes: expected(name) });
    }
  });

  it('a store left with another limit gets the configured one back when a gateway starts', async () => {
    const before = await jsm.streams.info('FLURRY_RESULTS');
    await jsm.streams.update('FLURRY_RESULTS', { ...before.config, max_bytes: 5 * MiB });
    expect((await jsm.streams.info('FLURRY_RESULTS')).config.max_bytes).toBe(5 * MiB);
    await fleet.restartGateway({ hard: false });
    expect((await jsm.streams.info('FLURRY_RESULTS')).config.max_bytes).toBe(RESULTS_BYTES);
  });

  it('a limit is never lowered below what a store holds (JetStream would delete the oldest messages); raising it works', async () => {
    await jsm.streams.add({ name: 'QUOTA_PROBE', subjects: ['quota.probe.>'], max_bytes: 8 * MiB });
    const js = jetstream(nc);
    for (let i = 0; i < 12; i++) await js.publish(`quota.probe.${i}`, new Uint8Array(256 * 1024));
    const warnings: string[] = [];
    const ctx: StoreContext = { nc, jsm, storeLimits: { ...DEFAULT_STORE_MAX_BYTES }, replicas: 1, warn: (_fields, message) => warnings.push(message) };

    await fitStream(ctx, 'QUOTA_PROBE', 2 * MiB);
    const kept = await jsm.streams.info('QUOTA_PROBE');
    expect(kept.config.max_bytes).toBe(8 * MiB);
    expect(kept.state.messages).toBe(12);
    expect(warnings).toEqual([expect.stringMatching(/holds more than its configured limit/)]);

    await fitStream(ctx, 'QUOTA_PROBE', 16 * MiB);
    expect((await jsm.streams.info('QUOTA_PROBE')).config.max_bytes).toBe(16 * MiB);
    await jsm.streams.delete('QUOTA_PROBE');
  });

  it('a deploy into a full modules store is refused with 507 storage_full, not 500; the fleet still serves', async () => {
    const err = await refusal(await api('a', 'PUT', '/v1/functions/huge', bigModule(MODULES_BYTES + 256 * 1024)), 507);
    expect(err.code).toBe('storage_full');
    expect(err.message).toMatch(/maximum bytes exceeded/);
    expect((await api('a', 'GET', '/v1/functions/huge')).status).toBe(404);
    expect((await api('b', 'POST', '/fn/echo/still', new TextEncoder().encode('still'))).status).toBe(200);
  });

  it('a job whose results do not fit the results stream fails with storage_full, never done without them', async () => {
    // Four outputs of 400,000 bytes (each small enough to go into the stream itself): the stream takes two.
    const job = await json<{ job: JobRecord }>(await submitJob('b', { function: 'big-output', clones: 4, input: Buffer.from('400000').toString('base64'), retries: 0, reduce: false, timeoutMs: 120_000 }), 202);
    const ended = await finishedJob((...request) => api('b', ...request), job.job.id);
    expect(ended.state, JSON.stringify(ended.error)).toBe('failed');
    expect(ended.error?.code).toBe('storage_full');
    expect(ended.error?.message).toMatch(/FLURRY_RESULTS is full/);
    const results = await jsm.streams.info('FLURRY_RESULTS');
    expect(results.state.bytes).toBeLessThanOrEqual(RESULTS_BYTES);
  });
});
