import { describe, expect, it } from 'vitest';
import { EarliestDeadline } from './earliest-deadline.js';

/** Deadlines kept by id, as an owner keeps them beside its calls; `expired` in the order they were ended. */
function owner() {
  const due = new Map<string, number>();
  const expired: string[] = [];
  let fired = 0;
  let settled: () => void = () => undefined;
  const deadlines = new EarliestDeadline((now) => {
    fired++;
    let next: number | undefined;
    for (const [id, at] of due) {
      if (at <= now) {
        due.delete(id);
        expired.push(id);
      } else if (next === undefined || at < next) next = at;
    }
    if (due.size === 0) settled();
    return next;
  });
  const add = (id: string, inMs: number) => {
    const at = performance.now() + inMs;
    due.set(id, at);
    deadlines.require(at);
  };
  const allExpired = () => new Promise<void>((resolve) => (settled = resolve));
  return { due, expired, deadlines, add, allExpired, fires: () => fired };
}

describe('EarliestDeadline', () => {
  it('ends each deadline once it is due, in deadline order, whatever order they were asked in', async () => {
    const o = owner();
    const done = o.allExpired();
    o.add('late', 30);
    o.add('early', 5);
    o.add('middle', 15);
    await done;
    expect(o.expired).toEqual(['early', 'middle', 'late']);
  });

  it('a call answered before its deadline is never expired, and the timer is not re-armed for it', async () => {
    const o = owner();
    const done = o.allExpired();
    o.add('answered', 5);
    o.add('kept', 20);
    o.due.delete('answered');
    await done;
    expect(o.expired).toEqual(['kept']);
  });

  it('later deadlines of equal limits arm nothing: one fire serves a run of calls', async () => {
    const o = owner();
    const done = o.allExpired();
    for (let i = 0; i < 50; i++) o.add(`call-${i}`, 10);
    // Every call but the last answered in time.
    for (let i = 0; i < 49; i++) o.due.delete(`call-${i}`);
    await done;
    expect(o.expired).toEqual(['call-49']);
    // The first fire (call-0's deadline) may come before call-49 is due: then one more.
    expect(o.fires()).toBeLessThanOrEqual(2);
  });

  it('after stop nothing fires', async () => {
    const o = owner();
    o.add('a', 5);
    o.deadlines.stop();
    o.add('b', 1);
    await new Promise((r) => setTimeout(r, 20));
    expect(o.fires()).toBe(0);
    expect(o.expired).toEqual([]);
  });
});
