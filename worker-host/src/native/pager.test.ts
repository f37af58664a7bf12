/**
 * The wrapper, the capabilities probe, and the V8 internals the pager relies
 * on. If one of the "V8 assumption" tests fails after a Node upgrade, the
 * native pager is NOT safe to use: see the header of pager.ts.
 */
import { describe, expect, it, vi } from 'vitest';
import { checkV8Assumptions, loadNativePager, nativePagerStatus, NATIVE_PAGER_PATH, type NativePager } from './pager.js';
import { loadAddon, PAGE, WASM_PAGE, wasmInstance } from './fixtures/harness.mjs';

const { pager: addon, why } = loadAddon();
const pager = addon as NativePager;
if (!addon) console.warn(`[native pager] skipping addon tests: ${why}`);
const caps = addon ? pager.capabilities() : undefined;
/** Why a test that needs a capability is skipped here (printed), or undefined when it runs. */
function lacks(capability: 'writeProtect' | 'pagemapScan', what: string): string | undefined {
  if (!caps || caps[capability]) return undefined;
  const reason = `${capability} unavailable: ${what} skipped`;
  console.warn(`[native pager] ${reason}`);
  return reason;
}

describe('native pager wrapper', () => {
  it('nativePagerStatus never throws and explains itself', () => {
    const s = nativePagerStatus();
    expect(s.path).toBe(NATIVE_PAGER_PATH);
    expect(s.pager).toBe(s.available ? 'userfaultfd' : 'portable');
    if (!s.available) expect(s.reason).toBeTruthy();
    console.info(`[native pager] status: ${JSON.stringify(s)}`);
  });

  it('reports a clear error when the addon is not built', async () => {
    vi.resetModules();
    const saved = process.env.FLURRY_PAGER_ADDON;
    process.env.FLURRY_PAGER_ADDON = '/nonexistent/flurry_pager.node';
    try {
      const mod = await import('./pager.js');
      const s = mod.nativePagerStatus();
      expect(s).toMatchObject({ available: false, pager: 'portable', copyOnWrite: false });
      expect(s.reason).toMatch(/not built.*node-gyp rebuild/);
      expect(() => mod.loadNativePager()).toThrow(/not built/);
    } finally {
      if (saved === undefined) delete process.env.FLURRY_PAGER_ADDON;
      else process.env.FLURRY_PAGER_ADDON = saved;
      vi.resetModules();
    }
  });
});

describe.skipIf(!addon)('native pager addon', () => {
  it('capabilities are probed once and are consistent', () => {
    const c = pager.capabilities();
    console.info(`[native pager] capabilities: ${JSON.stringify(c)}`);
    expect(c).toEqual(pager.capabilities());
    expect(typeof c.userfaultfd).toBe('boolean');
    expect(c.pageSize).toBe(PAGE);
    if (!c.userfaultfd) expect(c.reason).toBeTruthy();
    if (c.wpAsync) expect(c.userfaultfd).toBe(true);
    expect(loadNativePager()).toBe(pager); // the wrapper loads the same build
    const s = nativePagerStatus();
    expect(s.available).toBe(c.userfaultfd);
    expect(s.copyOnWrite).toBe(true);
    if (c.wpAsync && c.pagemapScan) expect(s.dirtyTracking[0]).toBe('async');
  });

  it('is usable from several threads at once (context-aware, one handler thread)', async () => {
    const { Worker } = await import('node:worker_threads');
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      const p = require(workerData);
      const s = p.createStore(4);
      p.storePut(s, 1, new Uint8Array(4096).fill(3));
      parentPort.postMessage({ s, has: p.storeHas(s, 1) });`;
    const results = await Promise.all(
      [0, 1, 2].map(
        () =>
          new Promise<{ s: number; has: string }>((resolve, reject) => {
            const w = new Worker(code, { eval: true, workerData: NATIVE_PAGER_PATH });
            w.once('message', (m) => {
              resolve(m);
              void w.terminate();
            });
            w.once('error', reject);
          }),
      ),
    );
    // Stores are process-wide: visible from this thread, with distinct ids.
    expect(new Set(results.map((r) => r.s)).size).toBe(3);
    for (const r of results) {
      expect(r.has).toBe('present');
      expect(pager.storeHas(r.s, 1)).toBe('present');
      expect(pager.storeRead(r.s, 1, 1)![100]).toBe(3);
      expect(pager.storeRead(r.s, 0, 2)).toBeNull();
      pager.dropStore(r.s);
    }
  });
});

/*
 * V8 internals (Node 20, x64). These must fail loudly if V8 changes.
 */
describe.skipIf(!addon)('V8 assumptions the native pager relies on', () => {
  it('a WebAssembly.Memory keeps its base address across grow (in-place growth of one reservation)', () => {
    const m = new WebAssembly.Memory({ initial: 1, maximum: 65536 });
    const base = pager.memoryAddress(m);
    expect(base % BigInt(PAGE)).toBe(0n);
    const buffers = new Set<ArrayBuffer>([m.buffer]);
    for (const n of [1, 15, 100, 1000]) {
      m.grow(n);
      buffers.add(m.buffer);
      expect(pager.memoryAddress(m)).toBe(base);
    }
    expect(buffers.size).toBe(5); // buffer objects are replaced, the address is not
  });

  it.skipIf(lacks('writeProtect', 'the reservation check'))('the reservation extends to the declared maximum (registering up to it works)', () => {
    const m = new WebAssembly.Memory({ initial: 1, maximum: 65536 });
    // A tracker registers [base, base + 4 GiB): registering throws if any of it is unmapped.
    const t = pager.trackDirty(m, 65536 * WASM_PAGE, caps!.wpAsync ? 'async' : 'sync');
    try {
      new Uint8Array(m.buffer)[3 * PAGE] = 1;
      // The scan covers the whole registered range, up to the maximum.
      expect(Array.from(pager.collectDirty(t))).toEqual([3]);
    } finally {
      pager.stopTracking(t);
    }
  });

  it('a MAP_FIXED private mapping over the backing store is what wasm loads see, and survives grow', async () => {
    expect(checkV8Assumptions(pager)).toBeUndefined();
    const m = new WebAssembly.Memory({ initial: 1, maximum: 4 });
    const e = await wasmInstance(m);
    const img = new Uint8Array(WASM_PAGE);
    new DataView(img.buffer).setUint32(8 * PAGE, 0x01020304, true);
    const fd = pager.memfdCreate('v8-check', img);
    try {
      pager.mapSnapshotPrivate(m, fd, WASM_PAGE);
    } finally {
      pager.closeFd(fd); // the mapping keeps the file alive
    }
    expect(e.load32(8 * PAGE)).toBe(0x01020304);
    e.store32(8 * PAGE, 5);
    expect(e.grow(1)).toBe(1);
    expect(e.load32(8 * PAGE)).toBe(5);
    expect(new DataView(m.buffer).getUint32(8 * PAGE, true)).toBe(5);
  });

  it.skipIf(lacks('pagemapScan', 'the fresh-memory check'))('V8 does not touch the pages of a fresh memory (no private pages until written)', () => {
    const m = new WebAssembly.Memory({ initial: 16, maximum: 32 });
    expect(Array.from(pager.privatePages(m, 16 * WASM_PAGE))).toEqual([]);
    new Uint8Array(m.buffer)[3 * PAGE] = 1;
    expect(Array.from(pager.privatePages(m, 16 * WASM_PAGE))).toEqual([3]);
  });
});
