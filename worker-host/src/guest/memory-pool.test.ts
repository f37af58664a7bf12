/** The pool of memories made ahead: what one clone leaves never reaches the next, the pool refills, and forks work without it. */
import { describe, expect, it } from 'vitest';
import { rewriteForSnapshot, WASM_PAGE_SIZE } from '@flurry/core';
import { loadNativePager, nativePagerStatus, type NativePager } from '../native/pager.js';
import { CurrentCall } from './current-call.js';
import { buildImportObject, hostFunctions } from './import-object.js';
import { CloneFactory, takeSnapshot } from './instance.js';
import { MemoryPool } from './memory-pool.js';
import { AheadWork } from './ahead-work.js';
import { wat } from '../../../test/helpers/wat.js';

/** Page 0 holds 41 at 0 (a data segment); `set` writes anywhere; memory grows to `pages` in the parent. */
const MODULE = (pages: number) => wat(`(module
  (memory (export "memory") 1 64)
  (data (i32.const 0) "\\29")
  (func (export "grow") (drop (memory.grow (i32.const ${pages - 1}))))
  (func (export "set") (param i32 i32) (i32.store (local.get 0) (local.get 1)))
  (func (export "get") (param i32) (result i32) (i32.load (local.get 0))))`);

const MAX_PAGES = 64;
const native = nativePagerStatus().copyOnWrite;

/** A parent of `pages` wasm pages (page 0 from the data segment, the rest zero) snapshotted, and a factory of its clones. */
function forkable(pager: NativePager | undefined, pool: MemoryPool, pages = 4) {
  const { parent, clone } = rewriteForSnapshot(MODULE(pages));
  const host = hostFunctions(new CurrentCall());
  const parentModule = new WebAssembly.Module(parent as BufferSource);
  const instance = new WebAssembly.Instance(parentModule, buildImportObject(parentModule, host));
  (instance.exports.grow as () => void)();
  const snapshot = takeSnapshot(instance, pager);
  const cloneModule = new WebAssembly.Module(clone as BufferSource);
  const factory = new CloneFactory(cloneModule, buildImportObject(cloneModule, host), snapshot, pager, { pool, maximumPages: MAX_PAGES });
  const fork = () => {
    const c = factory.instantiate({ attach: () => {} } as never);
    const call = <T>(name: string, ...args: number[]) => (c.instance.exports[name] as (...a: number[]) => T)(...args);
    return { clone: c, set: (at: number, v: number) => call<void>('set', at, v), get: (at: number) => call<number>('get', at) };
  };
  return { factory, fork, snapshot };
}

describe('memory pool', () => {
  it.skipIf(!native)('pool - a memory one clone wrote is reset before the next clone of the same slot: it sees the snapshot only', () => {
    const pager = loadNativePager();
    const pool = new MemoryPool(pager);
    const { factory, fork, snapshot } = forkable(pager, pool);
    pool.refill();
    const a = fork();
    expect(a.clone.pooled).toBe(true);
    expect(a.get(0)).toBe(41);
    a.set(0, 7); // over a snapshot page
    a.set(2 * WASM_PAGE_SIZE + 8, 99); // over a zero page
    a.clone.restored.finish();
    factory.recycle(a.clone);
    const b = fork();
    expect(b.clone.memory).toBe(a.clone.memory);
    expect(b.clone.pooled).toBe(true);
    expect(b.get(0)).toBe(41);
    expect(b.get(2 * WASM_PAGE_SIZE + 8)).toBe(0);
    expect(b.clone.memory.buffer.byteLength).toBe(snapshot.memory.byteLength);
    // Nothing of A's is resident either: the clone owns no page until it writes one.
    expect(pager.privatePages(b.clone.memory, b.clone.memory.buffer.byteLength).length).toBe(0);
    factory.close();
    if (snapshot.memory.kind === 'cow') pager.closeFd(snapshot.memory.fd);
  });

  it.skipIf(!nativePagerStatus().available)('pool - a lazy clone of a memory another clone used faults every page in from the store again, not the last clone\'s', () => {
    const pager = loadNativePager();
    const pool = new MemoryPool(pager);
    const { snapshot: cow } = forkable(pager, pool);
    if (cow.memory.kind !== 'cow') throw new Error('expected a cow snapshot');
    // The same snapshot as another host would page it in: every page in a store (zero pages marked).
    const pages = cow.memory.byteLength / 4096;
    const store = pager.createStore(pages);
    pager.storeMarkZero(store, cow.memory.zeroPages);
    const bytes = new Uint8Array(cow.memory.byteLength);
    pager.readFdInto(bytes, cow.memory.fd, bytes.length);
    pager.storePut(store, 0, bytes);
    const lazy = { memory: { kind: 'lazy' as const, byteLength: cow.memory.byteLength, storeId: store }, globals: cow.globals };
    const { clone } = rewriteForSnapshot(MODULE(4));
    const module = new WebAssembly.Module(clone as BufferSource);
    const factory = new CloneFactory(module, buildImportObject(module, hostFunctions(new CurrentCall())), lazy, pager, { pool, maximumPages: MAX_PAGES });
    pool.refill();
    const run = () => {
      const c = factory.instantiate({ attach: () => {} } as never);
      const call = (name: string, ...args: number[]) => (c.instance.exports[name] as (...a: number[]) => number)(...args);
      return { c, call };
    };
    const a = run();
    expect(a.call('get', 0)).toBe(41);
    a.call('set', 0, 7);
    a.call('set', 2 * WASM_PAGE_SIZE + 8, 99);
    a.c.restored.finish();
    // Given back now (reset at once) or later (unreset: the lazy fork that takes it has it reset first).
    let last = a.c;
    for (const later of [false, true]) {
      factory.recycle(last, later);
      const b = run();
      expect(b.c.memory).toBe(a.c.memory);
      expect(b.call('get', 0)).toBe(41);
      expect(b.call('get', 2 * WASM_PAGE_SIZE + 8)).toBe(0);
      b.call('set', 0, 7);
      b.call('set', 2 * WASM_PAGE_SIZE + 8, 99);
      const stats = b.c.restored.finish();
      expect(stats.pagesFromStore + stats.zeroPages).toBeGreaterThanOrEqual(2);
      last = b.c;
    }
    expect(pool.stats().takenUnreset).toBe(0);
    factory.close();
    pager.dropStore(store);
    pager.closeFd(cow.memory.fd);
  });

  it.skipIf(!nativePagerStatus().available)('pool - a memory still registered when it comes back is not reset or reused: it is dropped', () => {
    const pager = loadNativePager();
    const pool = new MemoryPool(pager);
    const release = pool.want(MAX_PAGES, 2 * WASM_PAGE_SIZE);
    const { memory } = pool.take(MAX_PAGES, 2 * WASM_PAGE_SIZE);
    const store = pager.createStore(32);
    const registration = pager.registerMemory(memory, MAX_PAGES * WASM_PAGE_SIZE, store);
    try {
      pool.giveBack(memory, MAX_PAGES);
      expect(pool.stats()).toMatchObject({ recycled: 0, free: 0 });
    } finally {
      pager.unregister(registration);
      pager.dropStore(store);
      release();
    }
  });

  it('pool - refills a class it handed out, up to its limit, and gives the room of a class nobody holds to the next', () => {
    const pool = new MemoryPool(native ? loadNativePager() : undefined, 2);
    const release = pool.want(MAX_PAGES, 4 * WASM_PAGE_SIZE);
    pool.refill();
    expect(pool.stats()).toMatchObject({ made: 1, free: 1 });
    const first = pool.take(MAX_PAGES, 4 * WASM_PAGE_SIZE);
    expect(first.pooled).toBe(true);
    expect(first.memory.buffer.byteLength).toBe(4 * WASM_PAGE_SIZE);
    expect(pool.stats().free).toBe(0);
    pool.refill();
    expect(pool.stats()).toMatchObject({ made: 2, free: 1, taken: 1 });
    expect(pool.take(MAX_PAGES, 4 * WASM_PAGE_SIZE).memory).not.toBe(first.memory);
    // Three classes wanted, room for two: the two used most recently get one each.
    const others = [pool.want(MAX_PAGES, 2 * WASM_PAGE_SIZE), pool.want(MAX_PAGES, 3 * WASM_PAGE_SIZE)];
    pool.refill();
    expect(pool.stats().free).toBe(2);
    expect(pool.take(MAX_PAGES, 3 * WASM_PAGE_SIZE).pooled).toBe(true);
    expect(pool.take(MAX_PAGES, 2 * WASM_PAGE_SIZE).pooled).toBe(true);
    pool.refill();
    expect(pool.stats().free).toBe(2);
    // Nobody holds a class any more: its memories stay until their room is needed, and still serve its size.
    release();
    for (const r of others) r();
    pool.refill();
    expect(pool.stats().free).toBe(2);
    expect(pool.take(MAX_PAGES, 3 * WASM_PAGE_SIZE).pooled).toBe(true);
    const next = pool.want(MAX_PAGES, 5 * WASM_PAGE_SIZE);
    pool.refill();
    expect(pool.stats().free).toBe(2);
    expect(pool.take(MAX_PAGES, 5 * WASM_PAGE_SIZE).pooled).toBe(true);
    next();
  });

  it('pool - a memory of no pooled class (larger than any) is made on the spot and forks the same', () => {
    const pager = native ? loadNativePager() : undefined;
    const pool = new MemoryPool(pager);
    const small = forkable(pager, pool, 2);
    pool.refill();
    const big = forkable(pager, new MemoryPool(pager, 0), 8);
    const c = big.fork();
    expect(c.clone.pooled).toBe(false);
    expect(c.clone.memory.buffer.byteLength).toBe(8 * WASM_PAGE_SIZE);
    expect(c.get(0)).toBe(41);
    expect(c.get(7 * WASM_PAGE_SIZE)).toBe(0);
    const s = small.fork();
    expect(s.clone.pooled).toBe(true);
    expect(s.get(0)).toBe(41);
    for (const f of [small, big]) {
      f.factory.close();
      if (pager && f.snapshot.memory.kind === 'cow') pager.closeFd(f.snapshot.memory.fd);
    }
  });

  it('pool - without the native pager (portable) a used memory is dropped, never reused: the next clone gets a fresh one', () => {
    const pool = new MemoryPool(undefined);
    const { factory, fork } = forkable(undefined, pool);
    pool.refill();
    const a = fork();
    expect(a.clone.pooled).toBe(true);
    a.set(2 * WASM_PAGE_SIZE + 8, 99);
    a.clone.restored.finish();
    factory.recycle(a.clone);
    const b = fork();
    expect(b.clone.memory).not.toBe(a.clone.memory);
    expect(b.get(0)).toBe(41);
    expect(b.get(2 * WASM_PAGE_SIZE + 8)).toBe(0);
    factory.close();
  });

  /** One module whose parents differ in memory and in a mutable global: clones of any of them may take an instance made ahead. */
  const STATEFUL = wat(`(module
    (memory (export "memory") 2 64)
    (global $g (mut i32) (i32.const 0))
    (func (export "prime") (param i32) (i32.store (i32.const 0) (local.get 0)) (global.set $g (local.get 0)))
    (func (export "set") (param i32 i32) (i32.store (local.get 0) (local.get 1)))
    (func (export "get") (param i32) (result i32) (i32.load (local.get 0)))
    (func (export "g") (result i32) (global.get $g)))`);

  /** A parent of STATEFUL primed with `value`, snapshotted, and a factory of its clones naming `module` as its module. */
  function primed(pager: NativePager | undefined, pool: MemoryPool, value: number, module: string, bytes = STATEFUL, instancesReusable = false) {
    const { parent, clone } = rewriteForSnapshot(bytes);
    const host = hostFunctions(new CurrentCall());
    const parentModule = new WebAssembly.Module(parent as BufferSource);
    const instance = new WebAssembly.Instance(parentModule, buildImportObject(parentModule, host));
    (instance.exports.prime as (v: number) => void)(value);
    const snapshot = takeSnapshot(instance, pager);
    const cloneModule = new WebAssembly.Module(clone as BufferSource);
    const factory = new CloneFactory(cloneModule, buildImportObject(cloneModule, host), snapshot, pager, { pool, maximumPages: MAX_PAGES, module, instancesReusable });
    const fork = () => {
      const c = factory.instantiate({ attach: () => {} } as never);
      const call = <T>(name: string, ...args: number[]) => (c.instance.exports[name] as (...a: number[]) => T)(...args);
      return { clone: c, call };
    };
    const close = () => {
      factory.close();
      if (pager && snapshot.memory.kind === 'cow') pager.closeFd(snapshot.memory.fd);
    };
    return { factory, fork, close };
  }

  it.skipIf(!native)('given back later - a copy-on-write fork takes it unreset and sees its snapshot only; an idle thread resets it (settle)', () => {
    const pager = loadNativePager();
    const pool = new MemoryPool(pager);
    const { factory, fork } = forkable(pager, pool);
    const dirty = () => {
      const c = fork();
      c.set(0, 7);
      c.set(2 * WASM_PAGE_SIZE + 8, 99);
      c.clone.restored.finish();
      factory.recycle(c.clone, true);
      return c.clone.memory;
    };
    // Free at once, unreset: the next fork maps its snapshot over all of it, which replaces every page the last clone left.
    const first = dirty();
    expect(pool.stats()).toMatchObject({ free: 1, recycled: 1, takenUnreset: 0 });
    const b = fork();
    expect(b.clone.memory).toBe(first);
    expect(pool.stats().takenUnreset).toBe(1);
    expect([b.get(0), b.get(2 * WASM_PAGE_SIZE + 8)]).toEqual([41, 0]);
    expect(pager.privatePages(b.clone.memory, b.clone.memory.buffer.byteLength).length).toBe(0);
    b.clone.restored.finish();
    factory.recycle(b.clone, true);
    // The thread idles: settle resets it where it lies.
    expect(pool.settle()).toBe(true);
    expect(pool.settle()).toBe(false);
    expect(pool.stats()).toMatchObject({ free: 1, recycled: 2 });
    expect(pager.privatePages(first, first.buffer.byteLength).length).toBe(0);
    const c = fork();
    expect(c.clone.memory).toBe(first);
    expect(pool.stats().takenUnreset).toBe(1);
    expect([c.get(0), c.get(2 * WASM_PAGE_SIZE + 8)]).toEqual([41, 0]);
    c.clone.restored.finish();
    factory.close();
  });

  it.skipIf(!native)('given back later - a thread that never idles keeps at most its limit of memories, unreset; the rest are left to the collector', () => {
    const pager = loadNativePager();
    const pool = new MemoryPool(pager, 2);
    const { factory, fork } = forkable(pager, pool);
    const clones = [fork(), fork(), fork(), fork()];
    for (const c of clones) {
      c.clone.restored.finish();
      factory.recycle(c.clone, true);
    }
    expect(pool.stats()).toMatchObject({ recycled: 2, free: 2 });
    expect(pool.settle()).toBe(true);
    expect(pool.stats()).toMatchObject({ recycled: 2, free: 2 });
    factory.close();
  });

  it.skipIf(!nativePagerStatus().available)('given back later - a memory still registered is never mapped over: the fork that takes it gets a fresh one', () => {
    const pager = loadNativePager();
    const pool = new MemoryPool(pager);
    const { factory, fork } = forkable(pager, pool);
    const { memory } = pool.take(MAX_PAGES, 4 * WASM_PAGE_SIZE);
    const store = pager.createStore(32);
    const registration = pager.registerMemory(memory, MAX_PAGES * WASM_PAGE_SIZE, store);
    try {
      pool.giveBackLater(memory, MAX_PAGES);
      const c = fork();
      expect(c.clone.memory).not.toBe(memory);
      expect(c.clone.pooled).toBe(false);
      expect(c.get(0)).toBe(41);
      c.clone.restored.finish();
    } finally {
      pager.unregister(registration);
      pager.dropStore(store);
      factory.close();
    }
  });

  it.skipIf(!native)('ahead - its steps make a spare of the snapshot served last only, and serving another drops that spare at once', () => {
    const pager = loadNativePager();
    const pool = new MemoryPool(pager);
    const a = forkable(pager, pool);
    const b = forkable(pager, pool);
    const ahead = new AheadWork(pool);
    // Nothing served yet: nothing to make.
    expect(ahead.step()).toBe(false);
    ahead.served(a.factory);
    while (ahead.step());
    const a1 = a.fork();
    expect(a1.clone.spare).toBe(true);
    expect(a1.get(0)).toBe(41);
    a1.clone.restored.finish();
    a.factory.recycle(a1.clone, true);
    ahead.served(a.factory);
    while (ahead.step());
    // B is served and no step is taken (a call came at once): A's spare is gone already, its memory back in the pool.
    const recycled = pool.stats().recycled;
    ahead.served(b.factory);
    expect(pool.stats().recycled).toBe(recycled + 1);
    const a2 = a.fork();
    expect(a2.clone.spare).toBe(false);
    expect(a2.clone.pooled).toBe(true);
    a2.clone.restored.finish();
    // A forgotten factory gets nothing more.
    ahead.forget(b.factory);
    expect(ahead.step()).toBe(false);
    a.factory.close();
    b.factory.close();
  });

  const sharedAcrossSnapshots = (pager: NativePager | undefined) => {
    const pool = new MemoryPool(pager);
    const a = primed(pager, pool, 11, 'm');
    const b = primed(pager, pool, 22, 'm');
    pool.refill();
    a.factory.instantiateAhead();
    expect(pool.stats()).toMatchObject({ instancesMade: 1 });
    // A clone of A writes over its snapshot's page and a zero page, then ends; its memory comes back (reset, native only).
    const ca = a.fork();
    expect(ca.clone.instanceAhead).toBe(true);
    expect([ca.call('get', 0), ca.call('g')]).toEqual([11, 11]);
    ca.call('set', 0, 7);
    ca.call('set', WASM_PAGE_SIZE + 8, 99);
    ca.clone.restored.finish();
    a.factory.recycle(ca.clone);
    pool.refill();
    a.factory.instantiateAhead();
    // B's clone gets the instance A's factory made ahead: it sees B's state, nothing of A's snapshot or A's clone.
    const cb = b.fork();
    expect(cb.clone.instanceAhead).toBe(true);
    expect(cb.clone.instance).not.toBe(ca.clone.instance);
    expect([cb.call('get', 0), cb.call('g'), cb.call('get', WASM_PAGE_SIZE + 8)]).toEqual([22, 22, 0]);
    cb.clone.restored.finish();
    expect(pool.stats().instancesTaken).toBe(2);
    a.close();
    b.close();
  };
  it.skipIf(!native)('instances ahead - every free memory of the class gets one, so two forks back to back both find one, each with its own snapshot only', () => {
    const pager = loadNativePager();
    const pool = new MemoryPool(pager, 2);
    const a = primed(pager, pool, 11, 'm');
    const b = primed(pager, pool, 22, 'm');
    // Two clones of A write and end: both memories come back unreset.
    const used = [a.fork(), a.fork()];
    for (const c of used) {
      c.call('set', 0, 7);
      c.call('set', WASM_PAGE_SIZE + 8, 99);
      c.clone.restored.finish();
      a.factory.recycle(c.clone, true);
    }
    expect(a.factory.instantiateAhead()).toBe(true);
    expect(a.factory.instantiateAhead()).toBe(true);
    expect(a.factory.instantiateAhead()).toBe(false);
    expect(pool.stats()).toMatchObject({ instancesMade: 2, free: 2 });
    const forks = [b.fork(), b.fork()];
    expect(forks.map((f) => f.clone.instanceAhead)).toEqual([true, true]);
    expect(forks[0].clone.instance).not.toBe(forks[1].clone.instance);
    for (const f of forks) {
      expect([f.call('get', 0), f.call('g'), f.call('get', WASM_PAGE_SIZE + 8)]).toEqual([22, 22, 0]);
      f.clone.restored.finish();
    }
    expect(pool.stats()).toMatchObject({ instancesTaken: 2, takenUnreset: 2 });
    a.close();
    b.close();
  });

  for (const reusable of [true, false]) {
    it.skipIf(!native)(`instances given back - ${reusable ? 'a module that changes only memory and globals: the next fork of any snapshot of it runs in the last clone\'s instance, with its own snapshot\'s memory and globals only' : 'any other module: its clones\' instances are never given to another fork'}`, () => {
      const pager = loadNativePager();
      const pool = new MemoryPool(pager, 2);
      const a = primed(pager, pool, 11, 'm', STATEFUL, reusable);
      const b = primed(pager, pool, 22, 'm', STATEFUL, reusable);
      const ca = a.fork();
      ca.call('prime', 99); // memory and the global
      ca.call('set', WASM_PAGE_SIZE + 8, 77);
      ca.clone.restored.finish();
      a.factory.recycle(ca.clone, true);
      expect(pool.stats().instancesReturned).toBe(reusable ? 1 : 0);
      const cb = b.fork();
      expect(cb.clone.instanceAhead).toBe(reusable);
      expect(cb.clone.instance === ca.clone.instance).toBe(reusable);
      expect([cb.call('get', 0), cb.call('g'), cb.call('get', WASM_PAGE_SIZE + 8)]).toEqual([22, 22, 0]);
      cb.clone.restored.finish();
      a.close();
      b.close();
    });
  }

  const ACROSS = 'one made while idling for another snapshot of the module serves a clone with its own snapshot\'s memory and globals only';
  it.skipIf(!native)(`instances ahead (native) - ${ACROSS}`, () => sharedAcrossSnapshots(loadNativePager()));
  it(`instances ahead (portable) - ${ACROSS}`, () => sharedAcrossSnapshots(undefined));

  it('instances ahead - an instance of one module never serves another module\'s clone', () => {
    const pager = native ? loadNativePager() : undefined;
    const pool = new MemoryPool(pager);
    const a = primed(pager, pool, 11, 'm');
    const other = primed(pager, pool, 33, 'n');
    pool.refill();
    a.factory.instantiateAhead();
    const c = other.fork();
    expect(c.clone.instanceAhead).toBe(false);
    expect([c.call('get', 0), c.call('g')]).toEqual([33, 33]);
    c.clone.restored.finish();
    // Without a module named (an older load message), nothing is made ahead.
    const plain = new MemoryPool(pager);
    const p = primed(pager, plain, 44, undefined as never);
    plain.refill();
    p.factory.instantiateAhead();
    expect(plain.stats().instancesMade).toBe(0);
    for (const f of [a, other, p]) f.close();
  });
});
