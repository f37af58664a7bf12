/**
 * Tenants and guest threads: persistent instances live on instance threads
 * of their own, one tenant's each, apart from the call threads; so a call
 * timing out (which tears its thread down) destroys no instance, and an
 * instance's request timing out destroys only instances of its own tenant.
 * FLURRY_MAX_GUEST_MEMORY and the memory budget hold in the pool itself.
 */
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, FlurryError } from '@flurry/core';
import { wat } from '../../../test/helpers/wat.js';
import { MemoryBudget } from '../memory-budget.js';
import { GuestPool, type CallResult, type HttpRequestData } from './guest-pool.js';
import { INSTANCES_PER_THREAD, NO_INSTANCE_THREAD_RETRY_AFTER_S } from './instance-threads.js';

const BUILD = new URL('../../../functions/build/', import.meta.url);
const missing = ['room', 'spin'].filter((name) => !existsSync(new URL(`${name}.wasm`, BUILD)));
const program = (name: string) => new Uint8Array(readFileSync(new URL(`${name}.wasm`, BUILD)));
const bytes = (s: string) => new TextEncoder().encode(s);
const json = (r: CallResult) => JSON.parse(new TextDecoder().decode(r.body)) as Record<string, any>;
const MiB = 1024 * 1024;
const limits = { callTimeoutMs: 1500, initTimeoutMs: 30_000, maxOutputBytes: 4 * MiB, maxLogLines: 64, maxLogBytes: 65536 };
const log = createLogger('test', {}, 'silent');

function req(method: string, path: string, body?: unknown): HttpRequestData {
  return { method, path, query: '', headers: [], body: body === undefined ? new Uint8Array(0) : bytes(JSON.stringify(body)) };
}

/** A minimal function module whose memory declares `initial` and `maximum` pages (no maximum when undefined). */
const withMemory = (initial: number, maximum?: number) =>
  wat(`(module (memory (export "memory") ${initial}${maximum === undefined ? '' : ` ${maximum}`}) (func (export "handle") (result i32) (i32.const 0)))`);

/** Warms a room and a spin parent for each tenant: keys `<tenant>.room` and `<tenant>.spin`. */
async function warmTenants(pool: GuestPool, tenants: string[]): Promise<void> {
  await Promise.all(tenants.flatMap((t) => [pool.warm(`${t}.room`, program('room'), new Uint8Array(0), undefined, t), pool.warm(`${t}.spin`, program('spin'), new Uint8Array(0), undefined, t)]));
}

describe.skipIf(missing.length > 0)('guest threads and tenants (2 call threads)', () => {
  let pool: GuestPool;
  let n = 0;
  const call = (id: string, method: string, path: string, body?: unknown) => pool.instanceHandle(id, req(method, path, body), `c${n++}`);
  const ids = () => pool.instances().map((i) => i.instanceId);
  /** An instance of `tenant`'s room with some state, and that state. */
  const roomWithState = async (tenant: string) => {
    const id = await pool.createInstance(`${tenant}.room`);
    await call(id, 'POST', '/join', { name: tenant });
    await call(id, 'POST', '/say', { name: tenant, text: 'kept' });
    return { id, state: json(await call(id, 'GET', '/state')) };
  };

  beforeAll(async () => {
    // A host as test fleets and `npm start` on two cores run it: two call threads, instance threads by default.
    pool = await GuestPool.start({ threads: 2, limits, log, pager: 'portable' });
    await warmTenants(pool, ['a', 'b', 'c']);
  });
  afterEach(() => {
    for (const id of ids()) pool.destroyInstance(id);
  });
  afterAll(() => pool?.close());

  it('placement - two and then three tenants each hold instances, each on threads of its own apart from the call threads', async () => {
    const a = await roomWithState('a');
    const b = await roomWithState('b');
    expect(pool.instanceThreadCount).toBe(2);
    const c = await roomWithState('c');
    expect(pool.instanceThreadCount).toBe(3);
    expect(pool.size).toBe(2);
    for (const { id, state } of [a, b, c]) expect(json(await call(id, 'GET', '/state'))).toEqual(state);
  });

  it('placement - tenants asking at once each get a thread of their own (the one started ahead, then new ones)', async () => {
    const made = await Promise.all(['a', 'b', 'c', 'a', 'b', 'c'].map((t) => pool.createInstance(`${t}.room`)));
    expect(pool.instanceThreadCount).toBe(3);
    // Each instance is its own: a member joined in one is in no other.
    await Promise.all(made.map((id, i) => call(id, 'POST', '/join', { name: `m${i}` })));
    for (const [i, id] of made.entries()) expect(json(await call(id, 'GET', '/state')).members).toEqual([`m${i}`]);
  });

  it('isolation - calls of a tenant timing out on every call thread destroy no instance', async () => {
    const a = await roomWithState('a');
    const b = await roomWithState('b');
    // More spinning calls than call threads: every call thread is torn down at least once.
    const spins = Array.from({ length: 3 }, (_, i) => pool.handle('b.spin', req('POST', '/'), `spin${i}`));
    for (const s of spins) await expect(s).rejects.toMatchObject({ code: 'timeout' });
    expect(ids().sort()).toEqual([a.id, b.id].sort());
    expect(json(await call(a.id, 'GET', '/state'))).toEqual(a.state);
    expect(json(await call(b.id, 'GET', '/state'))).toEqual(b.state);
    // The call threads were replaced: calls go on.
    expect(json(await pool.handle('a.room', req('GET', '/state'), 'after')).seq).toBe(0);
  });

  it('isolation - an instance timing out destroys the instances of its own tenant\'s thread, never another tenant\'s', async () => {
    const a = await roomWithState('a');
    const b = await roomWithState('b');
    // B's spinning instance shares B's thread with B's room (a tenant's instances share its thread).
    const spin = await pool.createInstance('b.spin');
    expect(pool.instanceThreadCount).toBe(2);
    await expect(pool.instanceHandle(spin, req('POST', '/'), 'spin-instance')).rejects.toMatchObject({ code: 'timeout', message: expect.stringContaining(`instance ${spin}`) });
    expect(ids()).toEqual([a.id]);
    await expect(call(b.id, 'GET', '/state')).rejects.toMatchObject({ code: 'not_found' });
    expect(json(await call(a.id, 'GET', '/state'))).toEqual(a.state);
    // B's thread ended with its instances and is not replaced; B's next instance starts one again.
    expect(pool.instanceThreadCount).toBe(1);
    const again = await pool.createInstance('b.room');
    expect(json(await call(again, 'GET', '/state')).seq).toBe(0);
    expect(pool.instanceThreadCount).toBe(2);
  });

  it(`placement - a tenant's instances share a thread up to ${INSTANCES_PER_THREAD}, then it gets another`, async () => {
    const rooms = [];
    for (let i = 0; i < INSTANCES_PER_THREAD; i++) rooms.push((await roomWithState('a')).id);
    expect(pool.instanceThreadCount).toBe(1);
    // The next one (a spinner) goes to a second thread of A's: its timeout leaves the first thread's rooms.
    const spin = await pool.createInstance('a.spin');
    expect(pool.instanceThreadCount).toBe(2);
    await expect(pool.instanceHandle(spin, req('POST', '/'), 'spin-a')).rejects.toMatchObject({ code: 'timeout' });
    expect(ids().sort()).toEqual([...rooms].sort());
    expect(pool.instanceThreadCount).toBe(1);
  });

  it('reserve - a thread kept for a tenant takes its next instance; released, it stops once empty', async () => {
    const release = pool.reserveInstanceThread('a');
    expect(pool.instanceThreadCount).toBe(1);
    // The instance goes to the kept thread: no other thread is taken or started for it.
    const a = await pool.createInstance('a.room');
    expect(pool.instanceThreadCount).toBe(1);
    release();
    release();
    expect(pool.instanceThreadCount).toBe(1);
    expect(json(await call(a, 'GET', '/state')).seq).toBe(0);
    pool.destroyInstance(a);
    expect(pool.instanceThreadCount).toBe(0);
    // Kept and released with no instance ever placed: it stops at once.
    pool.reserveInstanceThread('b')();
    expect(pool.instanceThreadCount).toBe(0);
  });

  it('stop - an instance thread stops once it holds no instance, even after a request in progress', async () => {
    const a = await pool.createInstance('a.room');
    const b = await pool.createInstance('b.room');
    expect(pool.instanceThreadCount).toBe(2);
    pool.destroyInstance(a);
    expect(pool.instanceThreadCount).toBe(1);
    // Destroyed while a request runs: the request is answered, then the thread stops.
    const running = call(b, 'POST', '/churn', { bytes: 1_000_000 });
    pool.destroyInstance(b);
    await running.then(() => undefined, () => undefined);
    expect(pool.instanceThreadCount).toBe(0);
    expect(pool.running).toBe(0);
    // Calls still run on the call threads.
    expect(json(await pool.handle('b.room', req('GET', '/state'), 'calls')).seq).toBe(0);
  });
});

describe.skipIf(missing.length > 0)('instance threads at their limit', () => {
  let pool: GuestPool;

  beforeAll(async () => {
    pool = await GuestPool.start({ threads: 1, instanceThreads: 2, limits, log, pager: 'portable' });
    await warmTenants(pool, ['a', 'b', 'c']);
  });
  afterAll(() => pool?.close());

  it('limit - a third tenant gets no_capacity with a retry hint; the others still fit their threads; a thread that empties makes room', async () => {
    const a = await pool.createInstance('a.room');
    const b = await pool.createInstance('b.room');
    const refused = await pool.createInstance('c.room').then(() => undefined, (e: unknown) => e);
    expect(refused).toBeInstanceOf(FlurryError);
    expect(refused).toMatchObject({ code: 'no_capacity', retryAfterSeconds: NO_INSTANCE_THREAD_RETRY_AFTER_S, message: expect.stringMatching(/instance threads \(2, FLURRY_INSTANCE_THREADS\)/) });
    // Receiving a migrating instance is placed the same way.
    await expect(pool.receiveInstance('c.room', { memoryBytes: MiB })).rejects.toMatchObject({ code: 'no_capacity' });
    // A tenant with a thread here adds instances to it.
    const a2 = await pool.createInstance('a.room');
    expect(pool.instanceThreadCount).toBe(2);
    pool.destroyInstance(b);
    const c = await pool.createInstance('c.room');
    expect(pool.instances().map((i) => i.instanceId).sort()).toEqual([a, a2, c].sort());
  });
});

describe('guest memory cap and budget in the pool', () => {
  let pool: GuestPool;
  const budget = new MemoryBudget(8 * MiB);

  beforeAll(async () => {
    pool = await GuestPool.start({ threads: 1, limits, log, pager: 'portable', maxGuestMemoryBytes: 4 * MiB, budget });
  });
  afterAll(() => pool?.close());

  it('cap - a module declaring more memory than FLURRY_MAX_GUEST_MEMORY, or no maximum, is refused before it runs', async () => {
    for (const [module, reason] of [[withMemory(1, 65), /maximum of 65 pages exceeds/], [withMemory(100, 100), /initial 100 pages exceed/], [withMemory(1), /declares no maximum/]] as const) {
      const err = await pool.warm('over', module).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(FlurryError);
      expect((err as FlurryError).code).toBe('invalid_module');
      expect((err as FlurryError).message).toMatch(reason);
      expect(pool.has('over')).toBe(false);
    }
    await pool.warm('within', withMemory(1, 64));
    expect(pool.has('within')).toBe(true);
  });

  it('budget - warm snapshots count by their size; beyond the budget a warm is refused with no_capacity', async () => {
    await pool.warm('three-mib', withMemory(48, 64));
    expect(budget.usedBytes).toBe(64 * 1024 + 3 * MiB);
    await pool.warm('four-mib', withMemory(64, 64));
    const err = await pool.warm('one-more', withMemory(32, 64)).then(() => undefined, (e: unknown) => e);
    expect(err).toMatchObject({ code: 'no_capacity', retryAfterSeconds: expect.any(Number) });
    await pool.evict('four-mib');
    await pool.warm('one-more', withMemory(32, 64));
    expect(budget.usedBytes).toBe(64 * 1024 + 5 * MiB);
  });

  it('budget - an instance counts its memory until destroyed; one made or received beyond the budget is refused', async () => {
    const used = budget.usedBytes;
    const id = await pool.createInstance('one-more');
    expect(budget.usedBytes).toBe(used + 2 * MiB);
    await expect(pool.createInstance('one-more')).rejects.toMatchObject({ code: 'no_capacity' });
    await expect(pool.receiveInstance('three-mib', { memoryBytes: 3 * MiB })).rejects.toMatchObject({ code: 'no_capacity' });
    expect(pool.instances().map((i) => i.instanceId)).toEqual([id]);
    pool.destroyInstance(id);
    expect(budget.usedBytes).toBe(used);
  });
});
