import { describe, expect, it } from 'vitest';
import { FlurryError, type CloneResult } from '@flurry/core';
import { reducedFrom } from './job-reduce.js';

const base: CloneResult = { requestId: 'job-1.reduce.x', hostId: 'h', index: 0, ok: true, startMs: 0, runMs: 1, pages: { local: 0, multicast: 0, unicast: 0, zero: 0 }, faultWaitMs: 0 };
const expected = 't/job-1/reduce-out/0/job-1.reduce.x';

describe('reduce result', () => {
  it('object - the output object the host was asked to write is the job\'s result, with its size', () => {
    expect(reducedFrom({ ...base, outputObject: expected, outputBytes: 860_000 }, expected)).toEqual({ object: expected, bytes: 860_000 });
    // A host that does not say the size: it is read from the object.
    expect(reducedFrom({ ...base, outputObject: expected }, expected)).toEqual({ object: expected, bytes: -1 });
  });

  it('inline - a result without an object carries the output (empty when there is none)', () => {
    expect(reducedFrom({ ...base, output: new Uint8Array([1, 2]) }, expected)).toEqual({ output: new Uint8Array([1, 2]) });
    expect(reducedFrom(base, expected)).toEqual({ output: new Uint8Array(0) });
  });

  it('another object - a result naming any other object (another job\'s, another attempt\'s) is refused, not kept', () => {
    for (const other of ['t/job-2/reduce-out/0/job-2.reduce.x', 't/job-1/reduce-out/0/job-1.reduce.y', 't/job-1/out/0/job-1.reduce.x']) {
      const err = (() => { try { reducedFrom({ ...base, outputObject: other, outputBytes: 1 }, expected); } catch (e) { return e; } })();
      expect(err).toBeInstanceOf(FlurryError);
      expect((err as FlurryError).code).toBe('internal');
      expect((err as FlurryError).message).toContain(`names the output object ${other}, not ${expected}`);
    }
  });

  it('failed - the reduce\'s error is thrown as it came', () => {
    expect(() => reducedFrom({ ...base, ok: false, error: { code: 'guest_trap', message: 'unreachable' } }, expected)).toThrow('unreachable');
  });
});
