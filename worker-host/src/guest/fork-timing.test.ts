/**
 * Local fork time through the pool, copy-on-write against copying, printed:
 * from run() to onStarted (instance ready, on_restore returned) and the
 * instance-creation part alone, for pattern parents of several sizes. 64 MiB
 * by default; FLURRY_FORK_TIMING_MIB=64,256,1023 for the full measurement
 * (1023 MiB is pattern's largest region in its 1 GiB maximum).
 */
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from '@flurry/core';
import { nativePagerStatus } from '../native/pager.js';
import { GuestPool, type PagerMode } from './guest-pool.js';

const PATTERN = new Uint8Array(readFileSync(new URL('../../../functions/build/pattern.wasm', import.meta.url)));
const SIZES_MIB = (process.env.FLURRY_FORK_TIMING_MIB ?? '64').split(',').map(Number);
const limits = { callTimeoutMs: 60_000, initTimeoutMs: 120_000, maxOutputBytes: 1 << 20, maxLogLines: 64, maxLogBytes: 65536 };
const bytes = (s: string) => new TextEncoder().encode(s);
/** The clone only starts: no verifying, no writing. */
const IDLE_RUN = bytes('{"verify": "none", "write": false}');
const status = nativePagerStatus();
const PAGERS: PagerMode[] = status.copyOnWrite ? ['native', 'portable'] : ['portable'];
if (!status.copyOnWrite) console.warn(`[fork timing] copy-on-write not measured: ${status.reason}`);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const ms = (x: number) => (x < 10 ? x.toFixed(2) : x.toFixed(0));
const pause = (t: number) => new Promise((resolve) => setTimeout(resolve, t));

interface Sample {
  /** run() called -> onStarted on this thread. */
  toStarted: number;
  /** The instance (clone variant, memory, globals) alone. */
  restore: number;
  spare: boolean;
}

async function fork(pool: GuestPool, key: string): Promise<Sample> {
  const called = performance.now();
  let toStarted = 0;
  const result = await pool.run(key, 0, 1, IDLE_RUN, 'timing', undefined, () => (toStarted = performance.now() - called));
  return { toStarted, restore: result.memory!.restoreMs, spare: result.memory!.spare };
}

describe('fork timing', () => {
  const pools: GuestPool[] = [];
  afterAll(() => Promise.all(pools.map((p) => p.close())));

  for (const mib of SIZES_MIB) {
    for (const pager of PAGERS) {
      it(`timing - local fork of a ${mib} MiB parent, ${pager === 'native' ? 'copy-on-write' : 'copying'}`, async () => {
        const pool = await GuestPool.start({ threads: 1, limits, log: createLogger('test', {}, 'silent'), pager });
        pools.push(pool);
        try {
          // Two parents, forked in turn: a thread keeps a spare instance of the key it served last only, so each fork is cold.
          await pool.warm('a', PATTERN, bytes(String(mib)));
          await pool.warm('b', PATTERN, bytes(String(mib)));
          const samples = mib >= 512 && pager === 'portable' ? 3 : 10;
          const cold: Sample[] = [];
          for (let i = 0; i < samples; i++) {
            cold.push(await fork(pool, i % 2 ? 'b' : 'a'));
            await pause(20);
          }
          // One parent forked repeatedly with gaps: the spare made while the thread idled serves the next call.
          const spared: Sample[] = [];
          for (let i = 0; i < samples; i++) {
            spared.push(await fork(pool, 'a'));
            await pause(20);
          }
          expect(cold.every((s) => !s.spare)).toBe(true);
          const withSpare = spared.slice(1);
          const spareNote = withSpare.every((s) => s.spare)
            ? `with a spare ready: run() -> started ${ms(median(withSpare.map((s) => s.toStarted)))} ms`
            : 'no spares (a copied clone over 64 MiB is not kept ahead)';
          console.log(
            `fork ${mib} MiB ${pager === 'native' ? 'cow ' : 'copy'}: cold run() -> started median ${ms(median(cold.map((s) => s.toStarted)))} ms ` +
              `(min ${ms(Math.min(...cold.map((s) => s.toStarted)))}), instance alone ${ms(median(cold.map((s) => s.restore)))} ms; ${spareNote} (${samples} samples)`,
          );
          if (pager === 'native') expect(median(cold.map((s) => s.toStarted))).toBeLessThan(50);
        } finally {
          await pool.close();
        }
      });
    }
  }
});
