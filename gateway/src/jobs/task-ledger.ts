/**
 * The task server's book of one task job (docs/jobs.md, "Tasks"): each task
 * is pending, leased (to which clone attempts, since when) or done. Pure: the
 * coordinator's JobTasks feeds it what it hears and answers clones from it.
 *
 * Batches: a clone's first request gets one task, and each later one as many
 * as it has taken so far (1, 1, 2, 4, …: slow start, since nothing is known of
 * a task's cost at first) or, once tasks are done, as many as take ASK_MS by
 * their median time if that is more (a 12 ms task is not worth an ask of its
 * own), never more than the pending tasks shared among twice the running
 * clones (guided self-scheduling: batches shrink as the end nears, so no
 * clone holds much work when the others run dry) nor MAX_BATCH.
 * Ranges (work stealing by halving, as Cilk and TBB split ranges): each
 * clone attempt owns a consecutive range of the pending tasks and takes its
 * batches from its front, so that its results are one consecutive run and
 * go in one message however many batches they span. The first ask of each
 * clone claims an equal share of the tasks nobody owns; a clone whose range
 * is empty takes the back half of the largest range another clone owns (or
 * the last one, when it has one left). A range an ended attempt owned goes
 * back to nobody; tasks given back one by one are handed out first.
 * Backups (MapReduce): with nothing pending, a clone gets a duplicate of a
 * task that runs for longer than BACKUP_AFTER times the median task so far
 * plus the time a clone may hold a finished task's result (resultLagMs;
 * the longest first; one backup per task at a time): a task merely waiting
 * its turn or sharing a core is no straggler, and a duplicate of it would only
 * take a core from it. Only the first task an attempt holds unfinished runs
 * (the rest of its batch waits behind it); it runs since its lease or the
 * attempt's last result, whichever is later. The first result per task wins.
 */
import { TASK_RESULT_LAG_MS, type TaskCounts } from '@flurry/core';

/** The most tasks one request takes. */
export const MAX_BATCH = 64;
/** Once task times are known, a batch holds at least this much work by their median (still capped by the share and MAX_BATCH). */
export const ASK_MS = 100;
/** A task running longer than this many times the median task's time gets a backup. */
export const BACKUP_AFTER = 2;

const PENDING = 0;
const LEASED = 1;
const DONE = 2;

interface Lease<A> {
  /** Its attempt's key (keyOf). */
  key: string;
  attempt: A;
  since: number;
}

/** Pending tasks lo..hi-1, not leased to anybody yet. */
interface Range {
  lo: number;
  hi: number;
}

/** What a clone asking for work gets: tasks to run now; none with `end` (every task done), none without (ask again). */
export interface TaskGrant {
  tasks: number[];
  end: boolean;
}

/**
 * `A` names a clone attempt (for the coordinator, its request id and index); `keyOf` gives the key the
 * ledger files it under, built from its parts and never parsed back.
 */
export class TaskLedger<A = string> {
  private readonly state: Uint8Array;
  /** The leases of each leased task: its first, and at most one backup. */
  private readonly leases = new Map<number, Lease<A>[]>();
  /** Per attempt key: the tasks it holds, how many it has taken, and the range its next batches come from. */
  private readonly attempts = new Map<string, { held: Set<number>; taken: number; lastResultAt?: number; range: Range }>();
  /** Ranges no attempt owns (at first every task; an ended attempt's range), claimed in shares. */
  private unowned: Range[];
  /** How long done tasks ran, sorted lazily (the median judges stragglers). */
  private readonly runMs: number[] = [];
  private runMsSorted = true;
  private readonly failures = new Map<number, number>();
  /** Tasks given back (a lease ended without a result), handed out before new ones. */
  private returned: number[] = [];
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
    this.unowned = [{ lo: 0, hi: total }];
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
    return (this.leases.get(task) ?? []).map((l) => l.attempt);
  }

  /** Whether `attempt` holds `task` (it was handed it and has not given it back). */
  holds(attempt: A, task: number): boolean {
    return this.attempts.get(this.keyOf(attempt))?.held.has(task) ?? false;
  }

  /** Whether `attempt` held a task another attempt finished: it may still be running it for nothing. */
  wasted(attempt: A): boolean {
    return this.wastedKeys.has(this.keyOf(attempt));
  }

  counts(): TaskCounts {
    return { total: this.total, done: this.doneCount, running: this.leases.size, backups: this.backupCount, duplicates: this.duplicates, failures: this.failureCount };
  }

  /**
   * The next batch for `attempt`, with `running` clone attempts asking at most. `backups` false (an
   * attempt asking ahead, still busy with a task): pending tasks only, since a backup queued behind a
   * running task would start no sooner than if an idle clone asked for it.
   */
  take(attempt: A, running: number, backups = true): TaskGrant {
    if (this.allDone) return { tasks: [], end: true };
    const key = this.keyOf(attempt);
    const mine = this.attemptOf(key);
    const tasks: number[] = [];
    if (this.pendingCount > 0) {
      const share = Math.max(1, Math.floor(this.pendingCount / (2 * Math.max(1, running))));
      const median = this.medianRunMs();
      const byTime = median === undefined ? 1 : Math.ceil(ASK_MS / Math.max(median, 0.1));
      const size = Math.min(Math.max(1, mine.taken, byTime), share, MAX_BATCH);
      while (tasks.length < size) {
        // Claims or steals a range only for an empty batch: a batch ends where the clone's range does.
        const t = this.nextPending(key, running, tasks.length === 0);
        if (t === undefined) break;
        this.lease(t, attempt, key);
        tasks.push(t);
      }
    } else if (backups) {
      const backup = this.straggler(key);
      if (backup !== undefined) {
        this.lease(backup, attempt, key);
        this.backupCount++;
        tasks.push(backup);
      }
    }
    mine.taken += tasks.length;
    return { tasks, end: false };
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
    this.returned.push(task);
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
    this.unlease(task, this.keyOf(attempt));
    return { final: failures > this.retries, failures };
  }

  /** The attempt ended (done, lost, failed, stopped): the tasks it held and did not finish are pending again, unless leased elsewhere too. */
  release(attempt: A): number[] {
    const key = this.keyOf(attempt);
    const mine = this.attempts.get(key);
    if (!mine) return [];
    this.attempts.delete(key);
    if (mine.range.lo < mine.range.hi) this.unowned.push(mine.range);
    const given: number[] = [];
    for (const task of mine.held) if (this.unlease(task, key)) given.push(task);
    return given;
  }

  private attemptOf(key: string) {
    let mine = this.attempts.get(key);
    if (!mine) this.attempts.set(key, (mine = { held: new Set(), taken: 0, range: { lo: 0, hi: 0 } }));
    return mine;
  }

  /** The next pending task for the attempt keyed `key`: one given back, else its range's front; `refill`: an empty range claims or steals first. */
  private nextPending(key: string, running: number, refill: boolean): number | undefined {
    while (this.returned.length > 0) {
      const t = this.returned.shift()!;
      if (this.state[t] === PENDING) return t;
    }
    const range = this.attemptOf(key).range;
    for (;;) {
      while (range.lo < range.hi) {
        const t = range.lo++;
        if (this.state[t] === PENDING) return t;
      }
      if (!refill || !this.refill(key, running, range)) return undefined;
    }
  }

  /** Gives the attempt keyed `key` a new range: a share of an unowned one, else half of the largest another owns; false when there is none. */
  private refill(key: string, running: number, range: Range): boolean {
    const free = this.unowned.at(-1);
    if (free) {
      // Shared among the running attempts that own no range yet, this one included.
      let owners = 0;
      for (const [other, a] of this.attempts) if (other !== key && a.range.lo < a.range.hi) owners++;
      const share = Math.ceil((free.hi - free.lo) / Math.max(1, running - owners));
      range.lo = free.lo;
      range.hi = free.lo + share;
      free.lo += share;
      if (free.lo >= free.hi) this.unowned.pop();
      return true;
    }
    let victim: Range | undefined;
    for (const [other, a] of this.attempts) {
      if (other !== key && a.range.hi - a.range.lo > (victim ? victim.hi - victim.lo : 0)) victim = a.range;
    }
    if (!victim) return false;
    // The back half: the owner goes on at its front, both runs stay consecutive.
    const half = Math.ceil((victim.hi - victim.lo) / 2);
    range.hi = victim.hi;
    range.lo = victim.hi - half;
    victim.hi = range.lo;
    return true;
  }

  private lease(task: number, attempt: A, key: string): void {
    if (this.state[task] === PENDING) this.pendingCount--;
    this.state[task] = LEASED;
    const leases = this.leases.get(task) ?? [];
    leases.push({ key, attempt, since: this.now() });
    this.leases.set(task, leases);
    this.attemptOf(key).held.add(task);
  }

  /** Ends the lease of `task` by the attempt keyed `key`; true when that made it pending again. */
  private unlease(task: number, key: string): boolean {
    this.attempts.get(key)?.held.delete(task);
    const leases = this.leases.get(task);
    if (!leases || this.state[task] !== LEASED) return false;
    const left = leases.filter((l) => l.key !== key);
    if (left.length > 0) {
      this.leases.set(task, left);
      return false;
    }
    this.leases.delete(task);
    this.state[task] = PENDING;
    this.pendingCount++;
    this.returned.push(task);
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
    for (const [other, held] of this.attempts) {
      if (other === key) continue;
      const task = held.held.values().next().value;
      if (task === undefined) continue;
      const leases = this.leases.get(task);
      if (!leases || leases.length !== 1) continue;
      const runningFor = now - Math.max(leases[0].since, held.lastResultAt ?? 0);
      if (runningFor > longest) {
        longest = runningFor;
        best = task;
      }
    }
    return best;
  }
}
