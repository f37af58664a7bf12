import { describe, expect, it } from 'vitest';
import { faultTiming, probeFaults, quantile } from './fault-probe.js';
import { loadNativePager, nativePagerStatus } from './pager.js';

describe('fault probe', () => {
  it('timing - takes the clock cost off the median and p99, never below zero', () => {
    const times = Array.from({ length: 100 }, (_, i) => 1000 + i * 10); // 1000 … 1990 ns
    expect(faultTiming(times, 40)).toEqual({ samples: 100, medianUs: (1500 - 40) / 1000, p99Us: (1990 - 40) / 1000 });
    expect(faultTiming([10, 20], 50)).toMatchObject({ medianUs: 0, p99Us: 0 });
  });

  it('quantile - of no samples is NaN, of one is that one', () => {
    expect(quantile([], 0.5)).toBeNaN();
    expect(quantile([7], 0.99)).toBe(7);
  });

  it('probe - times real faults: every touch of every round, lazy ones through the pager where it works', () => {
    const f = probeFaults({ pages: 512, rounds: 2, chunkPages: 16 });
    expect(f.clockNs).toBeGreaterThan(0);
    expect(f.firstTouchWrite?.samples).toBe(1024);
    expect(f.firstTouchRead?.samples).toBe(1024);
    expect(f.firstTouchWrite!.medianUs).toBeGreaterThan(0);
    if (nativePagerStatus().available) {
      expect(f.path).toBe('userfaultfd');
      expect(f.lazyPagePager?.samples).toBe(1024);
      expect(f.lazyChunk).toMatchObject({ samples: 64, chunkPages: 16 });
      // Mapped: one touch per 16-page window (each a fault of its own); else every page, through the pager.
      const perRound = f.mapped ? 512 / 16 : 512;
      expect(f.lazyPage?.samples).toBe(2 * perRound);
      expect(f.lazyPageWrite?.samples).toBe(2 * perRound);
      if (f.mapped) expect(f.lazyWindow?.samples).toBe(2 * perRound);
      else expect(f.lazyWindow).toBeNull();
      expect(f.mapped).toBe(loadNativePager().capabilities().missingShmem === true);
      // A served fault is a real fault: it costs more than the clock alone, and the handler's part is inside it.
      expect(f.lazyPage!.medianUs).toBeGreaterThan(0);
      expect(f.lazyPagePager!.medianUs).toBeGreaterThan(0);
      expect(f.handlerUs).toBeGreaterThan(0);
    } else {
      expect(f.path).toMatch(/^portable/);
      expect(f.lazyPage).toBeNull();
    }
  });
});
