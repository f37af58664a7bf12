/**
 * The dirty tracker's range: write protection is armed over twice the memory
 * (at least 64 MiB more), not the 4 GiB it may grow to; pages of a memory
 * grown past that range are sent at every collection, whatever they hold.
 */
import { describe, expect, it } from 'vitest';
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
});
