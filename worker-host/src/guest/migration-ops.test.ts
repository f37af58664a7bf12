/**
 * The dirty tracker's range: write protection is armed over twice the memory
 * (at least 64 MiB more), not the 4 GiB it may grow to; pages of a memory
 * grown past that range are sent at every collection, whatever they hold.
 * Armed in steps, between which the instance runs: a copy-on-write clone's
 * page written before its step is one of its own pages (round 0 sends it), one
 * written after is tracked (a later round sends it), none is lost.
 */
import { describe, expect, it } from 'vitest';
import { createCowMemory } from '../native/cow-memory.js';
import type { NativePager } from '../native/pager.js';
import { loadAddon, PAGE, WASM_PAGE } from '../native/fixtures/harness.mjs';
import { DirtyTracker, trackedBytesFor } from './migration-ops.js';

const { pager: addon, why } = loadAddon();
const pager = addon as NativePager | undefined;
const caps = pager?.capabilities();
const skip = !pager ? why : !(caps?.writeProtect && caps.wpAsync && caps.pagemapScan) ? `no WP_ASYNC dirty tracking here: ${caps?.reason ?? 'kernel < 6.7'}` : undefined;
if (skip) console.warn(`migration-ops.test.ts: skipping the native tracker: ${skip}`);
const MiB = 1024 * 1024;

describe('dirty tracker range', () => {
  it('trackedBytesFor - twice the memory, at least 64 MiB more, in wasm pages, never past the maximum nor below the memory', () => {
    expect(trackedBytesFor(256 * MiB, 4096 * MiB)).toBe(512 * MiB);
    expect(trackedBytesFor(MiB, 4096 * MiB)).toBe(65 * MiB);
    expect(trackedBytesFor(PAGE * 3, 4096 * MiB)).toBe(64 * MiB + WASM_PAGE);
    expect(trackedBytesFor(256 * MiB, 300 * MiB)).toBe(300 * MiB);
    expect(trackedBytesFor(256 * MiB, 100 * MiB)).toBe(256 * MiB);
  });

  it.skipIf(!!skip)('a memory grown past the tracked range - the pages past it are sent at every round, zeroed or not; the others only when written', () => {
    const memory = new WebAssembly.Memory({ initial: 4, maximum: 2048 });
    const tracker = new DirtyTracker(memory, 'async', pager, 2048 * WASM_PAGE);
    try {
      expect(() => tracker.round()).toThrow(/not armed/);
      while (!tracker.arm());
      const view = () => new Uint8Array(memory.buffer);
      view()[5 * PAGE] = 1;
      expect(Array.from(tracker.round().pages)).toEqual([5]);
      // Tracked: 64 MiB + 256 KiB. Grown to 68.75 MiB; one page inside the range and two past it written.
      const firstUntracked = trackedBytesFor(4 * WASM_PAGE, 2048 * WASM_PAGE) / PAGE;
      memory.grow(1100 - 4);
      const end = (1100 * WASM_PAGE) / PAGE;
      for (const p of [10, firstUntracked + 10, firstUntracked + 500]) view()[p * PAGE + 7] = 2;
      expect(Array.from(tracker.round().pages).sort((a, b) => a - b)).toEqual([10, firstUntracked + 10, firstUntracked + 500]);
      // Nothing written: every page past the range is sent again (tracking cannot tell), none inside it.
      const again = tracker.round();
      expect(Array.from(again.pages)).toEqual(Array.from({ length: end - firstUntracked }, (_, i) => firstUntracked + i));
      // Zeroed past the range: sent (as zeros); written inside it: sent.
      view().fill(0, (firstUntracked + 10) * PAGE, (firstUntracked + 11) * PAGE);
      view()[11 * PAGE] = 3;
      const last = tracker.round();
      expect(last.pages.includes(11)).toBe(true);
      expect(last.pages.includes(10)).toBe(false);
      const at = last.pages.indexOf(firstUntracked + 10);
      expect(at).toBeGreaterThanOrEqual(0);
      expect(last.bytes.subarray(at * PAGE, (at + 1) * PAGE).every((b) => b === 0)).toBe(true);
    } finally {
      tracker.stop();
    }
  });

  it.skipIf(!!skip)('armed in steps while the clone writes - each page written before its step is its own, each written after is tracked, none lost', () => {
    const snapshotPages = 64;
    const img = new Uint8Array(snapshotPages * PAGE);
    for (let p = 0; p < snapshotPages; p++) img[p * PAGE] = p + 1;
    const fd = pager!.memfdCreate('arm-steps', img);
    try {
      const memory = createCowMemory(pager!, fd, img.length, 64);
      const view = () => new Uint8Array(memory.buffer);
      const write = (pages: number[], v: number) => pages.forEach((p) => (view()[p * PAGE + 9] = v));
      write([3, 40], 1); // written since the fork, before tracking began
      const tracker = new DirtyTracker(memory, 'async', pager, 64 * WASM_PAGE, true);
      try {
        const step = 16 * PAGE;
        expect(tracker.arm(step)).toBe(false); // pages 0-15 armed
        write([5, 20, 50], 2); // 5 after its step (tracked); 20 and 50 before theirs (own)
        expect(tracker.arm(step)).toBe(false); // 16-31
        write([20, 33], 3); // 20 again, now tracked; 33 before its step
        while (!tracker.arm(step));
        write([60], 4);
        const own = new Set<number>();
        for (let more = true; more; ) {
          const slice = tracker.round(4, true);
          slice.pages.forEach((p) => own.add(p));
          more = slice.more;
        }
        expect([...own].sort((a, b) => a - b)).toEqual([3, 20, 33, 40, 50]);
        expect(Array.from(tracker.round(Infinity, true).pages).sort((a, b) => a - b)).toEqual([5, 20, 60]);
        expect(Array.from(tracker.round(Infinity, true).pages)).toEqual([]);
      } finally {
        tracker.stop();
      }
    } finally {
      pager!.closeFd(fd);
    }
  });
});
