import { describe, expect, it } from 'vitest';
import { FlurryError } from '@flurry/core';
import { recordsOf } from './guest-log-store.js';
import { DEFAULT_LOG_LIMIT, JobLogQuery, LogQuery, MAX_LOG_LIMIT, readLogQuery } from './log-query.js';

const NOW = Date.parse('2026-12-06T12:00:00Z');
const parse = (query: Record<string, string>) => readLogQuery(query, NOW);
const refusal = (query: Record<string, string>): string => {
  try {
    parse(query);
  } catch (err) {
    expect(err).toBeInstanceOf(FlurryError);
    expect((err as FlurryError).code).toBe('bad_request');
    return (err as Error).message;
  }
  throw new Error(`${JSON.stringify(query)} was taken`);
};

describe('readLogQuery', () => {
  it('nothing given - the last 100 lines, no follow, every clone', () => {
    expect(parse({})).toEqual({ limit: DEFAULT_LOG_LIMIT, sinceMs: undefined, follow: false, clone: undefined });
  });

  it('every parameter - read as given', () => {
    expect(parse({ limit: '5', since: '2026-12-06T11:00:00Z', follow: 'true', clone: '3' }))
      .toEqual({ limit: 5, sinceMs: NOW - 3600_000, follow: true, clone: 3 });
    expect(parse({ since: '10m', follow: '', clone: 'reduce' })).toMatchObject({ sinceMs: NOW - 600_000, follow: true, clone: 'reduce' });
    expect(parse({ since: String(NOW - 5) }).sinceMs).toBe(NOW - 5);
  });

  it('bad limit - refused, saying the range', () => {
    for (const limit of ['0', '-1', 'ten', '1.5', String(MAX_LOG_LIMIT + 1)]) expect(refusal({ limit })).toContain(`from 1 to ${MAX_LOG_LIMIT}`);
  });

  it('bad since - refused, with the forms it takes', () => {
    for (const since of ['yesterday', '10 m', '2026-13-45T00:00:00Z', '5w']) expect(refusal({ since })).toContain('duration ago');
  });

  it('bad follow or clone - refused', () => {
    expect(refusal({ follow: 'yes' })).toContain('follow must be true or false');
    expect(refusal({ clone: '-1' })).toContain("clone must be a clone's index");
  });

  it('unknown parameters - refused by the declared query; a job\'s takes clone, a function\'s does not', () => {
    expect(LogQuery.safeParse({ tail: '5' }).success).toBe(false);
    expect(LogQuery.safeParse({ clone: '1' }).success).toBe(false);
    expect(JobLogQuery.safeParse({ clone: '1', limit: '2' }).success).toBe(true);
  });
});

describe('recordsOf', () => {
  it('a batch - one record per line with what ran, then a note on the lines not kept', () => {
    const records = recordsOf({
      at: 5, tenant: 't', source: { kind: 'clone', jobId: 'job-1', index: 2 }, requestId: 'r', hostId: 'h',
      lines: [{ level: 'info', message: 'a' }, { level: 'error', message: 'b' }], dropped: 7,
    });
    expect(records).toEqual([
      { at: 5, requestId: 'r', hostId: 'h', jobId: 'job-1', clone: 2, level: 'info', message: 'a' },
      { at: 5, requestId: 'r', hostId: 'h', jobId: 'job-1', clone: 2, level: 'error', message: 'b' },
      { at: 5, requestId: 'r', hostId: 'h', jobId: 'job-1', clone: 2, level: 'warn', message: '7 more lines of this run were over the per-call limit and not kept', dropped: 7 },
    ]);
  });
});
