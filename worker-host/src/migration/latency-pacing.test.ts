/** Round 0 paced by the instance's requests: start low, double while on time, halve when late then add, never past the floor. */
import { describe, expect, it } from 'vitest';
import { LATENCY_PACING, LatencyPacer, type LatencyPacingOptions } from './latency-pacing.js';

const KiB = 1024;
const MiB = 1024 * KiB;
/** A 256 KiB slice every 16 ms at the start, 8 MiB more a second per on-time slice, at most 128 MiB/s, waits of at most 32 ms. */
const OPTS: LatencyPacingOptions = { allowanceMs: 2, startBytesPerS: 16 * MiB, marginBytesPerS: 8 * MiB, capBytesPerS: 128 * MiB, maxWaitMs: 32 };
const SLICE = 256 * KiB;

/** Slices of `SLICE` that take no time, each after `hostMs` requests (or none): the waits asked for. */
function waits(pacer: LatencyPacer, hostMs: (number | undefined)[]): number[] {
  let now = 1000;
  const out: number[] = [];
  pacer.nextWaitMs(0, now);
  for (const ms of hostMs) {
    if (ms !== undefined) pacer.answered(ms);
    const wait = pacer.nextWaitMs(SLICE, now);
    out.push(wait);
    now += wait;
  }
  return out;
}

describe('latency pacing', () => {
  it('starts low - the first slice at once, the next ones at the start rate, not at full speed', () => {
    const pacer = new LatencyPacer(0.5, OPTS);
    expect(pacer.nextWaitMs(0, 0)).toBe(0);
    // No request answered yet: no evidence, the start rate (256 KiB at 16 MiB/s: 15.6 ms).
    expect(pacer.nextWaitMs(SLICE, 0)).toBeCloseTo(15.625, 3);
    expect(pacer.bytesPerS).toBe(16 * MiB);
  });

  it('slow start - doubles the rate for each slice while requests are on time, up to the cap', () => {
    const pacer = new LatencyPacer(0.5, OPTS);
    expect(waits(pacer, [0.4, 0.5 + OPTS.allowanceMs, 0.3, 0.2, 0.2])).toEqual([7.8125, 3.90625, 1.953125, 1.953125, 1.953125]);
    expect(pacer.bytesPerS).toBe(128 * MiB);
  });

  it('backs off - halves the rate when a request runs late, then raises it by the margin only (additive increase)', () => {
    const pacer = new LatencyPacer(0.5, OPTS);
    waits(pacer, [0.4, 0.4]);
    expect(pacer.bytesPerS).toBe(64 * MiB);
    waits(pacer, [9]);
    expect(pacer.bytesPerS).toBe(32 * MiB);
    waits(pacer, [0.4, 0.4]);
    expect(pacer.bytesPerS).toBe(48 * MiB);
  });

  it('floor - late requests never make a slice wait more than the longest wait, so the copy always ends', () => {
    const pacer = new LatencyPacer(0.5, OPTS);
    const late = waits(pacer, Array.from({ length: 8 }, () => 50));
    expect(Math.max(...late)).toBe(OPTS.maxWaitMs);
    expect(pacer.bytesPerS).toBe((SLICE * 1000) / OPTS.maxWaitMs);
    expect(pacer.waitedMs).toBe(late.reduce((a, b) => a + b, 0));
  });

  it('the slice own time counts - a slice that took longer than its share of the rate is followed at once', () => {
    const pacer = new LatencyPacer(0.5, OPTS);
    pacer.nextWaitMs(0, 0);
    expect(pacer.nextWaitMs(SLICE, 20)).toBe(0);
    expect(pacer.nextWaitMs(SLICE, 25)).toBeCloseTo(10.625, 3);
  });

  it('no evidence - a slice with no request answered since the last keeps the rate', () => {
    const pacer = new LatencyPacer(0.5, OPTS);
    waits(pacer, [undefined, undefined, undefined]);
    expect(pacer.bytesPerS).toBe(16 * MiB);
  });

  it('defaults - start low and raise to a cap above what the machines copy at', () => {
    expect(LATENCY_PACING.startBytesPerS).toBeLessThan(LATENCY_PACING.capBytesPerS);
    expect(new LatencyPacer(0.2).bytesPerS).toBe(LATENCY_PACING.startBytesPerS);
  });

  it('bad input - a usual host time that is not a number at or above 0 is refused', () => {
    expect(() => new LatencyPacer(Number.NaN)).toThrow(/usual host time must be a number of ms at or above 0, not NaN/);
    expect(() => new LatencyPacer(-1)).toThrow(RangeError);
  });
});
