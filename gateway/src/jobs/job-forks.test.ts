import { describe, expect, it } from 'vitest';
import type { JobRecord, JobSpec } from '@flurry/core';
import { reduceForkRequest, type JobForkFacts } from './job-forks.js';

const job: JobForkFacts = {
  record: { id: 'job-1', tenant: 't', clones: 3 } as JobRecord,
  spec: { timeoutMs: 1000 } as JobSpec,
  descriptor: new Uint8Array(2000),
  inputObjects: new Map(),
};

describe('reduce fork request', () => {
  it('inline - an input that fits the broker\'s largest message goes in the request, and outputs up to it in the result', () => {
    const framed = new Uint8Array(900_000).fill(7);
    const { request, large } = reduceForkRequest(job, 'inbox', framed, 8 * 1024 * 1024);
    expect(large).toBe(false);
    expect(request.clones).toEqual([{ index: 0, input: framed }]);
    expect(request.objects).toMatchObject({ inputs: {}, minOutputBytes: 8 * 1024 * 1024 - 64 * 1024 });
    expect(request).toMatchObject({ entry: 'reduce', resultSubject: 'inbox', count: 3 });
  });

  it('objects - an input that does not fit is named as the job\'s reduce-input object, and the request carries none of it', () => {
    const framed = new Uint8Array(1_100_000);
    const { request, large } = reduceForkRequest(job, 'inbox', framed, 1024 * 1024);
    expect(large).toBe(true);
    expect(request.clones[0].input.length).toBe(0);
    expect(request.objects?.inputs).toEqual({ 0: 't/job-1/reduce-input' });
    expect(request.objects?.minOutputBytes).toBe(1024 * 1024 - 64 * 1024);
  });
});
