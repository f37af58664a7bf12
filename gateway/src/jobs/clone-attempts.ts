/**
 * The attempts of one job's clones and what became of them: which attempt of
 * each clone runs where and until when, every attempt sent (only their results
 * count), and each clone's state in the job's record as results, failures and
 * losses come in. A guest's own failure counts against the job's retries; a
 * clone lost to the platform (a host gone, a fork refused) is run again,
 * up to MAX_PLATFORM_ATTEMPTS times.
 */
import { JobSubjects, listen, type CloneDetail, type CloneResult, type ErrorCode, type JobEventKind, type Logger, type StoredJob, type WireError } from '@flurry/core';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { cloneOutputObject } from './job-forks.js';
import type { JobStore } from './job-store.js';
import { refusedResults } from './refused-results.js';

/** Failures that are the guest's own; anything else (a lost host, a page server gone) is retried without counting. */
export const GUEST_FAILURES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['guest_trap', 'guest_error', 'output_limit', 'timeout']);
/** Attempts of one clone lost to the platform before the job gives up on it. */
const MAX_PLATFORM_ATTEMPTS = 8;
/**
 * How long a clone lost `losses` times waits before it is forked again:
 * doubling from 250 ms up to 4 s (15.75 s before the last attempt). A cause
 * the fleet has not judged yet (a parent host whose memory server died, until
 * its heartbeats are missed) must not use up the attempts in a tight loop.
 */
export function lossBackoffMs(losses: number): number {
  return Math.min(250 * 2 ** Math.max(0, losses - 1), 4000);
}

export interface RunningAttempt {
  host: string;
  /** The host's incarnation the clone went to: a host restarted since has lost it. */
  incarnation?: number;
  requestId: string;
  deadline: number;
  /** When the fork request went out (ms since the epoch). */
  sentAt?: number;
}

/** What the attempts tell the job's run. */
export interface AttemptsOwner {
  readonly stored: StoredJob;
  readonly retries: number;
  readonly log: Logger;
  readonly store: JobStore;
  /** The job ended or the run stopped: results and failures change nothing any more. */
  over(): boolean;
  emit(kind: JobEventKind, fields: Record<string, unknown>): void;
  /** The record changed and is to be written. */
  changed(): void;
  /** Something happened that the run's next step acts on. */
  wake(): void;
}

/** A task job's server (job-tasks.ts): results are tasks', and an attempt's end gives its tasks back. */
export interface TaskHooks {
  onResult(r: CloneResult): void;
  readStored(): Promise<void>;
  attemptEnded(index: number, r: RunningAttempt): void;
  cloneFailedInTask(index: number, r: RunningAttempt, task: number, error: WireError): void;
  /** The attempt `requestId` was asked to keep its task outputs on `host` for the reduce there (ForkRequest.tasks.keepOutputs). */
  outputsKeptOn(requestId: string, host: string): void;
}

export class CloneAttempts {
  /** Set for a task job before it listens. */
  tasks?: TaskHooks;
  private readonly running = new Map<number, RunningAttempt>();
  /** Every attempt sent, by index: request id -> host. Only their results count. */
  private readonly sent = new Map<number, Map<string, string>>();
  private readonly guestFailures = new Map<number, number>();
  private readonly platformLosses = new Map<number, number>();
  /** When each clone lost to the platform may be forked again (lossBackoffMs). */
  private readonly retryAt = new Map<number, number>();
  private readonly subs: Subscription[] = [];

  constructor(
    private readonly job: AttemptsOwner,
    /** Clones each host runs for all jobs of this coordinator now (shared by its runs). */
    private readonly inFlight: Map<string, number>,
  ) {}

  private get record() {
    return this.job.stored.record;
  }

  /**
   * Hears the job's results, failures and progress as the hosts publish them
   * (once: a resume run again after an outage keeps the subscriptions).
   */
  async listen(nc: NatsConnection): Promise<void> {
    if (this.subs.length > 0) return;
    const { tenant, id } = this.record;
    // A message that is not one is dropped (checked-decode.ts counts and logs it); a handler that throws is logged.
    const log = this.job.log.child({ jobId: id });
    this.subs.push(
      listen(nc, 'results', `${JobSubjects.results(tenant, id)}.*`, (r) => (this.tasks ? this.tasks.onResult(r) : this.onResult(r)), { log }),
      listen(nc, 'failures', `${JobSubjects.failures(tenant, id)}.>`, (r) => this.onFailure(r), { log }),
      listen(nc, 'progress', JobSubjects.progress(tenant, id), (p) => {
        if (!this.job.over() && this.running.get(p.index)?.requestId === p.requestId) this.job.emit('progress', { index: p.index, done: p.done, total: p.total, host: p.hostId });
      }, { log }),
    );
    await nc.flush();
  }

  /**
   * Clones the record has done whose `clone.done` the stream may not have (the
   * coordinator before died between the two): announced again. The event's fixed
   * message id makes one that was stored after all count once.
   */
  private announceDoneUnstored(): void {
    const stored = new Set(this.job.stored.doneEventsStored ?? []);
    this.record.clonesDetail.forEach((c, index) => {
      if (c.state === 'done' && !stored.has(index)) this.job.emit('clone.done', { index, host: c.host, startMs: c.startMs, runMs: c.runMs, pages: c.pages });
    });
  }

  close(): void {
    for (const s of this.subs) s.unsubscribe();
  }

  /**
   * Takes over from the coordinator before: the attempts it had running may
   * still deliver their results; what the streams kept is counted; clones
   * still running are forked again (a failure they reported meanwhile is
   * lost, so waiting for them could take their whole time limit; if the old
   * attempt finishes first, its result is the one kept: one per index).
   */
  async resume(): Promise<void> {
    const { stored } = this.job;
    this.announceDoneUnstored();
    for (const [index, requestId] of Object.entries(stored.dispatch ?? {})) {
      const host = this.record.clonesDetail[Number(index)]?.host;
      if (host) this.noteSent(Number(index), requestId, host);
    }
    await this.readStored();
    for (const c of this.record.clonesDetail) if (c.state === 'running') c.state = 'pending';
    stored.dispatch = {};
  }

  /** Results and failures the streams keep that this run has not counted yet (stored while its subscriptions could not hear them). */
  async readStored(): Promise<void> {
    const { store } = this.job;
    const { tenant, id } = this.record;
    if (this.tasks) await this.tasks.readStored();
    else for (const index of await store.finishedIndexes(tenant, id, this.record.clones)) {
      if (this.record.clonesDetail[index]?.state === 'done') continue;
      const r = await store.result(tenant, id, index);
      if (r) this.onResult(r);
    }
    if (this.running.size === 0) return;
    for (const f of await store.failedAttempts(tenant, id)) {
      if (this.running.get(f.index)?.requestId !== f.requestId) continue;
      const r = await store.failure(f.subject);
      if (r) this.onFailure(r);
    }
  }

  get runningCount(): number {
    return this.running.size;
  }

  current(index: number): RunningAttempt | undefined {
    return this.running.get(index);
  }

  /** The running attempts, as a copy (ending one while iterating is safe). */
  runningNow(): [number, RunningAttempt][] {
    return [...this.running];
  }

  /** The host an attempt (any index's) was sent to. */
  sentHost(requestId: string): string | undefined {
    for (const attempts of this.sent.values()) {
      const host = attempts.get(requestId);
      if (host !== undefined) return host;
    }
    return undefined;
  }

  /** An attempt of clone `index` went to `host` (or, resumed, may still deliver its result). */
  private noteSent(index: number, requestId: string, host: string): void {
    let attempts = this.sent.get(index);
    if (!attempts) this.sent.set(index, (attempts = new Map()));
    attempts.set(requestId, host);
  }

  /** Clone `index` now runs as `attempt`: it counts in the host's clones in flight, and its request id is kept in the record. */
  start(index: number, attempt: RunningAttempt): void {
    this.noteSent(index, attempt.requestId, attempt.host);
    this.running.set(index, attempt);
    this.inFlight.set(attempt.host, (this.inFlight.get(attempt.host) ?? 0) + 1);
    (this.job.stored.dispatch ??= {})[index] = attempt.requestId;
  }

  /** Clone `index` no longer runs (done, failed, lost, or the job ended). */
  end(index: number): RunningAttempt | undefined {
    const r = this.running.get(index);
    if (r) {
      this.running.delete(index);
      this.freeSlot(r.host);
      if (this.job.stored.dispatch) delete this.job.stored.dispatch[index];
      this.tasks?.attemptEnded(index, r);
    }
    return r;
  }

  /** The run stops: its clones leave the hosts' counts; the record keeps them for the coordinator that resumes the job. */
  forgetAll(): void {
    for (const r of this.running.values()) this.freeSlot(r.host);
    this.running.clear();
  }

  /** Clones on hosts that stopped heartbeating (or restarted) are lost and go elsewhere; clones past their deadline failed. */
  judgeRunning(liveIds: ReadonlySet<string>, incarnation: (host: string) => number | undefined, timeoutMs: number): void {
    const now = Date.now();
    for (const [index, r] of this.runningNow()) {
      if (!liveIds.has(r.host)) this.lose(index, r, `host ${r.host} lost`);
      else if (r.incarnation !== undefined && incarnation(r.host) !== r.incarnation) this.lose(index, r, `host ${r.host} restarted`);
      else if (now > r.deadline) this.fail(index, { code: 'timeout', message: `clone ${index} did not finish within ${timeoutMs} ms` });
    }
  }

  /** The broker was away for `ms`: running clones get that time back. */
  extendDeadlines(ms: number): void {
    for (const r of this.running.values()) r.deadline += ms;
  }

  private freeSlot(host: string): void {
    const n = (this.inFlight.get(host) ?? 1) - 1;
    if (n <= 0) this.inFlight.delete(host);
    else this.inFlight.set(host, n);
  }

  onResult(r: CloneResult): void {
    if (this.job.over()) return;
    const c = this.record.clonesDetail[r.index];
    if (!c || !r.ok) return;
    if (c.state === 'done') {
      if (r.outputObject) dropLostOutput(this.job, this.record, r);
      return;
    }
    if (!this.fromSentAttempt(r)) return;
    this.end(r.index);
    c.state = 'done';
    c.host = r.hostId;
    c.startMs = r.startMs;
    c.runMs = r.runMs;
    c.pages = r.pages;
    c.error = undefined;
    this.record.pagesFetched += r.pages.unicast + r.pages.multicast;
    this.job.changed();
    this.job.emit('clone.done', { index: r.index, host: r.hostId, startMs: r.startMs, runMs: r.runMs, pages: r.pages });
    this.job.wake();
  }

  onFailure(r: CloneResult): void {
    if (this.job.over()) return;
    const running = this.running.get(r.index);
    // A failure of an attempt that is no longer current (lost, timed out, already retried) changes nothing.
    if (!running || running.requestId !== r.requestId) return;
    const error = r.error ?? { code: 'internal', message: 'clone failed' };
    if (this.tasks && r.task !== undefined && GUEST_FAILURES.has(error.code)) {
      // Its task's failure, not the clone's: counted against the task; the clone runs again.
      this.tasks.cloneFailedInTask(r.index, running, r.task, error);
      this.end(r.index);
      this.record.clonesDetail[r.index].state = 'pending';
      this.job.changed();
      this.job.wake();
    } else if (GUEST_FAILURES.has(error.code)) this.fail(r.index, error, r.hostId);
    else {
      this.lose(r.index, running, error.message);
      this.job.wake();
    }
  }

  /** Whether `r` is the result of an attempt this job sent for its index to the host it names; counts and drops it if not. */
  private fromSentAttempt(r: CloneResult): boolean {
    const host = this.sent.get(r.index)?.get(r.requestId);
    if (host !== undefined && host === r.hostId) return true;
    const { tenant, id } = this.record;
    refusedResults.note(this.job.log, id, r, host === undefined ? 'no such attempt was sent for this index' : `the attempt was sent to ${host}`);
    void this.job.store.dropResult(tenant, id, r.index, r.requestId).catch((err: unknown) => {
      this.job.log.warn({ jobId: id, index: r.index, err: (err as Error).message }, 'a refused result could not be dropped from the results stream');
    });
    return false;
  }

  /** Whether pending clone `index` may be forked at `now` (a clone lost to the platform waits its backoff). */
  ready(index: number, now: number): boolean {
    return (this.retryAt.get(index) ?? 0) <= now;
  }

  /** A clone lost to the platform: run it again, without counting it against its retries. */
  lose(index: number, r: RunningAttempt, why: string): void {
    if (this.running.get(index) !== r) return;
    this.end(index);
    this.job.log.info({ jobId: this.record.id, index, hostId: r.host, why }, 'clone lost; forking it again');
    this.platformLoss(index, r.host, why);
  }

  /** A clone to run again (or, lost too often, failed): not the guest's fault and not counted against its retries. */
  platformLoss(index: number, host: string | undefined, why: string): void {
    const c = this.record.clonesDetail[index];
    const losses = (this.platformLosses.get(index) ?? 0) + 1;
    this.platformLosses.set(index, losses);
    if (losses >= MAX_PLATFORM_ATTEMPTS) {
      c.state = 'failed';
      c.error = { code: 'unavailable', message: `clone ${index} was lost ${losses} times: ${why}` };
      this.job.emit('clone.failed', { index, host, error: c.error, final: true });
    } else {
      c.state = 'pending';
      this.retryAt.set(index, Date.now() + lossBackoffMs(losses));
      // Said, so that why is never a mystery.
      this.job.emit('clone.lost', { index, host, reason: why });
    }
    this.job.changed();
  }

  /** An attempt failed by the guest's own fault: run again while the job's retries last, else the clone failed. */
  fail(index: number, error: WireError, host?: string): void {
    this.end(index);
    const c = this.record.clonesDetail[index];
    const failures = (this.guestFailures.get(index) ?? 0) + 1;
    this.guestFailures.set(index, failures);
    c.error = error;
    const final = failures > this.job.retries;
    c.state = final ? 'failed' : 'pending';
    this.job.changed();
    this.job.emit('clone.failed', { index, host: host ?? c.host, attempt: c.attempts, error, final });
    this.job.wake();
  }
}

/**
 * A result heard for an index that is done already, naming a large output: when the stream kept another
 * attempt's result, that output is deleted (in the background; a failure leaves it in the store). Only
 * the object the attempt the result claims would have written: a result cannot name another one's.
 */
export function dropLostOutput(job: Pick<AttemptsOwner, 'store' | 'log'>, record: { tenant: string; id: string }, r: CloneResult): void {
  const name = r.outputObject;
  if (!name || name !== cloneOutputObject(record, r.index, r.requestId)) return;
  void job.store.dropLostOutput(record.tenant, record.id, r.index, r.requestId, name).catch((err: unknown) => {
    job.log.warn({ jobId: record.id, index: r.index, object: name, err: (err as Error).message }, 'the output of an attempt that lost the race could not be deleted');
  });
}

/** A new job's clones in its record: all pending, none attempted. */
export function newCloneDetails(count: number): CloneDetail[] {
  return Array.from({ length: count }, (_, index) => ({ index, state: 'pending', attempts: 0 }));
}
