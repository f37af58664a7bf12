/** Round 0 paced by the instance's requests: back off while they run late, ease off when they do not, never past the floor. */
import { describe, expect, it } from 'vitest';
import { LATENCY_PACING, LatencyPacer } from './latency-pacing.js';

describe('latency pacing', () => {
  it('waits - none while requests take their usual host time, or none came', () => {
    const pacer = new LatencyPacer(0.5);
    expect(pacer.nextWaitMs()).toBe(0);
    pacer.answered(0.4);
    pacer.answered(0.5 + LATENCY_PACING.allowanceMs);
    expect(pacer.nextWaitMs()).toBe(0);
    expect(pacer.waitedMs).toBe(0);
  });

  it('backs off - doubling from the first wait while requests run late, up to the longest wait (the floor of the rate)', () => {
    const pacer = new LatencyPacer(0.5);
    const waits: number[] = [];
    for (let i = 0; i < 6; i++) {
      pacer.answered(0.2);
      pacer.answered(9);
      waits.push(pacer.nextWaitMs());
    }
    expect(waits).toEqual([4, 8, 16, 32, 32, 32]);
    expect(pacer.waitedMs).toBe(124);
  });

  it('eases off - halving once requests are on time again, then none; a late request before the next slice only counts once', () => {
    const pacer = new LatencyPacer(1, { allowanceMs: 2, firstWaitMs: 4, maxWaitMs: 16 });
    for (let i = 0; i < 3; i++) {
      pacer.answered(20);
      pacer.nextWaitMs();
    }
    const waits = [pacer.nextWaitMs(), pacer.nextWaitMs(), pacer.nextWaitMs(), pacer.nextWaitMs()];
    expect(waits).toEqual([8, 4, 2, 0]);
  });

  it('bad input - a usual host time that is not a number at or above 0 is refused', () => {
    expect(() => new LatencyPacer(Number.NaN)).toThrow(/usual host time must be a number of ms at or above 0, not NaN/);
    expect(() => new LatencyPacer(-1)).toThrow(RangeError);
  });
});
