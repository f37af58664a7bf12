import { describe, expect, it } from 'vitest';
import { StallClock } from './stall-clock.js';

describe('stall clock', () => {
  it('ranSince - a gap between ticks far longer than asked is a stop, not counted as running time', () => {
    const clock = new StallClock(0);
    try {
      for (let t = 250; t <= 1000; t += 250) clock.tick(t);
      clock.tick(12_000); // the process stood still from about 1,250 to 12,000
      expect(clock.ranSince(500, 12_500)).toBe(12_500 - 500 - (12_000 - 1_250));
      // Before the stop, nothing is taken off.
      expect(clock.ranSince(0, 1_000)).toBe(1_000);
    } finally {
      clock.stop();
    }
  });

  it('ranSince - ticks a little late (a busy event loop) are not stops', () => {
    const clock = new StallClock(0);
    try {
      for (let t = 600; t <= 6_000; t += 600) clock.tick(t);
      expect(clock.ranSince(0, 6_000)).toBe(6_000);
    } finally {
      clock.stop();
    }
  });

  it('ranSince - a stop seen first by the caller (its timer fired before the ticker) is taken off too', () => {
    const clock = new StallClock(0);
    try {
      expect(clock.ranSince(0, 11_000)).toBe(11_000 - (11_000 - 250));
    } finally {
      clock.stop();
    }
  });
});
