import { describe, expect, it } from 'vitest';
import { ASK_MS, MAX_BATCH, TaskLedger } from './task-ledger.js';

/** A ledger on a clock the test moves; results reach it `lagMs` late at most. */
function ledger(total: number, retries = 1, lagMs = 0) {
  let t = 0;
  const l = new TaskLedger(total, retries, () => t, String, lagMs);
  return { l, tick: (ms = 1) => (t += ms) };
}

describe('task ledger', () => {
  it('batches - start at one task, double with what the clone has taken, shrink near the end', () => {
    const { l } = ledger(1000);
    const sizes: number[] = [];
    for (let i = 0; i < 8; i++) sizes.push(l.take('a', 1).tasks.length);
    expect(sizes).toEqual([1, 1, 2, 4, 8, 16, 32, 64]);
    expect(l.take('a', 1).tasks.length).toBe(MAX_BATCH);
    // 1000 - 192 handed out: with 100 clones running, a share is 808 / 200 = 4.
    expect(l.take('b', 100).tasks.length).toBe(1);
    const c = l.take('a', 100).tasks.length;
    expect(c).toBe(Math.floor((1000 - 193) / 200));
  });

  it('batches - once tasks are done, at least ASK_MS of work by their median, still within the share', () => {
    const { l } = ledger(1000);
    expect(l.take('a', 2).tasks).toEqual([0]);
    l.done(0, 12);
    // 100 ms of 12 ms tasks: 9, where the slow start would give 1.
    expect(l.take('a', 2).tasks.length).toBe(Math.ceil(ASK_MS / 12));
    expect(l.take('b', 2).tasks.length).toBe(Math.ceil(ASK_MS / 12));
    // Long tasks: the slow start as before.
    const { l: m } = ledger(1000);
    m.take('a', 2);
    m.done(0, 500);
    expect(m.take('a', 2).tasks.length).toBe(1);
    expect(m.take('a', 2).tasks.length).toBe(2);
    // Near the end the share decides: 5 pending among 2 clones' twice: 1.
    const { l: n } = ledger(6);
    n.take('a', 2);
    n.done(0, 1);
    expect(n.take('a', 2).tasks.length).toBe(1);
  });

  it('backups - a clone may hold a finished task\'s result for the result lag: its next task is no straggler before that', () => {
    const { l, tick } = ledger(3, 1, 100);
    l.take('a', 2);
    l.take('b', 2);
    l.take('b', 2);
    l.done(0, 10);
    l.done(2, 10);
    tick(110);
    // Task 1 has run 110 ms: past twice the median, not past it and the lag.
    expect(l.take('a', 2)).toEqual({ tasks: [], end: false });
    tick(11);
    expect(l.take('a', 2)).toEqual({ tasks: [1], end: false });
  });

  it('ranges - each clone takes its batches from a consecutive range of its own; every task is handed out once before any backup', () => {
    const { l } = ledger(50);
    const seen: number[] = [];
    const runs: Record<string, number[]> = { a: [], b: [] };
    for (let i = 0; i < 100 && seen.length < 50; i++) {
      const who = i % 2 ? 'a' : 'b';
      const got = l.take(who, 2).tasks;
      seen.push(...got);
      runs[who].push(...got);
    }
    expect([...seen].sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    // b asked first: the first half is its range, the second a's; each went on from its own front, and b,
    // dry first, took the back half of what a had left (47..49).
    expect(runs.b).toEqual([...Array.from({ length: 25 }, (_, i) => i), 47, 48, 49]);
    expect(runs.a).toEqual(Array.from({ length: 22 }, (_, i) => 25 + i));
    expect(l.counts()).toMatchObject({ total: 50, done: 0, running: 50, backups: 0 });
  });

  it('ranges - a clone whose range is empty takes the back half of the largest range left; the owner goes on at its front', () => {
    const { l } = ledger(40);
    expect(l.take('a', 2).tasks).toEqual([0]);
    expect(l.take('b', 2).tasks).toEqual([20]);
    // a: 1, then 2 (slow start); b empties its range with large batches.
    expect(l.take('a', 2).tasks).toEqual([1]);
    const b: number[] = [];
    while (b.length < 19) b.push(...l.take('b', 2).tasks);
    expect(b).toEqual(Array.from({ length: 19 }, (_, i) => 21 + i));
    // a's range is 2..19 (18 tasks): b takes its back half, 11..19, and a goes on with 2.
    const stolen = l.take('b', 2).tasks;
    expect(stolen[0]).toBe(11);
    expect(l.take('a', 2).tasks).toEqual([2, 3]);
    // A third clone: the largest range left is a's 4..10 (b's is 15..19): it takes 7..10.
    expect(stolen).toEqual([11, 12, 13, 14]);
    expect(l.take('c', 3).tasks).toEqual([7]);
    expect(l.take('a', 3).tasks).toEqual([4]);
  });

  it('ranges - an ended attempt\'s range goes back to nobody and is claimed by the next clone that runs dry', () => {
    const { l } = ledger(10);
    expect(l.take('a', 2).tasks).toEqual([0]);
    expect(l.take('b', 2).tasks).toEqual([5]);
    l.done(0);
    expect(l.release('a')).toEqual([]);
    const b: number[] = [];
    for (let i = 0; i < 10 && b.length < 8; i++) b.push(...l.take('b', 1).tasks);
    expect(b).toEqual([6, 7, 8, 9, 1, 2, 3, 4]);
    expect(l.pending).toBe(0);
  });

  it('backups - with nothing pending, an idle clone gets a task running past twice the median, one backup per task at a time', () => {
    const { l, tick } = ledger(3);
    expect(l.take('a', 3).tasks).toEqual([0]);
    tick();
    expect(l.take('b', 3).tasks).toEqual([1]);
    tick();
    expect(l.take('c', 3).tasks).toEqual([2]);
    tick(9);
    l.done(1, 10);
    tick();
    l.done(2, 10);
    // Task 0 has run 12 ms against a median of 10: no straggler yet, ask again.
    expect(l.take('b', 3)).toEqual({ tasks: [], end: false });
    tick(13);
    // Asking ahead (b still busy): no backup, which would wait behind b's own task.
    expect(l.take('b', 3, false)).toEqual({ tasks: [], end: false });
    expect(l.take('b', 3)).toEqual({ tasks: [0], end: false });
    // c: task 0 has its backup already, nothing else runs: ask again.
    expect(l.take('c', 3)).toEqual({ tasks: [], end: false });
    // a never gets a backup of its own task.
    expect(l.take('a', 3)).toEqual({ tasks: [], end: false });
    expect(l.counts().backups).toBe(1);
  });

  it('backups - only the task a clone runs is judged: the one after its last result, not those queued behind it; none before a task is done', () => {
    const { l, tick } = ledger(4);
    l.take('a', 1);
    l.take('a', 1);
    l.take('a', 1);
    l.take('a', 1);
    tick(100);
    expect(l.take('b', 1)).toEqual({ tasks: [], end: false });
    l.done(0, 10);
    tick(15);
    expect(l.take('b', 1)).toEqual({ tasks: [], end: false });
    tick(10);
    // Task 1 has run 25 ms since a's last result: a backup; tasks 2 and 3 wait behind it on a.
    expect(l.take('b', 1)).toEqual({ tasks: [1], end: false });
    expect(l.take('c', 1)).toEqual({ tasks: [], end: false });
  });

  it('first result wins - a later result of a done task changes nothing; at the end every clone is told so', () => {
    const { l, tick } = ledger(3);
    // Three clones running: a range of one task each.
    l.take('a', 3);
    l.take('b', 3);
    l.take('c', 3);
    l.done(2, 1);
    tick(5);
    expect(l.take('a', 2).tasks).toEqual([1]);
    expect(l.take('c', 2).tasks).toEqual([0]);
    expect(l.counts().backups).toBe(2);
    expect(l.done(1)).toBe(true);
    // Task 1 had a backup: of b and a, one still runs it for nothing (worth stopping at the end); c held none.
    expect(['a', 'b', 'c'].filter((x) => l.wasted(x))).toEqual(['a', 'b']);
    expect(l.done(1)).toBe(false);
    expect(l.done(0)).toBe(true);
    expect(l.allDone).toBe(true);
    expect(l.take('d', 2)).toEqual({ tasks: [], end: true });
    expect(l.counts()).toMatchObject({ done: 3, running: 0 });
  });

  it('death - a lost attempt returns its unfinished tasks, first to be handed out again; a task with a backup stays with it', () => {
    const { l, tick } = ledger(10);
    const a = [...l.take('a', 2).tasks, ...l.take('a', 2).tasks, ...l.take('a', 2).tasks];
    expect(a).toEqual([0, 1, 2, 3]);
    l.done(1);
    tick();
    // b's share of what a's range left: 5..9 (a keeps 4 in its range).
    expect(l.take('b', 2).tasks).toEqual([5]);
    expect(l.release('a').sort()).toEqual([0, 2, 3]);
    expect(l.take('b', 1).tasks).toEqual([0]);
    expect(l.take('b', 1).tasks).toEqual([2, 3]);
    // A backup's holder dies: the task stays leased to the first.
    const { l: m, tick: later } = ledger(2);
    m.take('x', 1);
    m.take('y', 1);
    m.done(1, 1);
    later(5);
    expect(m.take('y', 1).tasks).toEqual([0]);
    expect(m.release('y')).toEqual([]);
    expect(m.counts().running).toBe(1);
    expect(m.holds('x', 0)).toBe(true);
    expect(m.holders(0)).toEqual(['x']);
  });

  it('failures - count against the task; past the retries it is final; meanwhile it is pending again', () => {
    const { l } = ledger(2, 1);
    expect(l.take('a', 1).tasks).toEqual([0]);
    expect(l.failed(0, 'a')).toEqual({ final: false, failures: 1 });
    expect(l.holds('a', 0)).toBe(false);
    expect(l.take('b', 1).tasks).toEqual([0]);
    expect(l.failed(0, 'b')).toEqual({ final: true, failures: 2 });
    expect(l.counts().failures).toBe(2);
    // A failure of a done task (a late report) counts nothing.
    l.done(1);
    expect(l.failed(1, 'a')).toEqual({ final: false, failures: 0 });
  });
});
