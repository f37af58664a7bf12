import { describe, expect, it } from 'vitest';
import { FlurryError } from './errors.js';
import { frameReduceInput, framesBesideKept, mergeReduceInput, unframeOutputs, walkFrames } from './reduce-input.js';

const enc = (s: string) => new TextEncoder().encode(s);
/** Ten task outputs of different lengths (one empty). */
const outputs = Array.from({ length: 10 }, (_, t) => enc(t === 4 ? '' : `task-${t}-${'x'.repeat(t)}`));
const run = (first: number, count: number) => ({ requestId: 'r', first, count, framed: frameReduceInput(outputs.slice(first, first + count)) });

describe('reduce input with runs kept on the reduce\'s host', () => {
  it('kept runs anywhere (front, middle, end, next to each other) merged with the given frames - the same bytes as every output framed', () => {
    const whole = frameReduceInput(outputs);
    for (const kept of [[], [run(0, 3)], [run(3, 2), run(5, 1)], [run(7, 3)], [run(0, 10)], [run(1, 1), run(4, 2), run(9, 1)]]) {
      const given = framesBesideKept(outputs, kept);
      expect(Buffer.from(mergeReduceInput(10, kept, given))).toEqual(Buffer.from(whole));
    }
  });

  it('the frames given are only the tasks outside the kept runs, in task order', () => {
    const given = framesBesideKept(outputs, [run(2, 3), run(8, 2)]);
    expect(unframeOutputs(given, 5)?.map((o) => Buffer.from(o).toString())).toEqual([0, 1, 5, 6, 7].map((t) => Buffer.from(outputs[t]!).toString()));
  });

  const refused = (f: () => unknown, why: RegExp) => {
    try {
      f();
    } catch (err) {
      expect(err).toBeInstanceOf(FlurryError);
      expect((err as FlurryError).code).toBe('bad_request');
      expect((err as Error).message).toMatch(why);
      return;
    }
    throw new Error('not refused');
  };

  it('runs out of order or overlapping - bad_request', () => {
    refused(() => mergeReduceInput(10, [run(5, 2), run(2, 2)], framesBesideKept(outputs, [run(5, 2), run(2, 2)])), /out of order, overlaps/);
    refused(() => mergeReduceInput(10, [run(2, 3), run(4, 2)], new Uint8Array(0)), /out of order, overlaps/);
  });

  it('a run past the last task, or of no task - bad_request', () => {
    refused(() => mergeReduceInput(9, [run(8, 2)], new Uint8Array(0)), /past task 8/);
    refused(() => mergeReduceInput(10, [{ requestId: 'r', first: 3, count: 0, framed: new Uint8Array(0) }], new Uint8Array(0)), /out of order/);
  });

  it('a kept run whose bytes are not one frame per task - bad_request', () => {
    const r = run(0, 3);
    refused(() => mergeReduceInput(10, [{ ...r, count: 2 }], framesBesideKept(outputs, [{ ...r, count: 2 }])), /not one frame per task/);
  });

  it('too few or too many frames given, or a frame cut short - bad_request', () => {
    const kept = [run(0, 3)];
    const given = framesBesideKept(outputs, kept);
    refused(() => mergeReduceInput(10, kept, given.subarray(0, given.length - 1)), /runs past the frames given/);
    refused(() => mergeReduceInput(10, kept, frameReduceInput(outputs.slice(3, 9))), /end before task 9/);
    refused(() => mergeReduceInput(10, kept, new Uint8Array([...given, 0, 0, 0, 0])), /4 bytes given past the last task/);
  });
});

describe('the frame walk both unframing and merging use', () => {
  const framed = frameReduceInput(outputs.slice(0, 3));
  const ends = [0, 1, 2, 3].map((n) => outputs.slice(0, n).reduce((at, o) => at + 4 + o.length, 0));

  it('from any frame, over any number of frames - where they end, each frame seen whole', () => {
    const seen: string[] = [];
    expect(walkFrames(framed, ends[1]!, 2, (f) => seen.push(Buffer.from(f).toString()))).toEqual({ end: ends[3] });
    expect(seen).toEqual([1, 2].map((t) => Buffer.from(outputs[t]!).toString()));
    expect(walkFrames(framed, ends[3]!, 0)).toEqual({ end: ends[3] });
  });

  it('a length cut off, or bytes past the end - the frame where it stopped, counted from the walk\'s start', () => {
    expect(walkFrames(framed.subarray(0, ends[2]! + 3), ends[1]!, 2)).toEqual({ cut: 1, at: 'length' });
    expect(walkFrames(framed.subarray(0, ends[3]! - 1), ends[1]!, 2)).toEqual({ cut: 1, at: 'bytes' });
    expect(walkFrames(framed, 0, 4)).toEqual({ cut: 3, at: 'length' });
  });

  it('unframing - undefined for a frame cut short, too few frames or bytes past the last', () => {
    expect(unframeOutputs(framed, 3)?.length).toBe(3);
    expect(unframeOutputs(framed.subarray(0, framed.length - 1), 3)).toBeUndefined();
    expect(unframeOutputs(framed.subarray(0, ends[2]! + 2), 3)).toBeUndefined();
    expect(unframeOutputs(framed, 4)).toBeUndefined();
    expect(unframeOutputs(framed, 2)).toBeUndefined();
  });
});
