import { describe, expect, it } from 'vitest';
import { FlurryError, frameReduceInput } from '@flurry/core';
import { KeptOutputs } from './kept-outputs.js';

const out = (t: number) => new Uint8Array([t, t, t]);
const framed = (first: number, count: number) => frameReduceInput(Array.from({ length: count }, (_, k) => out(first + k)));
const all = (total: number) => framed(0, total);
const run = (first: number, count: number, requestId = 'r1') => ({ requestId, first, count });

function code(f: () => unknown): string {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(FlurryError);
    return (err as FlurryError).code;
  }
  throw new Error('not thrown');
}

describe('task outputs kept for a reduce', () => {
  it('the runs kept, named by the reduce, merged with the frames sent - the same input as every output sent', () => {
    const kept = new KeptOutputs(1 << 20, 60_000);
    kept.keep('t', 'j', run(0, 3), framed(0, 3));
    kept.keep('t', 'j', run(5, 2), framed(5, 2));
    const given = frameReduceInput([3, 4, 7].map(out));
    expect(Buffer.from(kept.reduceInput('t', 'j', [run(0, 3), run(5, 2)], given, 8))).toEqual(Buffer.from(all(8)));
  });

  it('a run not kept here, another job\'s or another tenant\'s - not_found, naming the tasks', () => {
    const kept = new KeptOutputs(1 << 20, 60_000);
    kept.keep('t', 'j', run(0, 2), framed(0, 2));
    expect(code(() => kept.reduceInput('t', 'j', [run(0, 2, 'r2')], frameReduceInput([]), 2))).toBe('not_found');
    expect(code(() => kept.reduceInput('t', 'other', [run(0, 2)], frameReduceInput([]), 2))).toBe('not_found');
    expect(code(() => kept.reduceInput('u', 'j', [run(0, 2)], frameReduceInput([]), 2))).toBe('not_found');
    expect(code(() => kept.reduceInput('t', 'j', [run(0, 1)], frameReduceInput([out(1)]), 2))).toBe('not_found');
    // Frames that do not add up with the runs: bad_request.
    expect(code(() => kept.reduceInput('t', 'j', [run(0, 2)], frameReduceInput([out(2)]), 2))).toBe('bad_request');
  });

  it('the same run kept twice (a clone run twice here) - the first stays', () => {
    const kept = new KeptOutputs(1 << 20, 60_000);
    kept.keep('t', 'j', run(0, 1), framed(0, 1));
    kept.keep('t', 'j', run(0, 1), frameReduceInput([new Uint8Array([9])]));
    expect(Buffer.from(kept.reduceInput('t', 'j', [run(0, 1)], new Uint8Array(0), 1))).toEqual(Buffer.from(framed(0, 1)));
    expect(kept.keptBytes).toBe(framed(0, 1).length);
  });

  it('released, idle, or over the byte limit - the job\'s runs go (the least recently used job first)', () => {
    let now = 0;
    const size = framed(0, 2).length;
    const kept = new KeptOutputs(2 * size, 1000, () => now);
    kept.keep('t', 'a', run(0, 2), framed(0, 2));
    kept.keep('t', 'b', run(0, 2), framed(0, 2));
    kept.drop('t', 'a');
    expect(code(() => kept.reduceInput('t', 'a', [run(0, 2)], new Uint8Array(0), 2))).toBe('not_found');
    expect(kept.keptBytes).toBe(size);
    kept.keep('t', 'a', run(0, 2), framed(0, 2));
    // b used (its reduce) after a was kept: a is the least recently used when c needs room.
    now = 10;
    kept.reduceInput('t', 'b', [run(0, 2)], new Uint8Array(0), 2);
    kept.keep('t', 'c', run(0, 2), framed(0, 2));
    expect(code(() => kept.reduceInput('t', 'a', [run(0, 2)], new Uint8Array(0), 2))).toBe('not_found');
    expect(kept.reduceInput('t', 'b', [run(0, 2)], new Uint8Array(0), 2).length).toBe(size);
    expect(kept.keptBytes).toBe(2 * size);
    // Idle: b used at 10, c kept at 10; at 1010 both are idle for the limit.
    now = 1009;
    kept.sweep();
    expect(kept.keptBytes).toBe(2 * size);
    now = 1010;
    kept.sweep();
    expect(kept.keptBytes).toBe(0);
    // A run larger than the limit is not kept at all.
    kept.keep('t', 'd', run(0, 5), framed(0, 5));
    expect(kept.keptBytes).toBe(0);
  });
});
