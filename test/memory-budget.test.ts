// A host's memory budget and guest memory cap over a real fleet (a nats-server,
// the gateway and one worker host process with a 10 MiB budget and an 8 MiB
// cap on guest memory, below the gateway's 64 MiB): idle warm and kept
// parents, and page caches no clone uses (on a second host), are evicted
// least recently used first so that new work places;
// beyond what eviction frees, the caller gets no_capacity with Retry-After;
// modules declaring more memory than the host's cap are refused by the host,
// whether deployed through a gateway allowing more or written straight into
// the store; a tenant whose calls time out leaves another tenant's service
// instance and its state alone. The host process stays up and serving.
// Tenant B's calls are sent to the host on NATS as the gateway would send them
// (this fleet's gateway serves one tenant).
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  call, connectFabric, DEFAULT_TENANT, encode, forkAcross, functionKey, moduleObjectName, requestSnapshot, Subjects,
  type Fabric, type FunctionRecord, type HostRecord, type InvokeRequest, type PlaceRequest,
} from '@flurry/core';
import { LocalFleet } from '../infra/src/local-fleet.js';
import { wat } from './helpers/wat.js';
import { until } from './helpers/gateway-api.js';
import { runJob } from './helpers/jobs.js';

const MiB = 1024 * 1024;
/** Tenant A works through the gateway (its default tenant); tenant B's calls reach the host as the gateway sends them. */
const TENANT_A = DEFAULT_TENANT;
const TENANT_B = 'tenant-b';

/** A module whose memory is `pages` 64 KiB pages (maximum `max`, none when null); exports `handle`, and `run` for jobs. */
const sized = (pages: number, max: number | null = pages) => wat(`(module
  (memory (export "memory") ${pages}${max === null ? '' : ` ${max}`})
  (func (export "handle") (result i32) (i32.const 0))
  (func (export "run") (param i32 i32) (result i32) (i32.const 0)))`);

/** A stateful server: every request adds one to a counter in its memory and answers the count (4 bytes, little-endian). */
const counter = wat(`(module
  (import "flurry" "output_write" (func $out (param i32 i32)))
  (memory (export "memory") 1 1)
  (func (export "handle") (result i32)
    (i32.store (i32.const 0) (i32.add (i32.load (i32.const 0)) (i32.const 1)))
    (call $out (i32.const 0) (i32.const 4))
    (i32.const 0)))`);

/** Never returns: its calls time out, and their guest thread is torn down. */
const spinner = wat(`(module
  (memory (export "memory") 1 1)
  (func (export "handle") (result i32) (loop $l (br $l)) (i32.const 0)))`);

/** A 4 MiB parent whose init writes 3 MiB: a snapshot with pages for other hosts to cache. */
const filled = wat(`(module
  (memory (export "memory") 64 64)
  (func (export "init") (memory.fill (i32.const 0) (i32.const 7) (i32.const 3145728)))
  (func (export "run") (param i32 i32) (result i32) (i32.const 0)))`);

let fleet: LocalFleet;

function api(method: string, path: string, body?: unknown): Promise<Response> {
  const raw = body instanceof Uint8Array;
  return fetch(`${fleet.url}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': raw ? 'application/wasm' : 'application/json' },
    body: body === undefined ? undefined : raw ? (body as Uint8Array<ArrayBuffer>) : JSON.stringify(body),
  });
}

async function deploy(name: string, bytes: Uint8Array): Promise<void> {
  const res = await api('PUT', `/v1/functions/${name}`, bytes);
  expect(res.status, await res.clone().text()).toBeLessThan(300);
}

const invoke = (name: string) => api('POST', `/v1/functions/${name}/invoke`);

/** Puts a module and its function record straight into the store, as anything able to write there could. */
async function writeFunction(fabric: Fabric, tenant: string, name: string, bytes: Uint8Array): Promise<FunctionRecord> {
  const digest = createHash('sha256').update(bytes).digest('hex');
  await fabric.modules.putBlob({ name: moduleObjectName(tenant, digest) }, bytes);
  const record: FunctionRecord = { tenant, name, digest, size: bytes.length, exports: ['handle', 'run'], memory: { initialPages: 1, maximumPages: 1 }, createdAt: Date.now(), updatedAt: Date.now() };
  await fabric.functions.put(functionKey(tenant, name), encode(record));
  return record;
}

async function host(): Promise<HostRecord> {
  const { hosts } = (await (await api('GET', '/v1/hosts')).json()) as { hosts: HostRecord[] };
  expect(hosts).toHaveLength(1);
  return hosts[0];
}

const warmNames = (h: HostRecord) => h.warm.map((w) => w.name).sort();

/** The host's record once `probe` holds for it (its heartbeat carries changes within 250 ms). */
const hostWhen = (what: string, probe: (h: HostRecord) => boolean) => until(what, async () => {
  const h = await host();
  return probe(h) ? h : undefined;
}, 20_000, async () => JSON.stringify(await host()));

/** The host process is still the one started, running. */
function expectHostAlive(): void {
  expect(fleet.hosts[0].process.exitCode).toBeNull();
  expect(fleet.hosts[0].process.signalCode).toBeNull();
}

async function expectOk(res: Response): Promise<void> {
  expect(res.status, await res.clone().text()).toBe(200);
}

beforeAll(async () => {
  fleet = await LocalFleet.start({
    hosts: 1,
    hostEnv: {
      FLURRY_HOST_MEMORY_BUDGET: '10MiB', FLURRY_MAX_GUEST_MEMORY: '8MiB', FLURRY_GUEST_THREADS: '3',
      FLURRY_CALL_TIMEOUT_MS: '1500', FLURRY_HEARTBEAT_MS: '250', FLURRY_HOST_TTL_S: '4', LOG_LEVEL: 'warn',
    },
    gatewayEnv: {
      FLURRY_MAX_GUEST_MEMORY: '64MiB',
      FLURRY_HOST_TTL_S: '4', FLURRY_CONSOLIDATE_MS: '0', FLURRY_INSTANCE_LOST_MS: '0', LOG_LEVEL: 'warn',
    },
  });
  // Three functions of 4 MiB each: two fit the budget next to each other, three do not.
  for (const name of ['m1', 'm2', 'm3']) await deploy(name, sized(64));
}, 60_000);

afterAll(async () => {
  await fleet?.stop();
});

describe('memory budget', () => {
  it('record - the host reports its budget and what it holds', async () => {
    const h = await host();
    expect(h.memoryBudget).toEqual({ budgetBytes: 10 * MiB, usedBytes: 0 });
  });

  it('eviction - idle warm parents go least recently used first, and new functions still place', async () => {
    await expectOk(await invoke('m1'));
    await expectOk(await invoke('m2'));
    await hostWhen('m1 and m2 warm', (h) => warmNames(h).join() === 'm1,m2');
    // A third 4 MiB parent does not fit beside two: the least recently used (m1) goes.
    await expectOk(await invoke('m3'));
    let h = await hostWhen('m1 evicted for m3', (x) => warmNames(x).join() === 'm2,m3');
    expect(h.memoryBudget!.usedBytes).toBeLessThanOrEqual(h.memoryBudget!.budgetBytes);
    // m2 was used before m3: it goes for m1.
    await expectOk(await invoke('m1'));
    h = await hostWhen('m2 evicted for m1', (x) => warmNames(x).join() === 'm1,m3');
    expect(h.memoryBudget!.usedBytes).toBe(8 * MiB);
  });

  it('eviction - an idle kept parent of a job goes when new work needs its room', async () => {
    await deploy('j4', sized(64));
    const done = await runJob(api, { function: 'j4', clones: 2, keepParent: true }, { timeoutMs: 90_000 });
    expect(done.state, JSON.stringify(done.error)).toBe('done');
    // The job's parent took the room of the least recently used warm parent, and is kept idle after it.
    let h = await hostWhen('the kept parent idle', (x) => x.parents?.length === 1 && x.parents[0].idleSince !== undefined);
    expect(h.parents![0]).toMatchObject({ function: 'j4', holders: 0 });
    // Two more warm parents: the older of what is idle goes each time, the kept parent among them.
    await expectOk(await invoke('m2'));
    await expectOk(await invoke('m3'));
    h = await hostWhen('the kept parent evicted', (x) => (x.parents?.length ?? 0) === 0 && warmNames(x).join() === 'm2,m3');
    expect(h.memoryBudget!.usedBytes).toBeLessThanOrEqual(10 * MiB);
  });

  it('no room - what is in use is never evicted: beyond it the caller gets 503 no_capacity with Retry-After; the host serves on', async () => {
    // A service instance of m1 holds its 4 MiB and its parent's 4 MiB: neither may be evicted.
    const created = await api('POST', '/v1/services', { name: 'big', function: 'm1', min: 1 });
    expect(created.status, await created.clone().text()).toBe(201);
    await hostWhen('the instance of big', (h) => (h.instances?.length ?? 0) === 1);
    await expectOk(await api('GET', '/svc/big/'));
    // The idle parents m2 and m3 made room for it; another 4 MiB parent does not fit beside what is in use.
    const refused = await invoke('m2');
    expect(refused.status, await refused.clone().text()).toBe(503);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(((await refused.json()) as { error: { code: string; message: string } }).error).toMatchObject({ code: 'no_capacity', message: expect.stringContaining('memory budget') });
    // The instance, and new work that fits, go on.
    expectHostAlive();
    await expectOk(await api('GET', '/svc/big/'));
    await deploy('tiny', sized(1));
    await expectOk(await invoke('tiny'));
    const h = await host();
    expect(h.memoryBudget!.usedBytes).toBeLessThanOrEqual(10 * MiB);
    // Its room freed, the refused function places.
    expect((await api('DELETE', '/v1/services/big')).status).toBeLessThan(300);
    await hostWhen('the instance gone', (x) => (x.instances?.length ?? 0) === 0);
    await expectOk(await invoke('m2'));
  });
});

describe('guest memory cap on the host', () => {
  it('deploy - a module within the gateway\'s cap but over the host\'s is refused by the host when it would run', async () => {
    await deploy('wide', sized(1, 256));
    const res = await invoke('wide');
    expect(res.status).toBe(400);
    const { error } = (await res.json()) as { error: { code: string; message: string } };
    expect(error.code).toBe('invalid_module');
    expect(error.message).toContain('FLURRY_MAX_GUEST_MEMORY');
    expectHostAlive();
  });

  it('store - modules written straight into the store (no maximum; a maximum over the cap) are refused by the host', async () => {
    const fabric = await connectFabric({ servers: [fleet.natsUrl], name: 'memory-budget-test', hostTtlSeconds: 4, auth: fleet.credentials?.admin });
    try {
      for (const [name, bytes, reason] of [['no-max', sized(1, null), 'declares no maximum'], ['huge', sized(1, 16384), 'exceeds']] as const) {
        await writeFunction(fabric, TENANT_A, name, bytes);
        const res = await invoke(name);
        expect(res.status).toBe(400);
        const { error } = (await res.json()) as { error: { code: string; message: string } };
        expect(error).toMatchObject({ code: 'invalid_module', message: expect.stringContaining(reason) });
      }
    } finally {
      await fabric.close();
    }
    expectHostAlive();
    await expectOk(await invoke('m3'));
  });
});

describe('tenants and guest threads', () => {
  it('isolation - tenant B\'s calls timing out on every thread they may use leave tenant A\'s service instance and its state alone', async () => {
    await deploy('counter', counter);
    const fabric = await connectFabric({ servers: [fleet.natsUrl], name: 'memory-budget-test', hostTtlSeconds: 4, auth: fleet.credentials?.admin });
    const hostId = (await host()).id;
    const created = await api('POST', '/v1/services', { name: 'ctr', function: 'counter', min: 1 });
    expect(created.status, await created.clone().text()).toBe(201);
    const count = async () => {
      const res = await api('POST', '/svc/ctr/');
      expect(res.status, await res.clone().text()).toBe(200);
      return { n: Buffer.from(await res.arrayBuffer()).readUInt32LE(0), instance: res.headers.get('x-flurry-instance') };
    };
    for (let i = 1; i <= 3; i++) expect((await count()).n).toBe(i);
    const before = await count();
    expect(before.n).toBe(4);
    try {
      const fn = await writeFunction(fabric, TENANT_B, 'spinner', spinner);
      const place: PlaceRequest = { requestId: 'place-spinner', tenant: TENANT_B, name: fn.name, digest: fn.digest };
      expect(await call(fabric.nc, 'place', Subjects.place(hostId), place, { timeoutMs: 10_000 })).toMatchObject({ ok: true });
      // As many spinning calls as the host has threads: each times out and tears its thread down.
      const spinCall = (i: number): InvokeRequest => ({ requestId: `spin-${i}`, tenant: TENANT_B, name: fn.name, digest: fn.digest, method: 'POST', path: '/', query: '', headers: [], body: new Uint8Array(0) });
      const replies = await Promise.all([0, 1, 2].map((i) => call(fabric.nc, 'invoke', Subjects.invoke(TENANT_B, fn.name, fn.digest), spinCall(i), { timeoutMs: 20_000 })));
      for (const r of replies) expect(r).toMatchObject({ ok: false, error: { code: 'timeout' } });
    } finally {
      await fabric.close();
    }
    const after = await count();
    expect(after).toEqual({ n: 5, instance: before.instance });
    expectHostAlive();
  });
});

describe('page caches', () => {
  it('eviction - a page cache no clone uses goes for room, least recently used first', async () => {
    await deploy('filled', filled);
    const fn = ((await (await api('GET', '/v1/functions/filled')).json()) as { function: FunctionRecord }).function;
    const parentHost = (await host()).id;
    await fleet.addHost('memory-budget-h2');
    const hostById = async (id: string) => ((await (await api('GET', '/v1/hosts')).json()) as { hosts: HostRecord[] }).hosts.find((h) => h.id === id);
    await until('the second host', () => hostById('memory-budget-h2'), 20_000);
    const fabric = await connectFabric({ servers: [fleet.natsUrl], name: 'memory-budget-test', hostTtlSeconds: 4, auth: fleet.credentials?.admin });
    try {
      // Its parent here, its clones on the new host: that host caches the parent's pages.
      const made = await requestSnapshot(fabric.nc, parentHost, { requestId: 'filled-parent', tenant: TENANT_A, name: 'filled', digest: fn.digest, initInput: new Uint8Array(0), keep: true });
      const forked = await forkAcross(fabric.nc, { requestId: 'filled-fork', descriptor: made.descriptor, placement: new Map([['memory-budget-h2', [0, 1]]]), count: 2 });
      expect(forked.results.map((r) => r.ok)).toEqual([true, true]);
      await until('the page cache', async () => ((await hostById('memory-budget-h2'))?.pageCaches ?? []).includes(made.snapshotId) || undefined, 20_000);
      // Three 4 MiB parents placed there: the page cache, used least recently, goes first.
      for (const name of ['m1', 'm2', 'm3']) {
        const record = ((await (await api('GET', `/v1/functions/${name}`)).json()) as { function: FunctionRecord }).function;
        const place: PlaceRequest = { requestId: `place-${name}`, tenant: TENANT_A, name, digest: record.digest };
        expect(await call(fabric.nc, 'place', Subjects.place('memory-budget-h2'), place, { timeoutMs: 10_000 })).toMatchObject({ ok: true });
      }
      const h2 = await until('the page cache evicted', async () => {
        const h = await hostById('memory-budget-h2');
        return h && (h.pageCaches ?? []).length === 0 && warmNames(h).join() === 'm2,m3' ? h : undefined;
      }, 20_000, async () => JSON.stringify(await hostById('memory-budget-h2')));
      expect(h2.memoryBudget!.usedBytes).toBeLessThanOrEqual(10 * MiB);
    } finally {
      await fabric.close();
    }
  });
});
