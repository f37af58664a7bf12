// The services controller's view of fleet-wide load, without a fleet.
import { describe, expect, it } from 'vitest';
import { FleetLoad } from './fleet-load.js';

describe('FleetLoad', () => {
  const report = (gateway: string, at: number, held: number, instances: Record<string, number>) =>
    ({ gateway, at, services: [{ tenant: 't', service: 's', held, instances }] });

  it('load - sums the latest report of every gateway per service and per instance', () => {
    const load = new FleetLoad(2000);
    load.add(report('g1', 0, 0, { a: 3, b: 1 }), 1000);
    load.add(report('g2', 0, 2, { a: 1 }), 1000);
    load.add(report('g1', 0, 0, { a: 2 }), 1100);
    const sum = load.service('t.s', 1200);
    expect(sum).toMatchObject({ total: 5, held: 2 });
    expect([...sum.perInstance]).toEqual([['a', 3]]);
  });
  it('load - a gateway whose report is older than staleMs no longer counts', () => {
    const load = new FleetLoad(2000);
    load.add(report('g1', 0, 0, { a: 4 }), 1000);
    load.add(report('g2', 0, 0, { a: 1 }), 2500);
    expect(load.service('t.s', 3500).total).toBe(1);
    expect(load.instance('t.s', 'a', 5000)).toBe(0);
  });
  it('load - a report names the services it drops, so they are looked at again', () => {
    const load = new FleetLoad();
    load.add(report('g1', 0, 0, { a: 1 }), 0);
    expect(load.add({ gateway: 'g1', at: 1, services: [] }, 1)).toEqual(['t.s']);
  });
});
