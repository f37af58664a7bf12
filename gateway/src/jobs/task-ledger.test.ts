import { describe, expect, it } from 'vitest';
import { TaskLedger, type SplitDue, type TaskGrant } from './task-ledger.js';

/** A ledger on a clock the test moves; results reach it `lagMs` late at most. */
function ledger(total: number, retries = 1, lagMs = 0) {
  let t = 0;
  const l = new TaskLedger(total, retries, () => t, String, lagMs);
  /** What `take` gave, when it gave a grant (not a split to ask for). */
  const grant = (who: string, running: number, backups = true): TaskGrant => {
    const g = l.take(who, running, backups);
    if ('split' in g) throw new Error(`${who} was told to split ${g.split}'s range`);
    return g;
  };
  return { l, grant, tick: (ms = 1) => (t += ms) };
}

const splitOf = (g: TaskGrant | SplitDue<string>): string | undefined => ('split' in g ? g.split : undefined);
/** Marks tasks lo..hi-1 done. */
const doneAll = (l: TaskLedger, lo: number, hi: number, runMs = 1) => {
  for (let t = lo; t < hi; t++) l.done(t, runMs);
};

/** 20 tasks: a owns 0..9, b ran 10..19 dry and is told to split a's range. */
function splitDue() {
  const got = ledger(20);
  const { l, grant } = got;
  grant('a', 2);
  grant('b', 2);
  doneAll(l, 10, 20);
  l.ranDry('b', { lo: 10, hi: 20 });
  expect(splitOf(l.take('b', 2))).toBe('a');
  return got;
}

describe('task ledger', () => {
  it('ranges - each clone\'s first ask claims an equal share of the tasks nobody holds, as a range it runs without asking again', () => {
    const { l, grant } = ledger(100);
    expect(grant('a', 3)).toEqual({ tasks: [], range: { lo: 0, hi: 34 }, end: false });
    // b and c share what is left: 66 between two.
    expect(grant('b', 3).range).toEqual({ lo: 34, hi: 67 });
    expect(grant('c', 3).range).toEqual({ lo: 67, hi: 100 });
    expect(l.pending).toBe(0);
    expect(l.holds('a', 33)).toBe(true);
    expect(l.holders(50)).toEqual(['b']);
  });

  it('splits - a dry clone is told to split the largest range left; the owner\'s answer decides where, and no task is in two ranges', () => {
    const { l, grant } = ledger(40);
    grant('a', 2);
    grant('b', 2);
    doneAll(l, 20, 40);
    l.ranDry('b', { lo: 20, hi: 40 });
    doneAll(l, 0, 4);
    // a has 16 tasks left (4..19) as the ledger sees it: b is to ask a's host.
    const due = l.take('b', 2);
    expect(splitOf(due)).toBe('a');
    // Asked of a's host once at a time: c, dry too, gets no second split of the same range meanwhile.
    grant('c', 3);
    expect(splitOf(l.take('c', 3))).toBeUndefined();
    // a's host had handed out up to 9: it keeps 4..13 and gives 14..19.
    expect(l.split('a', 'b', 14)).toEqual({ tasks: [], range: { lo: 14, hi: 20 }, end: false });
    expect(l.rangeOf('a')).toEqual({ lo: 0, hi: 14 });
    expect(l.holders(15)).toEqual(['b']);
    expect(l.holds('a', 15)).toBe(false);
    expect(l.holds('a', 13)).toBe(true);
    // a's range still has the most left (4..13 against b's 14..19): a dry c is to split it again.
    expect(splitOf(l.take('c', 3))).toBe('a');
  });

  it('splits - a host that gives nothing, or does not answer, is not asked again for that range; its new range may be split', () => {
    const { l, grant } = splitDue();
    // Every task of a's range handed out already: it answers its own end.
    expect(l.split('a', 'b', 10)).toEqual({ tasks: [], end: false });
    expect(splitOf(l.take('b', 2))).toBeUndefined();
    // An answer outside the range counts as none.
    const { l: m } = splitDue();
    expect(m.split('a', 'b', 25)).toEqual({ tasks: [], end: false });
    expect(m.split('a', 'b', undefined)).toEqual({ tasks: [], end: false });
    expect(m.rangeOf('a')).toEqual({ lo: 0, hi: 10 });
  });

  it('splits - an answer for a range that changed meanwhile (its owner ended) gives nothing; the range went back to nobody', () => {
    const { l, grant } = splitDue();
    expect(l.release('a')).toEqual(Array.from({ length: 10 }, (_, i) => i));
    expect(l.split('a', 'b', 5)).toEqual({ tasks: [], end: false });
    expect(grant('b', 1).range).toEqual({ lo: 0, hi: 10 });
  });

  it('dry - tasks the ledger counts in a clone\'s range past the end it reports (a split whose answer was lost) are pending again; a range it never heard of, all of it', () => {
    const { l, grant } = ledger(20);
    grant('a', 2);
    grant('b', 2);
    // a's host split at 6 but its answer was lost: a reports 0..6 as run dry.
    l.ranDry('a', { lo: 0, hi: 6 });
    expect(l.rangeOf('a')).toEqual({ lo: 0, hi: 6 });
    expect(l.pending).toBe(4);
    expect(grant('a', 2).range).toEqual({ lo: 6, hi: 10 });
    // b's answer with its range 10..20 was lost: it asks knowing none.
    l.ranDry('b', undefined);
    expect(l.pending).toBe(10);
    expect(l.holds('b', 10)).toBe(false);
    expect(grant('b', 2).range).toEqual({ lo: 10, hi: 20 });
  });

  it('backups - a clone may hold a finished task\'s result for the result lag: its next task is no straggler before that', () => {
    const { l, grant, tick } = ledger(3, 1, 100);
    grant('a', 2);
    grant('b', 2);
    l.done(0, 10);
    l.done(2, 10);
    l.ranDry('b', { lo: 2, hi: 3 });
    tick(110);
    // Task 1 has run 110 ms on a: past twice the median, not past it and the lag. One task left is no split.
    expect(grant('b', 2)).toEqual({ tasks: [], end: false });
    tick(11);
    expect(grant('b', 2)).toEqual({ tasks: [1], end: false });
  });

  it('backups - with nothing pending or to split, an idle clone gets a task running past twice the median, one backup per task at a time', () => {
    const { l, grant, tick } = ledger(3);
    expect(grant('a', 3).range).toEqual({ lo: 0, hi: 1 });
    tick();
    expect(grant('b', 3).range).toEqual({ lo: 1, hi: 2 });
    tick();
    expect(grant('c', 3).range).toEqual({ lo: 2, hi: 3 });
    tick(9);
    l.done(1, 10);
    tick();
    l.done(2, 10);
    // Task 0 has run 12 ms against a median of 10: no straggler yet, ask again.
    expect(grant('b', 3)).toEqual({ tasks: [], end: false });
    tick(13);
    // Asking ahead (b still busy): no backup, which would wait behind b's own task.
    expect(grant('b', 3, false)).toEqual({ tasks: [], end: false });
    expect(grant('b', 3)).toEqual({ tasks: [0], end: false });
    // c: task 0 has its backup already, nothing else runs: ask again.
    expect(grant('c', 3)).toEqual({ tasks: [], end: false });
    // a never gets a backup of its own task.
    expect(grant('a', 3)).toEqual({ tasks: [], end: false });
    expect(l.counts().backups).toBe(1);
  });

  it('backups - only the task a clone runs is judged: the one after its last result, not those behind it in its range; none before a task is done', () => {
    const { l, grant, tick } = ledger(4);
    grant('a', 1);
    l.ranDry('a', { lo: 0, hi: 4 });
    tick(100);
    expect(grant('b', 1)).toEqual({ tasks: [], end: false });
    l.done(0, 10);
    tick(15);
    expect(grant('b', 1)).toEqual({ tasks: [], end: false });
    tick(10);
    // Task 1 has run 25 ms since a's last result: a backup; tasks 2 and 3 wait behind it on a.
    expect(grant('b', 1)).toEqual({ tasks: [1], end: false });
    expect(grant('c', 1)).toEqual({ tasks: [], end: false });
  });

  it('first result wins - a later result of a done task changes nothing; at the end every clone is told so', () => {
    const { l, grant, tick } = ledger(3);
    // Three clones running: a range of one task each.
    grant('a', 3);
    grant('b', 3);
    grant('c', 3);
    l.done(2, 1);
    tick(5);
    expect(grant('a', 2).tasks).toEqual([1]);
    expect(grant('c', 2).tasks).toEqual([0]);
    expect(l.counts().backups).toBe(2);
    expect(l.done(1)).toBe(true);
    // Task 1 had a backup: of b and a, one still runs it for nothing (worth stopping at the end); c held none.
    expect(['a', 'b', 'c'].filter((x) => l.wasted(x))).toEqual(['a', 'b']);
    expect(l.done(1)).toBe(false);
    expect(l.done(0)).toBe(true);
    expect(l.allDone).toBe(true);
    expect(grant('d', 2)).toEqual({ tasks: [], end: true });
    expect(l.counts()).toMatchObject({ done: 3, running: 0 });
  });

  it('death - a lost attempt returns its unfinished tasks as a range for the next clone; a task with a backup stays with the other holder', () => {
    const { l, grant, tick } = ledger(10);
    expect(grant('a', 2).range).toEqual({ lo: 0, hi: 5 });
    l.done(1);
    tick();
    expect(grant('b', 2).range).toEqual({ lo: 5, hi: 10 });
    expect(l.release('a').sort()).toEqual([0, 2, 3, 4]);
    expect(l.pending).toBe(4);
    l.ranDry('b', { lo: 5, hi: 10 });
    // Claimed in runs of consecutive tasks: 2..4, then 0.
    expect(grant('b', 1).range).toEqual({ lo: 2, hi: 5 });
    expect(grant('c', 1).range).toEqual({ lo: 0, hi: 1 });
    // A backup's holder dies: the task stays held by the first.
    const { l: m, grant: g, tick: later } = ledger(2);
    g('x', 2);
    g('y', 2);
    m.done(1, 1);
    later(5);
    expect(g('y', 1).tasks).toEqual([0]);
    expect(m.release('y')).toEqual([]);
    expect(m.counts().running).toBe(1);
    expect(m.holds('x', 0)).toBe(true);
    expect(m.holders(0)).toEqual(['x']);
  });

  it('failures - count against the task; past the retries it is final; meanwhile it is pending again', () => {
    const { l, grant } = ledger(2, 1);
    expect(grant('a', 2).range).toEqual({ lo: 0, hi: 1 });
    expect(l.failed(0, 'a')).toEqual({ final: false, failures: 1 });
    expect(l.holds('a', 0)).toBe(false);
    expect(grant('b', 1).range).toEqual({ lo: 0, hi: 1 });
    expect(l.failed(0, 'b')).toEqual({ final: true, failures: 2 });
    expect(l.counts().failures).toBe(2);
    // A failure of a done task (a late report) counts nothing.
    l.done(1);
    expect(l.failed(1, 'a')).toEqual({ final: false, failures: 0 });
  });
});
