/**
 * Tenants and guest threads: a thread holding one tenant's persistent
 * instances runs no other tenant's work, so another tenant's call timing out
 * (which tears its thread down) cannot destroy them; FLURRY_MAX_GUEST_MEMORY
 * and the memory budget hold in the pool itself.
 */
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, FlurryError } from '@flurry/core';
import { wat } from '../../../test/helpers/wat.js';
import { MemoryBudget } from '../memory-budget.js';
import { GuestPool, type CallResult, type HttpRequestData } from './guest-pool.js';

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

describe.skipIf(missing.length > 0)('guest threads and tenants', () => {
  let pool: GuestPool;
  let n = 0;
  const call = (id: string, method: string, path: string, body?: unknown) => pool.instanceHandle(id, req(method, path, body), `c${n++}`);

  beforeAll(async () => {
    pool = await GuestPool.start({ threads: 3, limits, log, pager: 'portable' });
    await Promise.all([
      pool.warm('a.room', program('room'), new Uint8Array(0), undefined, 'tenant-a'),
      pool.warm('b.room', program('room'), new Uint8Array(0), undefined, 'tenant-b'),
      pool.warm('b.spin', program('spin'), new Uint8Array(0), undefined, 'tenant-b'),
    ]);
  });
  afterAll(() => pool?.close());

  it('isolation - a tenant timing out leaves another tenant\'s instance and its state alone', async () => {
    const a = await pool.createInstance('a.room');
    await call(a, 'POST', '/join', { name: 'ann' });
    await call(a, 'POST', '/say', { name: 'ann', text: 'kept' });
    const before = json(await call(a, 'GET', '/state'));
    // Tenant B's calls that spin past the limit: as many as there are threads, so every thread B may use is torn down.
    const spins = Array.from({ length: 3 }, (_, i) => pool.handle('b.spin', req('POST', '/'), `spin${i}`));
    for (const s of spins) await expect(s).rejects.toMatchObject({ code: 'timeout' });
    expect(pool.instances().map((i) => i.instanceId)).toContain(a);
    expect(json(await call(a, 'GET', '/state'))).toEqual(before);
  });

  it('placement - instances of two tenants never share a thread, and one thread stays free of instances', async () => {
    const a = await pool.createInstance('a.room');
    const b = await pool.createInstance('b.room');
    // Three threads: one holds A's instances, one B's, one stays free: a third tenant's instance finds no thread here.
    await pool.warm('c.room', program('room'), new Uint8Array(0), undefined, 'tenant-c');
    await expect(pool.createInstance('c.room')).rejects.toMatchObject({ code: 'no_capacity' });
    // Tenant B's spin now times out on B's own thread or the free one: A's instances stay.
    await expect(pool.handle('b.spin', req('POST', '/'), 'spin-more')).rejects.toMatchObject({ code: 'timeout' });
    expect(pool.instances().some((i) => i.instanceId === a)).toBe(true);
    pool.destroyInstance(a);
    pool.destroyInstance(b);
    // Gone with their instances: tenant C's may go to a thread now.
    const c = await pool.createInstance('c.room');
    expect(json(await call(c, 'GET', '/state')).seq).toBe(0);
    pool.destroyInstance(c);
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
