/**
 * Lazy guest memory through userfaultfd: a guest worker thread faults, the
 * addon's handler thread serves pages from the C page store, and pages the
 * host lacks are asked from this (the test's) thread, which never touches
 * the guest's memory.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { GuestWorker, loadAddon, PAGE, pageBytes, pageSum, until, WASM_PAGE } from './fixtures/harness.mjs';

const { pager, why } = loadAddon();
const caps = pager?.capabilities();
const skip = !pager ? why : !caps.userfaultfd ? `userfaultfd unavailable: ${caps.reason}` : undefined;
if (skip) console.warn(`[native pager] skipping lazy-memory tests: ${skip}`);

const MAX_PAGES = 64; // wasm pages: 4 MiB registered
const MAX_BYTES = MAX_PAGES * WASM_PAGE;

describe.skipIf(!!skip)('native pager: lazy memory (userfaultfd MISSING)', () => {
  const cleanup: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!();
  });

  /** A store of `pages` 4 KiB pages and a guest of `wasmPages` registered over it. */
  async function setup(wasmPages: number, opts: { fill?: boolean; storePages?: number; mapPages?: boolean } = {}) {
    const storePages = opts.storePages ?? (wasmPages * WASM_PAGE) / PAGE;
    const store = pager.createStore(storePages);
    if (opts.mapPages) pager.storeConfigure(store, { mapPages: true });
    if (opts.fill) for (let p = 0; p < storePages; p++) pager.storePut(store, p, pageBytes(p));
    const guest = await GuestWorker.start();
    await guest.call('create', { initialPages: wasmPages, maximumPages: MAX_PAGES });
    const reg = await guest.register(MAX_BYTES, store);
    cleanup.push(async () => {
      pager.setMissHandler(store, null);
      await guest.stop(pager);
      try {
        pager.unregister(reg);
      } catch {
        /* closed with its thread */
      }
      await until(() => pager.storeStats(store).registrations === 0, 2000, 'registration closed').catch(() => {});
      try {
        pager.dropStore(store);
      } catch {
        /* still registered */
      }
    });
    return { store, guest, reg, storePages };
  }

  /** Answers each miss of `store` 20 ms later, as a network fetch would; the pages asked, in order. */
  function answerMissesLater(store: number): number[][] {
    const asked: number[][] = [];
    pager.setMissHandler(store, (pages: number[]) => {
      asked.push(pages);
      setTimeout(() => {
        for (const p of pages) pager.storePut(store, p, pageBytes(p, 1000));
      }, 20);
    });
    return asked;
  }

  it('serves faults from the store: wasm loads see the snapshot bytes', async () => {
    const { store, guest, reg } = await setup(2, { fill: true });
    pager.storeConfigure(store, { runPages: 1 });
    const pages = [0, 1, 7, 31, 12];
    const words = await guest.call('load32', { addrs: pages.map((p) => p * PAGE) });
    expect(words).toEqual(pages);
    const sums = await Promise.all(pages.map((p) => guest.call('sum', { addr: p * PAGE, len: PAGE })));
    expect(sums).toEqual(pages.map((p) => pageSum(pageBytes(p)).toString()));
    const st = pager.registrationStats(reg);
    expect(st.faults).toBe(pages.length);
    expect(st.pagesCopied).toBe(pages.length);
    expect(st.zeroPages).toBe(0);
    expect(st.missFaults).toBe(0);
    expect(st.resolvedFaults).toBe(pages.length);
    expect(st.waitNs).toBeGreaterThan(0);
    expect(st.pending).toBe(0);
    expect(st.errors).toBe(0);
    expect(pager.storeFaultOrder(store)).toEqual(Uint32Array.from(pages));
  });

  it('zero pages: UFFDIO_ZEROPAGE for reads, a private zero page for writes', async () => {
    const { store, guest, reg } = await setup(1);
    const zero = new Uint8Array(2).fill(0xff); // pages 0..15 all zero
    pager.storeMarkZero(store, zero);
    pager.storeConfigure(store, { runPages: 4 });
    expect(await guest.call('load32', { addrs: [5 * PAGE] })).toEqual([0]);
    let st = pager.registrationStats(reg);
    expect(st.faults).toBe(1);
    expect(st.zeroPages).toBe(4); // pages 5..8 as one run
    expect(st.pagesCopied).toBe(0);
    await guest.call('store32', { addr: 12 * PAGE + 8, value: 77 });
    expect(await guest.call('load32', { addrs: [12 * PAGE + 8, 12 * PAGE] })).toEqual([77, 0]);
    st = pager.registrationStats(reg);
    expect(st.faults).toBe(2);
    expect(st.zeroPages).toBe(5);
    expect(pager.storeHas(store, 5)).toBe('zero');
  });

  it('miss path: asks JavaScript for the page, storePut wakes the waiting guest', async () => {
    const { store, guest, reg } = await setup(1);
    const asked = answerMissesLater(store);
    const t0 = performance.now();
    expect(await guest.call('load32', { addrs: [9 * PAGE] })).toEqual([1009]);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(15);
    expect(asked).toEqual([[9]]);
    const st = pager.registrationStats(reg);
    expect(st.missFaults).toBe(1);
    expect(st.pagesRequested).toBe(1);
    expect(st.maxWaitNs).toBeGreaterThan(15e6);
    expect(pager.storeHas(store, 9)).toBe('present');
    expect(pager.storeStats(store)).toMatchObject({ present: 1, requested: 0, waitingFaults: 0, requestedPages: 1 });
    expect(await guest.call('sum', { addr: 9 * PAGE, len: PAGE })).toBe(pageSum(pageBytes(9, 1000)).toString());
  });

  it('runs: one fault copies the following present pages; chunks fill the whole chunk', async () => {
    const { store, guest, reg } = await setup(1, { fill: true });
    pager.storeConfigure(store, { runPages: 8 });
    expect(await guest.call('load32', { addrs: [2 * PAGE] })).toEqual([2]);
    expect(pager.registrationStats(reg)).toMatchObject({ faults: 1, pagesCopied: 8, populated: 8 });
    // Pages 3..9 came with the run: no more faults for them.
    expect(await guest.call('load32', { addrs: [3, 4, 5, 6, 7, 8, 9].map((p) => p * PAGE) })).toEqual([3, 4, 5, 6, 7, 8, 9]);
    expect(pager.registrationStats(reg).faults).toBe(1);

    pager.storeConfigure(store, { chunkPages: 4 });
    // Page 13 is in chunk 12..15: the whole chunk comes in, the faulting page first.
    expect(await guest.call('load32', { addrs: [13 * PAGE] })).toEqual([13]);
    expect(pager.registrationStats(reg)).toMatchObject({ faults: 2, pagesCopied: 12 });
    expect(await guest.call('load32', { addrs: [12 * PAGE, 14 * PAGE, 15 * PAGE] })).toEqual([12, 14, 15]);
    expect(pager.registrationStats(reg).faults).toBe(2);
    expect(pager.storeFaultOrder(store)).toEqual(Uint32Array.from([2, 13]));
  });

  it('chunks on the miss path: a fault asks for its whole chunk, one put serves it', async () => {
    const { store, guest, reg } = await setup(1);
    pager.storeConfigure(store, { chunkPages: 8 });
    const zero = new Uint8Array(2);
    zero[1] = 0b00000001; // page 8 is zero
    pager.storeMarkZero(store, zero);
    const asked: number[][] = [];
    pager.setMissHandler(store, (pages: number[]) => {
      asked.push(pages);
      const first = pages[0];
      const bytes = new Uint8Array(pages.length * PAGE);
      pages.forEach((p, i) => bytes.set(pageBytes(p), i * PAGE));
      expect(pages).toEqual(pages.map((_, i) => first + i)); // contiguous
      pager.storePut(store, first, bytes);
    });
    expect(await guest.call('load32', { addrs: [11 * PAGE] })).toEqual([11]);
    expect(asked).toEqual([[9, 10, 11, 12, 13, 14, 15]]);
    expect(await guest.call('load32', { addrs: [8, 9, 15].map((p) => p * PAGE) })).toEqual([0, 9, 15]);
    const st = pager.registrationStats(reg);
    expect(st.faults).toBe(1);
    expect(st.pagesCopied).toBe(7);
    expect(st.zeroPages).toBe(1);
  });

  it('batches concurrent misses from several guests of one store into few calls', async () => {
    const store = pager.createStore(16);
    const guests = await Promise.all([0, 1, 2].map(() => GuestWorker.start()));
    const regs: number[] = [];
    for (const g of guests) {
      await g.call('create', { initialPages: 1, maximumPages: MAX_PAGES });
      regs.push(await g.register(MAX_BYTES, store));
    }
    cleanup.push(async () => {
      for (const g of guests) await g.stop(pager);
      await until(() => pager.storeStats(store).registrations === 0, 2000).catch(() => {});
      pager.setMissHandler(store, null);
      pager.dropStore(store);
    });
    const asked: number[] = [];
    pager.setMissHandler(store, (pages: number[]) => asked.push(...pages));
    const reads = guests.map((g) => g.call('load32', { addrs: [4 * PAGE] }));
    await until(() => pager.storeStats(store).waitingFaults === 3 && asked.length > 0, 5000, 'three waiting faults, and the miss handed to JavaScript');
    expect(asked).toEqual([4]); // asked once for three clones
    expect(pager.storeWaiting(store)).toEqual(Uint32Array.from([4]));
    pager.storePut(store, 4, pageBytes(4, 5));
    expect(await Promise.all(reads)).toEqual([[9], [9], [9]]);
    for (const r of regs) expect(pager.registrationStats(r)).toMatchObject({ missFaults: 1, pending: 0, pagesCopied: 1 });
  });

  it('a shared memory: two threads fault on the same missing page; one request, one put wakes both', async () => {
    const store = pager.createStore(32);
    pager.storeConfigure(store, { chunkPages: 8 });
    const [a, b] = await Promise.all([GuestWorker.start(), GuestWorker.start()]);
    const memory = await a.call('createShared', { initialPages: 2, maximumPages: MAX_PAGES });
    await b.call('adopt', { memory });
    const reg = await a.register(MAX_BYTES, store);
    cleanup.push(async () => {
      await a.stop(pager);
      await b.worker.terminate();
      pager.setMissHandler(store, null);
      await until(() => pager.storeStats(store).registrations === 0, 2000).catch(() => {});
      pager.dropStore(store);
    });
    const asked: number[][] = [];
    pager.setMissHandler(store, (pages: number[]) => asked.push(pages));
    pager.storePut(store, 11, pageBytes(11)); // in the chunk, present
    const ra = a.call('load32', { addrs: [9 * PAGE] });
    const rb = b.call('load32', { addrs: [9 * PAGE + 4] });
    // The handler thread counts a fault before the miss reaches JavaScript (a threadsafe call the main thread takes later).
    await until(() => pager.registrationStats(reg).faults >= 2 && asked.length > 0, 5000, 'two faults, and the miss handed to JavaScript');
    expect(asked).toEqual([[8, 9, 10, 12, 13, 14, 15]]);
    const st = pager.registrationStats(reg);
    expect(st).toMatchObject({ pending: 1, duplicateFaults: 1, missFaults: 1 });
    pager.storePut(store, 9, pageBytes(9, 1));
    expect(await ra).toEqual([10]);
    expect(await rb).toEqual([new DataView(pageBytes(9, 1).buffer).getUint32(4, true)]);
    // Page 11 came with page 9's chunk; pages 8, 10, 12.. are still missing (nobody waits).
    expect(pager.registrationStats(reg)).toMatchObject({ pending: 0, pagesCopied: 2, faults: 2 });
    expect(await b.call('load32', { addrs: [11 * PAGE] })).toEqual([11]);
    expect(pager.registrationStats(reg).faults).toBe(2);
  });

  it('safe unregister: refuses while a fault is pending, then succeeds once the page is supplied', async () => {
    const { store, guest, reg } = await setup(1);
    // No miss handler: the fault just waits.
    const read = guest.call('load32', { addrs: [3 * PAGE] });
    await until(() => pager.storeStats(store).waitingFaults === 1, 5000, 'a pending fault');
    expect(pager.unregister(reg)).toBe(false);
    expect(pager.registrationStats(reg).pending).toBe(1);
    expect(() => pager.dropStore(store)).toThrow(/used by 1 registration/);
    pager.storePut(store, 3, pageBytes(3, 40));
    expect(await read).toEqual([43]);
    expect(pager.unregister(reg)).toBe(true);
    expect(() => pager.registrationStats(reg)).toThrow(/unknown registration/);
    // After unregistering, the memory is ordinary memory: untouched pages read zero.
    expect(await guest.call('load32', { addrs: [3 * PAGE, 4 * PAGE] })).toEqual([43, 0]);
  });

  it('zeroFillPending releases a sleeping guest so that terminate does not hang', async () => {
    const { store, guest, reg } = await setup(1);
    const read = guest.call('load32', { addrs: [6 * PAGE] });
    await until(() => pager.storeStats(store).waitingFaults === 1, 5000, 'a pending fault');
    expect(pager.zeroFillPending(reg)).toBe(1);
    expect(await read).toEqual([0]);
    expect(pager.registrationStats(reg)).toMatchObject({ pending: 0 });
    // Hangs (and the test times out) if the guest were still asleep in its fault.
    await guest.worker.terminate();
    // The worker's environment cleanup closed its registration.
    await until(() => pager.storeStats(store).registrations === 0, 2000, 'registration closed on thread exit');
  });

  it('memory.grow keeps the registration; pages past the snapshot are zero', async () => {
    const { store, guest, reg, storePages } = await setup(1, { fill: true });
    const g = await guest.call('grow', { pages: 2 });
    expect(g).toMatchObject({ old: 1, sameBase: true, bytes: 3 * WASM_PAGE });
    expect(await guest.call('load32', { addrs: [(storePages + 3) * PAGE, 2 * PAGE] })).toEqual([0, 2]);
    await guest.call('store32', { addr: (storePages + 5) * PAGE, value: 5 });
    expect(await guest.call('load32', { addrs: [(storePages + 5) * PAGE] })).toEqual([5]);
    const st = pager.registrationStats(reg);
    expect(st.zeroPages).toBe(2);
    expect(st.errors).toBe(0);
    expect(pager.storeFaultOrder(store)).toEqual(Uint32Array.from([2])); // only snapshot pages
  });

  it('registrationPopulate prefetches; registrationFill completes a clone so it can be unregistered', async () => {
    const { store, guest, reg, storePages } = await setup(1);
    for (let p = 0; p < 8; p++) pager.storePut(store, p, pageBytes(p));
    expect(pager.registrationPopulate(reg, Uint32Array.from([1, 2, 3, 20]))).toBe(3);
    expect(await guest.call('load32', { addrs: [1 * PAGE, 2 * PAGE, 3 * PAGE] })).toEqual([1, 2, 3]);
    expect(pager.registrationStats(reg).faults).toBe(0);
    let fill = pager.registrationFill(reg);
    expect(fill.copied).toBe(5);
    expect(Array.from(fill.missing)).toEqual(Array.from({ length: storePages - 8 }, (_, i) => i + 8));
    const rest = new Uint8Array((storePages - 8) * PAGE);
    for (let p = 8; p < storePages; p++) rest.set(pageBytes(p), (p - 8) * PAGE);
    pager.storePut(store, 8, rest);
    fill = pager.registrationFill(reg);
    expect(fill.missing.length).toBe(0);
    expect(pager.unregister(reg)).toBe(true);
    expect(await guest.call('sum', { addr: 0, len: storePages * PAGE })).toBe(
      Array.from({ length: storePages }, (_, p) => pageSum(pageBytes(p))).reduce((a, b) => a + b, 0n).toString(),
    );
  });

  it('a memory freed by V8 while registered is noticed (UNMAP event) and its range can be registered again', async () => {
    const { store, guest, reg } = await setup(1, { fill: true });
    expect(await guest.call('load32', { addrs: [PAGE] })).toEqual([1]);
    for (let i = 0; i < 100 && !pager.registrationStats(reg).gone; i++) {
      await guest.call('drop');
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(pager.registrationStats(reg)).toMatchObject({ gone: true, faults: 1 });
    expect(pager.storeStats(store).registrations).toBe(0);
    expect(() => pager.registrationFill(reg)).toThrow(/freed while registered/);
    await guest.call('create', { initialPages: 1, maximumPages: MAX_PAGES });
    const reg2 = await guest.register(MAX_BYTES, store);
    expect(await guest.call('load32', { addrs: [2 * PAGE] })).toEqual([2]);
    expect(pager.unregister(reg)).toBe(true);
    expect(pager.unregister(reg2)).toBe(true);
  });

  describe.skipIf(!caps?.missingShmem)('the store mapped under the memory (mapPages)', () => {
    it('mapped - pages the store holds are mapped by the kernel with no userfault; writes stay private, the store unchanged', async () => {
      const { store, guest, reg } = await setup(2, { fill: true, mapPages: true });
      const pages = [0, 1, 7, 31, 12];
      expect(await guest.call('load32', { addrs: pages.map((p) => p * PAGE) })).toEqual(pages);
      expect(await guest.call('sum', { addr: 12 * PAGE, len: PAGE })).toBe(pageSum(pageBytes(12)).toString());
      await guest.call('store32', { addr: 7 * PAGE + 8, value: 77 });
      expect(await guest.call('load32', { addrs: [7 * PAGE + 8, 7 * PAGE] })).toEqual([77, 7]);
      // Pages 0, 1, 7, 12 and 31 and their windows' neighbours (a read fault maps those present with it): counted as mapped.
      const st = pager.registrationStats(reg);
      expect(st).toMatchObject({ faults: 0, pagesCopied: 0, errors: 0 });
      expect(st.pagesMapped).toBeGreaterThanOrEqual(pages.length);
      // Another clone of the store sees the snapshot's page, not the first clone's write; so does the store.
      const other = await GuestWorker.start();
      cleanup.push(() => other.stop(pager));
      await other.call('create', { initialPages: 2, maximumPages: MAX_PAGES });
      const reg2 = await other.register(MAX_BYTES, store);
      expect(await other.call('load32', { addrs: [7 * PAGE + 8] })).toEqual([new DataView(pageBytes(7).buffer).getUint32(8, true)]);
      expect(pager.storeRead(store, 7, 1)).toEqual(pageBytes(7));
      expect(pager.unregister(reg2)).toBe(true);
    });

    it('mapped - a page the store lacks faults to the pager, is asked for, and its put wakes the guest; the next clone maps it with no fault', async () => {
      const { store, guest, reg } = await setup(1, { mapPages: true });
      const asked = answerMissesLater(store);
      expect(await guest.call('load32', { addrs: [9 * PAGE] })).toEqual([1009]);
      expect(asked).toEqual([[9]]);
      expect(pager.registrationStats(reg)).toMatchObject({ missFaults: 1, pending: 0, errors: 0 });
      expect(await guest.call('sum', { addr: 9 * PAGE, len: PAGE })).toBe(pageSum(pageBytes(9, 1000)).toString());
      const next = await GuestWorker.start();
      cleanup.push(() => next.stop(pager));
      await next.call('create', { initialPages: 1, maximumPages: MAX_PAGES });
      const reg2 = await next.register(MAX_BYTES, store);
      expect(await next.call('load32', { addrs: [9 * PAGE] })).toEqual([1009]);
      expect(pager.registrationStats(reg2)).toMatchObject({ faults: 0 });
      expect(pager.unregister(reg2)).toBe(true);
    });

    it('mapped - zero pages and pages past the snapshot read zero through the pager, and take writes', async () => {
      const { store, guest, reg, storePages } = await setup(1, { mapPages: true });
      pager.storeMarkZero(store, new Uint8Array(2).fill(0xff)); // pages 0..15
      expect(await guest.call('load32', { addrs: [5 * PAGE] })).toEqual([0]);
      await guest.call('store32', { addr: 12 * PAGE + 8, value: 77 });
      expect(await guest.call('load32', { addrs: [12 * PAGE + 8, 12 * PAGE] })).toEqual([77, 0]);
      expect(await guest.call('grow', { pages: 1 })).toMatchObject({ sameBase: true });
      await guest.call('store32', { addr: (storePages + 3) * PAGE, value: 5 });
      expect(await guest.call('load32', { addrs: [(storePages + 3) * PAGE, (storePages + 4) * PAGE] })).toEqual([5, 0]);
      const st = pager.registrationStats(reg);
      expect(st.zeroPages).toBeGreaterThanOrEqual(4);
      expect(st).toMatchObject({ missFaults: 0, errors: 0, pending: 0 });
    });
  });

  it('refuses what would lose data or corrupt state', async () => {
    const { store, guest } = await setup(1);
    await expect(guest.call('register', { maximumBytes: MAX_BYTES, storeId: store })).rejects.toThrow(/already registered/);
    await expect(guest.call('register', { maximumBytes: MAX_BYTES, storeId: 99999 })).rejects.toThrow();
    expect(() => pager.storePut(store, 15, new Uint8Array(2 * PAGE))).toThrow(/outside store/);
    expect(() => pager.storePut(store, 0, new Uint8Array(100))).toThrow(/whole number of pages/);
    expect(() => pager.createStore(8, 1024)).toThrow(/system page size/);
    expect(() => pager.trackDirty(new WebAssembly.Memory({ initial: 1 }), 100, 'async')).toThrow(/multiple/);
  });
});
