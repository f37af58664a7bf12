/**
 * Dirty tracking for live migration: UFFD_FEATURE_WP_ASYNC + PAGEMAP_SCAN
 * ('async') and synchronous write-protect faults served by the addon's handler
 * thread ('sync'). Both must report exactly the pages written since the last
 * collect. The memories here are not lazy, so this thread may write them.
 */
import { describe, expect, it } from 'vitest';
import { createCowMemory } from './cow-memory.js';
import type { DirtyMode, NativePager } from './pager.js';
import { loadAddon, PAGE, pageBytes, WASM_PAGE, wasmInstance } from './fixtures/harness.mjs';

const { pager: addon, why } = loadAddon();
const pager = addon as NativePager;
const caps = addon?.capabilities();

function skipReason(mode: DirtyMode): string | undefined {
  if (!addon) return why;
  if (!caps.userfaultfd || !caps.writeProtect) return `userfaultfd write-protect unavailable: ${caps.reason}`;
  if (mode === 'async' && !(caps.wpAsync && caps.pagemapScan)) return 'UFFD_FEATURE_WP_ASYNC or PAGEMAP_SCAN unavailable (kernel < 6.7)';
  if (mode === 'sync' && !caps.wpUnpopulated) return 'UFFD_FEATURE_WP_UNPOPULATED unavailable (kernel < 6.4)';
  return undefined;
}

const sorted = (a: Iterable<number>) => Array.from(new Set(a)).sort((x, y) => x - y);

for (const mode of ['async', 'sync'] as const) {
  const skip = skipReason(mode);
  if (skip) console.warn(`[native pager] skipping dirty tracking (${mode}): ${skip}`);

  describe.skipIf(!!skip)(`native pager: dirty tracking (${mode})`, () => {
    it('reports exactly the pages written since the last collect, with wasm and JS writes', async () => {
      const maxPages = 32;
      const memory = new WebAssembly.Memory({ initial: 4, maximum: maxPages });
      const e = await wasmInstance(memory);
      // Some pages populated before tracking starts (they must not show up).
      for (let p = 0; p < 64; p += 2) e.store32(p * PAGE, p);
      const t = pager.trackDirty(memory, maxPages * WASM_PAGE, mode);
      try {
        expect(Array.from(pager.collectDirty(t))).toEqual([]);
        const first = [1, 2, 3, 10, 40, 63, 17];
        for (const p of first) e.store32(p * PAGE + 12, 1000 + p);
        new Uint8Array(memory.buffer)[50 * PAGE + 4095] = 7; // a JS write, last byte of page 50
        // Reads are not writes (populated and unpopulated pages).
        e.load32(4 * PAGE);
        e.load32(5 * PAGE);
        expect(Array.from(pager.collectDirty(t))).toEqual(sorted([...first, 50]));
        expect(Array.from(pager.collectDirty(t))).toEqual([]);
        // Second round: overlapping and new pages, several writes per page.
        const second = [2, 3, 4, 61];
        for (const p of second) for (let k = 0; k < 5; k++) e.store32(p * PAGE + k * 8, k);
        expect(Array.from(pager.collectDirty(t, memory))).toEqual(second); // scan limited to the current size
        // Growth: new pages are tracked too.
        e.grow(2);
        const grown = [4 * 16, 5 * 16 + 3];
        for (const p of grown) e.store32(p * PAGE, 1);
        e.store32(6 * PAGE, 1);
        e.load32(5 * 16 * PAGE); // reading grown memory is not writing it
        expect(Array.from(pager.collectDirty(t))).toEqual(sorted([6, ...grown]));
        e.store32(5 * 16 * PAGE, 1); // ... until it is written
        expect(Array.from(pager.collectDirty(t, memory.buffer.byteLength))).toEqual([5 * 16]);
        // Values written are all there.
        expect(e.load32(40 * PAGE + 12)).toBe(1040);
        expect(e.load32(61 * PAGE + 32)).toBe(4);
        if (mode === 'sync') expect(pager.registrationStats(t).wpFaults).toBeGreaterThanOrEqual(first.length + second.length + 3);
      } finally {
        pager.stopTracking(t);
      }
      // After stopping, writes go on normally.
      e.store32(9 * PAGE, 9);
      expect(e.load32(9 * PAGE)).toBe(9);
      expect(() => pager.collectDirty(t)).toThrow(/unknown tracker/);
    });

    it('tracks a copy-on-write clone (file-backed private mapping)', async () => {
      const img = new Uint8Array(2 * WASM_PAGE);
      for (let p = 0; p < 32; p++) if (p % 3) img.set(pageBytes(p), p * PAGE);
      const fd = pager.memfdCreate('snap', img);
      try {
        const memory = createCowMemory(pager, fd, img.length, 8);
        const e = await wasmInstance(memory);
        e.load32(PAGE); // a read maps the file page
        const t = pager.trackDirty(memory, 8 * WASM_PAGE, mode);
        try {
          const pages = [0, 1, 3, 31];
          for (const p of pages) e.store32(p * PAGE + 4, 5);
          e.load32(2 * PAGE);
          expect(Array.from(pager.collectDirty(t))).toEqual(pages);
          expect(e.load32(PAGE) >>> 0).toBe(1);
          expect(e.load32(PAGE + 4)).toBe(5);
          e.store32(1 * PAGE + 8, 6);
          expect(Array.from(pager.collectDirty(t))).toEqual([1]);
        } finally {
          pager.stopTracking(t);
        }
      } finally {
        pager.closeFd(fd);
      }
    });

    it('privatePages - a copy-on-write clone\'s written pages, in a part of it given by offset', async () => {
      const img = new Uint8Array(WASM_PAGE);
      for (let p = 0; p < 16; p++) img.set(pageBytes(p), p * PAGE);
      const fd = pager.memfdCreate('snap-own', img);
      try {
        const memory = createCowMemory(pager, fd, img.length, 2);
        const e = await wasmInstance(memory);
        for (let p = 0; p < 16; p++) e.load32(p * PAGE); // read: still the file's pages
        for (const p of [2, 7, 8, 15]) e.store32(p * PAGE, 9);
        expect(Array.from(pager.privatePages(memory, WASM_PAGE))).toEqual([2, 7, 8, 15]);
        expect(Array.from(pager.privatePages(memory, 4 * PAGE, 6 * PAGE))).toEqual([7, 8]);
        expect(() => pager.privatePages(memory, 4 * PAGE, 14 * PAGE)).toThrow(/within the memory/);
      } finally {
        pager.closeFd(fd);
      }
    });

    it('armed in steps - a page counts as written until its step, collect refuses until all is armed', async () => {
      const memory = new WebAssembly.Memory({ initial: 1, maximum: 4 });
      const e = await wasmInstance(memory);
      const t = pager.trackDirty(memory, 4 * WASM_PAGE, mode, 0);
      try {
        e.store32(1 * PAGE, 1); // before any step: not tracked
        expect(pager.armDirty(t, 8 * PAGE)).toBe(8 * PAGE);
        e.store32(2 * PAGE, 2); // after its step: tracked
        e.store32(12 * PAGE, 3); // before its step: not tracked
        expect(() => pager.collectDirty(t)).toThrow(/armed over 32768 of 262144 bytes/);
        expect(pager.armDirty(t, 8 * WASM_PAGE)).toBe(4 * WASM_PAGE); // the rest, clipped to the range
        e.store32(13 * PAGE, 4);
        expect(Array.from(pager.collectDirty(t))).toEqual([2, 13]);
        expect(e.load32(12 * PAGE)).toBe(3);
      } finally {
        pager.stopTracking(t);
      }
    });

    it('refuses to track a range already tracked', () => {
      const memory = new WebAssembly.Memory({ initial: 1, maximum: 4 });
      const t = pager.trackDirty(memory, 4 * WASM_PAGE, mode);
      try {
        expect(() => pager.trackDirty(memory, 4 * WASM_PAGE, mode)).toThrow(/already registered or tracked/);
      } finally {
        pager.stopTracking(t);
      }
    });
  });
}
