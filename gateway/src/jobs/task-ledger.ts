/**
 * The task server's book of one task job (docs/jobs.md, "Tasks"): each task
 * is pending (nobody holds it), held (by which clone attempts, since when) or
 * done. Pure: the coordinator's JobTasks feeds it what it hears and answers
 * clones from it.
 *
 * Ranges (work stealing by halving, as Cilk and TBB split ranges): a clone
 * attempt that has nothing left gets a consecutive range of tasks and runs it
 * from the front on its own, without asking per batch; the server hears of
 * its progress from the results it sends anyway. Its first ask claims an
 * equal share of the tasks nobody holds (the share among the running
 * attempts that own no range yet); with none left, it takes the back half of
 * the largest range another attempt owns. Only that attempt's host knows how
 * far it got, so the split is its to make (`take` answers `split`, JobTasks
 * asks the host, `split` applies the answer): no task is in two ranges. A
 * range an ended attempt owned, and tasks given back one by one (a failure,
 * a lost backup), are pending again, claimed like the rest.
 * Backups (MapReduce): with nothing pending or to split, a clone gets a
 * duplicate of a task that runs for longer than BACKUP_AFTER times the median
 * task so far plus the time a clone may hold a finished task's result
 * (resultLagMs; the longest first; one backup per task at a time): a task
 * merely waiting its turn or sharing a core is no straggler, and a duplicate
 * of it would only take a core from it. Only the first task an attempt holds
 * unfinished runs (the rest wait behind it, in the order they were given); it
 * runs since it was given or the attempt's last result, whichever is later.
 * The first result per task wins.
 */
import { TASK_RESULT_LAG_MS, type TaskCounts, type TaskRange } from '@flurry/core';

/** A task running longer than this many times the median task's time gets a backup. */
export const BACKUP_AFTER = 2;

const PENDING = 0;
const HELD = 1;
const DONE = 2;

interface Lease {
  /** Its attempt's key (keyOf). */
  key: string;
  since: number;
}

/** One attempt's part: the tasks it holds (in the order it runs them) and the range it may be asked to split. */
interface AttemptBook<A> {
  attempt: A;
  held: Set<number>;
  lastResultAt?: number;
  /** The range it was given last (`lo` names it; `hi` moves down with each split). */
  range: TaskRange;
  /** Whether its host may still give part of `range` away (not once it gave nothing, or ran it dry). */
  splittable: boolean;
  /** A split of its range is being asked of its host. */
  splitting: boolean;
}

/** What a clone asking for work gets: tasks to run now or a range to run; neither with `end` (every task done), neither without (ask again). */
export interface TaskGrant {
  tasks: number[];
  range?: TaskRange;
  end: boolean;
}

/** `take`'s answer when only a split can give the asker work: ask `victim`'s host for the back of its range, then call `split`. */
export interface SplitDue<A> {
  split: A;
}

/**
 * `A` names a clone attempt (for the coordinator, its request id and index); `keyOf` gives the key the
 * ledger files it under, built from its parts and never parsed back.
 */
export class TaskLedger<A = string> {
  private readonly state: Uint8Array;
  /** The leases of each held task: its first holder, and at most one backup. */
  private readonly leases = new Map<number, Lease[]>();
  private readonly attempts = new Map<string, AttemptBook<A>>();
  /** Runs of pending tasks (at first every task; an ended attempt's range; single tasks given back), claimed in shares. */
  private unowned: TaskRange[];
  /** How long done tasks ran, sorted lazily (the median judges stragglers). */
  private readonly runMs: number[] = [];
  private runMsSorted = true;
  private readonly failures = new Map<number, number>();
  private pendingCount: number;
  private doneCount = 0;
  private backupCount = 0;
  private failureCount = 0;
  /** Results dropped because another attempt's came first. */
  duplicates = 0;
  /** Keys of attempts that held a task another finished: they may still be running it for nothing. */
  private readonly wastedKeys = new Set<string>();

  constructor(
    readonly total: number,
    /** Failures a task may have before the job fails (the job's retries). */
    private readonly retries: number,
    private readonly now: () => number = Date.now,
    private readonly keyOf: (attempt: A) => string = String,
    /** How long a clone may hold a finished task's result before sending it (TASK_RESULT_LAG_MS): no straggler for that. */
    private readonly resultLagMs = TASK_RESULT_LAG_MS,
  ) {
    this.state = new Uint8Array(total);
    this.pendingCount = total;
    this.unowned = total > 0 ? [{ lo: 0, hi: total }] : [];
  }

  /** Tasks no attempt holds (never handed out, or given back). */
  get pending(): number {
    return this.pendingCount;
  }

  get allDone(): boolean {
    return this.doneCount === this.total;
  }

  isDone(task: number): boolean {
    return this.state[task] === DONE;
  }

  /** The attempts holding `task` now. */
  holders(task: number): A[] {
    return (this.leases.get(task) ?? []).flatMap((l) => this.attempts.get(l.key)?.attempt ?? []);
  }

  /** Whether `attempt` holds `task` (it was given it and has not given it back). */
  holds(attempt: A, task: number): boolean {
    return this.attempts.get(this.keyOf(attempt))?.held.has(task) ?? false;
  }

  /** The range `attempt` was given last, as the ledger knows it (its `hi` moves down with each split). */
  rangeOf(attempt: A): TaskRange | undefined {
    return this.attempts.get(this.keyOf(attempt))?.range;
  }

  /** Whether `attempt` held a task another attempt finished: it may still be running it for nothing. */
  wasted(attempt: A): boolean {
    return this.wastedKeys.has(this.keyOf(attempt));
  }

  counts(): TaskCounts {
    return { total: this.total, done: this.doneCount, running: this.leases.size, backups: this.backupCount, duplicates: this.duplicates, failures: this.failureCount };
  }

  /**
   * `attempt` has handed every task of `ran` (the range it knows it has) to its guest. Tasks the ledger
   * counts in its range past `ran.hi` (a split its host made whose answer was lost), or its whole range
   * when the attempt never heard of it (the answer that gave it was lost), are pending again.
   */
  ranDry(attempt: A, ran: TaskRange | undefined): void {
    const mine = this.attempts.get(this.keyOf(attempt));
    if (!mine) return;
    mine.splittable = false;
    const { range } = mine;
    const from = ran?.lo === range.lo ? Math.max(range.lo, ran.hi) : range.lo;
    if (from >= range.hi) return;
    const given: number[] = [];
    for (let t = from; t < range.hi; t++) if (mine.held.has(t) && this.unlease(t, this.keyOf(attempt))) given.push(t);
    range.hi = from;
    this.giveBack(given);
  }

  /**
   * Work for `attempt`, which has nothing left, with `running` clone attempts at most: a share of the
   * pending tasks as its range, else a split of another's range to ask for, else (with `backups`; not for
   * an attempt asking ahead, whose backup would wait behind its running task) a straggler's duplicate.
   */
  take(attempt: A, running: number, backups = true): TaskGrant | SplitDue<A> {
    if (this.allDone) return { tasks: [], end: true };
    const key = this.keyOf(attempt);
    const mine = this.attemptOf(key, attempt);
    const claimed = this.claim(key, mine, running);
    if (claimed) return { tasks: [], range: claimed, end: false };
    const victim = this.largestRange(key);
    if (victim) {
      victim.splitting = true;
      return { split: victim.attempt };
    }
    if (backups) {
      const backup = this.straggler(key);
      if (backup !== undefined) {
        this.lease(backup, key);
        this.backupCount++;
        return { tasks: [backup], end: false };
      }
    }
    return { tasks: [], end: false };
  }

  /**
   * The host of `victim` answered a split (`hi`: its range ends there now; undefined: no answer): the
   * tasks from `hi` to its range's end become `thief`'s range. Nothing when that range changed meanwhile
   * (the victim ended or ran dry) or the thief ended.
   */
  split(victim: A, thief: A, hi: number | undefined): TaskGrant {
    const none = { tasks: [], end: this.allDone };
    const v = this.attempts.get(this.keyOf(victim));
    if (!v) return none;
    v.splitting = false;
    const old = v.range;
    if (hi === undefined || hi >= old.hi || hi < old.lo) {
      // The host gave nothing (or did not answer): it is not asked again for this range.
      v.splittable = false;
      return none;
    }
    const thiefKey = this.keyOf(thief);
    const t = this.attempts.get(thiefKey);
    if (!t) return none;
    const range = { lo: hi, hi: old.hi };
    old.hi = hi;
    const since = this.now();
    const victimKey = this.keyOf(victim);
    for (let task = range.lo; task < range.hi; task++) {
      if (!v.held.has(task)) continue;
      v.held.delete(task);
      t.held.add(task);
      for (const l of this.leases.get(task) ?? []) if (l.key === victimKey) Object.assign(l, { key: thiefKey, since });
    }
    t.range = range;
    t.splittable = true;
    return { tasks: [], range, end: false };
  }

  /** A result of `task` is stored (it ran `runMs`): it is done (a second one changes nothing); false when it was done already. */
  done(task: number, runMs?: number): boolean {
    if (task < 0 || task >= this.total || this.state[task] === DONE) return false;
    if (this.state[task] === PENDING) this.pendingCount--;
    this.state[task] = DONE;
    this.doneCount++;
    if (runMs !== undefined && Number.isFinite(runMs)) {
      this.runMs.push(runMs);
      this.runMsSorted = false;
    }
    const now = this.now();
    const leases = this.leases.get(task) ?? [];
    for (const l of leases) {
      const holder = this.attempts.get(l.key);
      holder?.held.delete(task);
      if (holder) holder.lastResultAt = now;
    }
    // With a backup, one of the two still runs the task for nothing.
    if (leases.length > 1) for (const l of leases) this.wastedKeys.add(l.key);
    this.leases.delete(task);
    return true;
  }

  /** A done task whose result turned out not to be stored: pending again. */
  undo(task: number): void {
    if (this.state[task] !== DONE) return;
    this.state[task] = PENDING;
    this.doneCount--;
    this.pendingCount++;
    this.unowned.push({ lo: task, hi: task + 1 });
  }

  failuresOf(task: number): number {
    return this.failures.get(task) ?? 0;
  }

  /**
   * `run_task` failed in `attempt`: the failure counts against the task, whose
   * lease ends. `final` when it has failed more than the job's retries.
   */
  failed(task: number, attempt: A): { final: boolean; failures: number } {
    if (task < 0 || task >= this.total || this.state[task] === DONE) return { final: false, failures: 0 };
    this.failureCount++;
    const failures = (this.failures.get(task) ?? 0) + 1;
    this.failures.set(task, failures);
    if (this.unlease(task, this.keyOf(attempt))) this.giveBack([task]);
    return { final: failures > this.retries, failures };
  }

  /** The attempt ended (done, lost, failed, stopped): the tasks it held and did not finish are pending again, unless held elsewhere too. */
  release(attempt: A): number[] {
    const key = this.keyOf(attempt);
    const mine = this.attempts.get(key);
    if (!mine) return [];
    this.attempts.delete(key);
    const given: number[] = [];
    for (const task of mine.held) if (this.unlease(task, key)) given.push(task);
    this.giveBack(given);
    return given;
  }

  private attemptOf(key: string, attempt: A): AttemptBook<A> {
    let mine = this.attempts.get(key);
    if (!mine) this.attempts.set(key, (mine = { attempt, held: new Set(), range: { lo: 0, hi: 0 }, splittable: false, splitting: false }));
    return mine;
  }

  /** Tasks pending again, as runs of consecutive ones (a run is claimed whole or in shares, like the first). */
  private giveBack(tasks: number[]): void {
    tasks.sort((a, b) => a - b);
    for (let i = 0; i < tasks.length; ) {
      let j = i + 1;
      while (j < tasks.length && tasks[j] === tasks[j - 1] + 1) j++;
      this.unowned.push({ lo: tasks[i], hi: tasks[j - 1] + 1 });
      i = j;
    }
  }

  /** A share of the last run of pending tasks as the attempt's new range; undefined when none is pending. */
  private claim(key: string, mine: AttemptBook<A>, running: number): TaskRange | undefined {
    // Shared among the running attempts that own no range yet, this one included.
    let owners = 0;
    for (const [other, a] of this.attempts) if (other !== key && a.splittable) owners++;
    while (this.unowned.length > 0) {
      const free = this.unowned.at(-1)!;
      const share = Math.ceil((free.hi - free.lo) / Math.max(1, running - owners));
      const range = { lo: free.lo, hi: free.lo + share };
      free.lo += share;
      if (free.lo >= free.hi) this.unowned.pop();
      // Done or held meanwhile (a result heard late, a task given back twice): not the claimer's.
      let any = false;
      for (let t = range.lo; t < range.hi; t++) if (this.state[t] === PENDING && (any = true)) this.lease(t, key);
      if (!any) continue;
      mine.range = range;
      mine.splittable = true;
      return range;
    }
    return undefined;
  }

  /** The attempt, other than `key`, whose splittable range has the most tasks not done (at least two), with no split under way. */
  private largestRange(key: string): AttemptBook<A> | undefined {
    let best: AttemptBook<A> | undefined;
    let most = 1;
    for (const [other, a] of this.attempts) {
      if (other === key || !a.splittable || a.splitting) continue;
      let left = 0;
      for (let t = a.range.lo; t < a.range.hi; t++) if (this.state[t] !== DONE) left++;
      if (left > most) {
        most = left;
        best = a;
      }
    }
    return best;
  }

  private lease(task: number, key: string): void {
    if (this.state[task] === PENDING) this.pendingCount--;
    this.state[task] = HELD;
    const leases = this.leases.get(task) ?? [];
    leases.push({ key, since: this.now() });
    this.leases.set(task, leases);
    this.attempts.get(key)!.held.add(task);
  }

  /** Ends the lease of `task` by the attempt keyed `key`; true when that made it pending (the caller gives it back). */
  private unlease(task: number, key: string): boolean {
    this.attempts.get(key)?.held.delete(task);
    const leases = this.leases.get(task);
    if (!leases || this.state[task] !== HELD) return false;
    const left = leases.filter((l) => l.key !== key);
    if (left.length > 0) {
      this.leases.set(task, left);
      return false;
    }
    this.leases.delete(task);
    this.state[task] = PENDING;
    this.pendingCount++;
    return true;
  }

  /** The median time of the tasks done so far, or undefined before any. */
  private medianRunMs(): number | undefined {
    if (this.runMs.length === 0) return undefined;
    if (!this.runMsSorted) {
      this.runMs.sort((a, b) => a - b);
      this.runMsSorted = true;
    }
    return this.runMs[Math.floor(this.runMs.length / 2)];
  }

  /** The straggler running longest past BACKUP_AFTER × the median (and the result lag), held by another attempt and with no backup yet. */
  private straggler(key: string): number | undefined {
    const median = this.medianRunMs();
    if (median === undefined) return undefined;
    const now = this.now();
    let best: number | undefined;
    let longest = BACKUP_AFTER * median + this.resultLagMs;
    for (const [other, book] of this.attempts) {
      if (other === key) continue;
      const task = book.held.values().next().value;
      if (task === undefined) continue;
      const leases = this.leases.get(task);
      if (!leases || leases.length !== 1) continue;
      const runningFor = now - Math.max(leases[0].since, book.lastResultAt ?? 0);
      if (runningFor > longest) {
        longest = runningFor;
        best = task;
      }
    }
    return best;
  }
}
