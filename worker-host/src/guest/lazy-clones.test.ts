/**
 * Lazy clones: a pool adopts a snapshot whose pages are in a native page store
 * that this (the test's, the "host's") main thread fills from another pool's
 * snapshot image through the store's miss handler, as the host fills it from
 * the network. The guest threads sleep in their faults until a page is put.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, PAGE_SIZE } from '@flurry/core';
import { loadNativePager, nativePagerStatus } from '../native/pager.js';
import { GuestPool, type CallResult } from './guest-pool.js';
import type { SnapshotImage } from './snapshot-image.js';
import { wat } from '../../../test/helpers/wat.js';

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (r: { body: Uint8Array }) => new TextDecoder().decode(r.body);
const silent = createLogger('test', {}, 'silent');
const limits = { callTimeoutMs: 5000, initTimeoutMs: 10_000, maxOutputBytes: 1 << 20, maxLogLines: 64, maxLogBytes: 65536 };

const PATTERN = new Uint8Array(readFileSync(new URL('../../../functions/build/pattern.wasm', import.meta.url)));
const PATTERN_INIT = bytes('{"mib": 8, "seed": 7}');

/** A pattern clone's output without what differs in every clone (entropy, Math.random, timings). */
function samePart(result: CallResult): Record<string, unknown> {
  const { entropyHex, mathRandom, verifyMs, writeMs, ...rest } = JSON.parse(text(result)) as Record<string, unknown>;
  expect([typeof entropyHex, typeof mathRandom, typeof verifyMs, typeof writeMs]).toEqual(['string', 'number', 'number', 'number']);
  return rest;
}

/**
 * A snapshot of 2 wasm pages (32 pages of 4 KiB) whose word at byte a holds
 * a + 1. run grows the memory by 2 pages, sums the grown pages (0 expected),
 * writes and reads back a word there, reads one snapshot word, and outputs
 * [old size, sum, read-back, snapshot word].
 */
const GROWER = wat(`(module
  (import "flurry" "output_write" (func $out (param i32 i32)))
  (memory (export "memory") 1 8)
  (func (export "init") (local $a i32)
    (drop (memory.grow (i32.const 1)))
    (loop $fill
      (i32.store (local.get $a) (i32.add (local.get $a) (i32.const 1)))
      (local.set $a (i32.add (local.get $a) (i32.const 4)))
      (br_if $fill (i32.lt_u (local.get $a) (i32.const 131072)))))
  (func (export "run") (param $i i32) (param $n i32) (result i32)
    (local $old i32) (local $a i32) (local $sum i32)
    (local.set $old (memory.grow (i32.const 2)))
    (local.set $a (i32.const 131072))
    (loop $sum
      (local.set $sum (i32.add (local.get $sum) (i32.load (local.get $a))))
      (local.set $a (i32.add (local.get $a) (i32.const 4)))
      (br_if $sum (i32.lt_u (local.get $a) (i32.const 262144))))
    (i32.store (i32.const 200000) (i32.const 77))
    (i32.store (i32.const 240000) (local.get $old))
    (i32.store (i32.const 240004) (local.get $sum))
    (i32.store (i32.const 240008) (i32.load (i32.const 200000)))
    (i32.store (i32.const 240012) (i32.load (i32.const 400)))
    (call $out (i32.const 240000) (i32.const 16))
    (i32.const 0)))`);

const status = nativePagerStatus();
if (!status.available) console.warn(`[lazy clones] skipping: the native pager is unavailable: ${status.reason}`);

describe.skipIf(!status.available)('lazy clones (native pager, userfaultfd)', () => {
  const pager = status.available ? loadNativePager() : undefined!;
  let parents: GuestPool;
  let clones: GuestPool;
  /** Stores made by the tests, dropped at the end (once the pool released every registration). */
  const stores: number[] = [];

  beforeAll(async () => {
    [parents, clones] = await Promise.all([GuestPool.start({ threads: 2, limits, log: silent, pager: 'native' }), GuestPool.start({ threads: 2, limits: { ...limits, callTimeoutMs: 3000 }, log: silent, pager: 'native' })]);
    await parents.warm('pattern', PATTERN, PATTERN_INIT);
    await parents.warm('grower', GROWER);
  });
  afterAll(async () => {
    await Promise.all([parents?.close(), clones?.close()]);
    for (const store of stores) {
      pager.setMissHandler(store, null);
      pager.dropStore(store);
    }
  });

  /** A store of the image's pages that knows its zero pages and nothing else yet. */
  function storeFor(image: SnapshotImage): number {
    const store = pager.createStore(image.byteLength / PAGE_SIZE);
    pager.storeConfigure(store, { chunkPages: 16 });
    pager.storeMarkZero(store, image.zeroPages);
    stores.push(store);
    return store;
  }

  /** Answers misses from the image a turn of the event loop later, as a network fetch would; returns the pages asked for. */
  function serve(store: number, image: SnapshotImage): number[] {
    const asked: number[] = [];
    pager.setMissHandler(store, (pages) => {
      asked.push(...pages);
      setImmediate(() => put(store, image, pages));
    });
    return asked;
  }

  function put(store: number, image: SnapshotImage, pages: number[]): void {
    // Chunk misses come as runs of consecutive pages.
    for (let i = 0; i < pages.length; ) {
      let n = 1;
      while (i + n < pages.length && pages[i + n] === pages[i] + n) n++;
      pager.storePut(store, pages[i], image.read(pages[i] * PAGE_SIZE, n * PAGE_SIZE));
      i += n;
    }
  }

  async function adopt(key: string, moduleBytes: Uint8Array, image: SnapshotImage, store: number): Promise<void> {
    await clones.adoptSnapshot(key, { moduleBytes, byteLength: image.byteLength, maximumPages: image.maximumPages, globals: image.globals, source: { kind: 'lazy', storeId: store } });
  }

  it('lazy - 16 clones fault the pattern in from the page store and answer what copy-on-write clones answer; stats count fetched, waited and zero pages', async () => {
    const image = parents.snapshotImage('pattern');
    const store = storeFor(image);
    const asked = serve(store, image);
    await adopt('pattern', PATTERN, image, store);
    const input = bytes('{"verify": "all"}');
    const local = await Promise.all(Array.from({ length: 16 }, (_, i) => parents.run('pattern', i, 16, input, `l${i}`)));
    const started: number[] = [];
    const lazy = await Promise.all(Array.from({ length: 16 }, (_, i) => clones.run('pattern', i, 16, input, `z${i}`, undefined, () => started.push(i))));
    expect(lazy.map(samePart)).toEqual(local.map(samePart));
    expect(started.sort((a, b) => a - b)).toEqual(Array.from({ length: 16 }, (_, i) => i));
    const total = { fromStore: 0, waited: 0, zero: 0 };
    for (const r of lazy) {
      expect(r.memory).toMatchObject({ mode: 'lazy' });
      total.fromStore += r.memory!.pagesFromStore;
      total.waited += r.memory!.pagesWaited;
      total.zero += r.memory!.zeroPages;
    }
    console.log(`16 lazy clones of an 8 MiB pattern: ${total.fromStore} pages from the store, ${total.zero} zero pages, ${total.waited} faults waited for ${asked.length} pages asked of the host`);
    // Each page was asked for once, whatever number of clones touched it.
    expect(new Set(asked).size).toBe(asked.length);
    expect(total.waited).toBeGreaterThan(0);
    expect(total.zero).toBeGreaterThan(0);
    // Every clone read the whole 8 MiB region.
    expect(total.fromStore).toBeGreaterThanOrEqual(16 * 2048);
    expect(lazy.some((r) => r.memory!.faultWaitMs > 0)).toBe(true);
    expect(pager.storeStats(store)).toMatchObject({ waitingFaults: 0, requested: 0 });
  });

  it('lazy - memory grown past the snapshot reads zeros the kernel gives, never through the pager nor asked of the host', async () => {
    const image = parents.snapshotImage('grower');
    const store = storeFor(image);
    const asked = serve(store, image);
    await adopt('grower', GROWER, image, store);
    for (let i = 0; i < 3; i++) {
      const r = await clones.run('grower', i, 3, new Uint8Array(0), `g${i}`);
      expect(Array.from(new Uint32Array(r.body.slice().buffer))).toEqual([2, 0, 77, 401]);
      // 32 grown pages summed (the one written was read first): past the registration, so none went through the
      // addon's handler (it would count each as a zero page), and the grower touches no zero page of its snapshot.
      expect(r.memory!.zeroPages).toBe(0);
    }
    expect(asked.length).toBeGreaterThan(0);
    expect(Math.max(...asked)).toBeLessThan(image.byteLength / PAGE_SIZE);
  });

  it('lazy - a clone asleep in a fault whose page never comes times out; its thread is released, terminated and replaced, and the pool goes on', async () => {
    const image = parents.snapshotImage('pattern');
    const store = storeFor(image);
    const asked: number[] = [];
    pager.setMissHandler(store, (pages) => asked.push(...pages));
    await adopt('stuck', PATTERN, image, store);
    await expect(clones.run('stuck', 0, 1, bytes('{"verify": "all"}'), 't1')).rejects.toMatchObject({ code: 'timeout' });
    expect(asked.length).toBeGreaterThan(0);
    expect(clones.size).toBe(2);
    // The pool answered the sleeping thread's fault (a zero page: that clone never runs again) so that it could end.
    const answered = () => pager.storeStats(store).waitingFaults === 0;
    for (let waited = 0; !answered() && waited < 2000; waited += 10) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(pager.storeStats(store).waitingFaults).toBe(0);
    // The pages arrive late, as after a lost request; the next clones run.
    put(store, image, asked);
    serve(store, image);
    const after = await Promise.all([0, 1, 2].map((i) => clones.run('stuck', i, 3, bytes('{"verify": "all"}'), `t2-${i}`)));
    for (const r of after) expect(samePart(r)).toMatchObject({ ok: true, mismatches: 0 });
    // Only the live threads' spare instances (made just after their answers) stay registered: the terminated
    // thread's registration closed with it.
    const settled = () => pager.storeStats(store).registrations === clones.size;
    for (let waited = 0; !settled() && waited < 2000; waited += 10) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(pager.storeStats(store).registrations).toBe(clones.size);
  });

  it('lazy - abort ends clones asleep in faults (the host lost the memory server)', async () => {
    const image = parents.snapshotImage('pattern');
    const store = storeFor(image);
    pager.setMissHandler(store, () => {});
    await adopt('lost', PATTERN, image, store);
    const calls = [0, 1, 2].map((i) => clones.run('lost', i, 3, bytes('{"verify": "all"}'), `ab${i}`));
    // Both threads asleep in a fault.
    for (let waited = 0; pager.storeStats(store).waitingFaults < 2 && waited < 2000; waited += 10) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(pager.storeStats(store).waitingFaults).toBe(2);
    clones.abort('lost', new Error('memory server gone'));
    for (const call of calls) await expect(call).rejects.toMatchObject({ code: 'unavailable', message: 'memory server gone' });
    expect(clones.size).toBe(2);
  });

  it('release - resolves once no clone memory (spares included) is registered with the store, which can then be dropped', async () => {
    const image = parents.snapshotImage('grower');
    const store = pager.createStore(image.byteLength / PAGE_SIZE);
    serve(store, image);
    await adopt('drop-me', GROWER, image, store);
    await Promise.all([0, 1, 2, 3].map((i) => clones.run('drop-me', i, 4, new Uint8Array(0), `d${i}`)));
    // The threads keep spare instances registered with the store (made just after their answers).
    for (let waited = 0; pager.storeStats(store).registrations < clones.size && waited < 2000; waited += 10) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(pager.storeStats(store).registrations).toBe(clones.size);
    expect(() => pager.dropStore(store)).toThrow(/registration/);
    await clones.releaseSnapshot('drop-me');
    expect(pager.storeStats(store).registrations).toBe(0);
    pager.setMissHandler(store, null);
    pager.dropStore(store);
    await expect(clones.run('drop-me', 0, 1, new Uint8Array(0), 'd9')).rejects.toMatchObject({ code: 'not_found' });
  });

  it('adopt - a lazy snapshot needs a store of exactly its pages', async () => {
    const image = parents.snapshotImage('grower');
    const store = pager.createStore(image.byteLength / PAGE_SIZE - 1);
    stores.push(store);
    await expect(adopt('short', GROWER, image, store)).rejects.toMatchObject({ code: 'bad_request', message: expect.stringContaining('has 31 pages, the snapshot 32') });
    await expect(adopt('unknown', GROWER, image, 999_999)).rejects.toMatchObject({ code: 'bad_request' });
  });
});
