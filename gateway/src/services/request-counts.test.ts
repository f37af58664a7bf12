// This gateway's request counts, as the load reporter and least-loaded routing read them.
import { describe, expect, it } from 'vitest';
import { RequestCounts } from './request-counts.js';

describe('RequestCounts', () => {
  it('load - requests in flight per instance and held per service, for services with any', () => {
    let changes = 0;
    const counts = new RequestCounts(() => changes++);
    counts.sent('t.a', 'i1');
    counts.sent('t.a', 'i1');
    counts.sent('t.a', 'i2');
    counts.holding('t.b', 1);
    expect(counts.inFlight('i1')).toBe(2);
    expect(counts.load()).toEqual([
      { tenant: 't', service: 'b', held: 1, instances: {} },
      { tenant: 't', service: 'a', held: 0, instances: { i1: 2, i2: 1 } },
    ]);
    expect(changes).toBe(4);
  });

  it('load - a service drops out once its requests have ended and none is held', () => {
    const counts = new RequestCounts();
    counts.sent('t.a', 'i1');
    counts.holding('t.a', 1);
    counts.ended('i1');
    counts.holding('t.a', -1);
    expect(counts.inFlight('i1')).toBe(0);
    expect(counts.load()).toEqual([]);
  });

  it('forget - a destroyed instance counts nothing, and a request ending on it later does not go negative', () => {
    const counts = new RequestCounts();
    counts.sent('t.a', 'i1');
    counts.forget('i1');
    expect(counts.inFlight('i1')).toBe(0);
    counts.ended('i1');
    expect(counts.inFlight('i1')).toBe(0);
    expect(counts.load()).toEqual([]);
  });
});
