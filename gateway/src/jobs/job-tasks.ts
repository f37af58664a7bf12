/**
 * The task server of one task job, in the coordinator that runs it
 * (docs/jobs.md, "Tasks"): it answers its clones' TaskRequests on the job's
 * tasks subject from the TaskLedger, hears the tasks' results in the results
 * stream (one message per run of consecutive tasks a clone finished, framed
 * per task: per task the first heard counts), counts `run_task`
 * failures against their tasks, and gives the tasks of an attempt that ended
 * without finishing them back. A clone is done when the server tells it that
 * every task is.
 */
import { call, JobSubjects, serve, unframeOutputs, type CloneResult, type JobEventKind, type JobSpec, type KeptRun, type Logger, type StoredJob, type TaskReply, type TaskRequest, type WireError } from '@flurry/core';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { type AttemptsOwner, type CloneAttempts, type RunningAttempt, type TaskHooks } from './clone-attempts.js';
import { cloneOutputObject, START_GRACE_MS } from './job-forks.js';
import type { JobStore } from './job-store.js';
import { PROGRESS_EVERY_MS } from './job-record-writer.js';
import { refusedResults } from './refused-results.js';
import { TaskLedger } from './task-ledger.js';

/** How long a task job's subject answers `end` after the job ended (an idle clone asks again once its held ask is answered). */
const END_LINGER_MS = 10_000;
/**
 * How long an ask with nothing to take now is held before it is answered so: it is answered at once
 * when a task is given back or done (a backup may be due, or every task done: `end`), so that an idle
 * clone's guest thread is free the moment the job needs it no more (the reduce may wait for it).
 */
const HOLD_MS = 250;

/**
 * What the task server needs of the job's run: what its clone attempts need, but the retries (a task
 * counts its own), and `progressed`: the task counts changed (written with the record's next write, or
 * after PROGRESS_EVERY_MS).
 */
export type TasksOwner = Omit<AttemptsOwner, 'retries'> & { progressed(): void };

/** One clone's attempt: several clones of one fork request share its request id. */
export interface TaskAttempt {
  requestId: string;
  index: number;
}

const attemptKey = (a: TaskAttempt): string => `${a.requestId}/${a.index}`;

export class JobTasks implements TaskHooks {
  readonly ledger: TaskLedger<TaskAttempt>;
  /** A task that failed more than the job's retries: the job fails with it. */
  finalFailure?: { task: number; error: WireError };
  private sub?: Subscription;
  private nc?: NatsConnection;
  /** Asks held with nothing to take yet: each tries again when woken. */
  private readonly held = new Set<() => void>();
  private lastProgress = 0;
  private lastDone = -1;
  /**
   * With reduce: each task's output as its result was heard, so that reduce need not read the stream back
   * (only when one run holding the task was heard: with two, the stream says which it stored first).
   */
  private readonly outputs?: (Uint8Array | undefined)[];
  /** Per task, the run (`<request id>/<first>-<last>`) its result was first heard in; '' once heard in two. */
  private readonly heardIn: string[] = [];
  /** Attempts asked to keep their task outputs on their host for the reduce there: request id -> host. */
  private readonly keepers = new Map<string, string>();
  /** Runs heard from those attempts, by `<request id>/<first>-<last>` (as `heardIn`), with their host. */
  private readonly keptRuns = new Map<string, KeptRun & { host: string }>();

  constructor(
    private readonly job: TasksOwner,
    private readonly attempts: CloneAttempts,
    total: number,
    retries: number,
    /** The job's time limit of one `run_task`. */
    private readonly timeoutMs: number,
    keepOutputs: boolean,
  ) {
    this.ledger = new TaskLedger<TaskAttempt>(total, retries, Date.now, attemptKey);
    if (keepOutputs) this.outputs = new Array<Uint8Array | undefined>(total);
    this.record.tasks ??= this.ledger.counts();
  }

  /** The task server of the task job `spec` describes, serving its subject, its attempts' results and ends routed to it. */
  static serving(job: TasksOwner, attempts: CloneAttempts, spec: JobSpec, nc: NatsConnection): JobTasks {
    const tasks = new JobTasks(job, attempts, spec.tasks ?? 1, spec.retries, spec.timeoutMs, spec.reduce);
    attempts.tasks = tasks;
    tasks.serve(nc);
    return tasks;
  }

  private get record() {
    return this.job.stored.record;
  }

  /** Serves the job's tasks subject (once). */
  serve(nc: NatsConnection): void {
    const { tenant, id } = this.record;
    this.nc = nc;
    this.sub ??= serve(nc, 'tasks', JobSubjects.tasks(tenant, id), (req) => this.onRequest(req), { log: this.job.log.child({ jobId: id }) });
  }

  /**
   * Stops serving. `linger` (the job ended): the subject answers `end` a
   * while longer first, so that a clone between two asks when the job ends
   * is told to end at its next ask instead of finding nobody there and
   * asking again for a minute with its guest thread held (a coordinator
   * that stops for a take-over leaves at once: the next one serves).
   */
  close(linger = false): void {
    this.wakeHeld();
    const sub = this.sub;
    if (!sub) return;
    if (linger) setTimeout(() => sub.unsubscribe(), END_LINGER_MS).unref();
    else sub.unsubscribe();
  }

  /**
   * Whether another clone is worth forking: only while tasks are pending. A clone forked as a slot frees
   * near the end could only take backups, and with the job's clones already on every free slot it would
   * share a core with them.
   */
  get wantsClones(): boolean {
    return this.ledger.pending > 0;
  }

  /** Every task is done or one failed for good: the job can end. */
  get settled(): boolean {
    return this.ledger.allDone || this.finalFailure !== undefined;
  }

  async onRequest(req: TaskRequest): Promise<TaskReply> {
    const running = this.current(req);
    if (!running) return { ok: true, tasks: [], end: !req.ahead && !req.report };
    const key = { requestId: req.requestId, index: req.index };
    this.alive(running);
    this.noteStart(req);
    for (const f of req.failed) if (this.ledger.holds(key, f.task)) this.taskFailed(f.task, key, f.error, req.hostId, req.index);
    if (req.report) return { ok: true, tasks: [], end: false };
    this.ledger.ranDry(key, req.range);
    // Asked ahead: the clone is busy; whatever there is now (a split included), at once.
    if (req.ahead) return this.grant(req, true);
    // Held while there is nothing to take, and asked again whenever something changes.
    const until = Date.now() + HOLD_MS;
    for (;;) {
      const reply = await this.grant(req);
      if (reply.tasks.length > 0 || reply.range || reply.end || Date.now() >= until) return reply;
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.held.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, until - Date.now());
        this.held.add(wake);
      });
    }
  }

  /** A task clone's start (from its current attempt's asks): its end is no result that could carry it. */
  private noteStart(req: TaskRequest): void {
    const detail = this.record.clonesDetail[req.index];
    if (req.startMs === undefined || !detail || detail.startMs === req.startMs) return;
    detail.startMs = req.startMs;
    this.job.changed();
  }

  /** The attempt that asks, when it is current (one lost, re-forked, or of the coordinator before takes nothing more). */
  private current(req: TaskRequest): RunningAttempt | undefined {
    const running = this.attempts.current(req.index);
    if (this.job.over() || !running || running.requestId !== req.requestId || running.host !== req.hostId) return undefined;
    return running;
  }

  /**
   * What the asking attempt, which has nothing left, gets now: a range, tasks, none (ask again), or `end`.
   * `ahead` (the attempt still runs a task): no backup and no `end`; its ask after that task decides.
   */
  private async grant(req: TaskRequest, ahead = false): Promise<Extract<TaskReply, { ok: true }>> {
    if (!this.current(req)) return { ok: true, tasks: [], end: !ahead };
    if (this.settled) {
      if (ahead) return { ok: true, tasks: [], end: false };
      this.cloneDone(req.index, req.hostId);
      return { ok: true, tasks: [], end: true };
    }
    const thief = { requestId: req.requestId, index: req.index };
    let grant = this.ledger.take(thief, this.attempts.runningCount, !ahead);
    if ('split' in grant) grant = this.ledger.split(grant.split, thief, await this.askSplit(grant.split));
    if (grant.tasks.length > 0 || grant.range) this.sync();
    return { ok: true, tasks: grant.tasks, ...(grant.range && { range: grant.range }), end: grant.end && !ahead };
  }

  /** Asks the host of `victim` to give away the back half of its range: where that range ends now, or undefined (no answer). */
  private async askSplit(victim: TaskAttempt): Promise<number | undefined> {
    const running = this.attempts.current(victim.index);
    const lo = this.ledger.rangeOf(victim)?.lo;
    if (!this.nc || !running || running.requestId !== victim.requestId || lo === undefined) return undefined;
    try {
      const reply = await call(this.nc, 'split', JobSubjects.split(running.host), { requestId: victim.requestId, index: victim.index, lo });
      return reply.ok ? reply.hi : undefined;
    } catch {
      return undefined;
    }
  }

  /** Something may have changed for the asks held: each tries again. */
  private wakeHeld(): void {
    const held = [...this.held];
    this.held.clear();
    for (const wake of held) wake();
  }

  /**
   * The results of a run of tasks (`r.index` on, one per `r.taskRunMs`), stored in the results stream: they
   * count when an attempt of this job sent to that host made them.
   */
  onResult(r: CloneResult): void {
    const count = r.taskRunMs?.length ?? 0;
    if (this.job.over() || !r.ok || count === 0 || r.index + count > this.ledger.total) return;
    const token = `${r.index}-${r.index + count - 1}`;
    const { tenant, id } = this.record;
    const host = this.attempts.sentHost(r.requestId);
    // The output object of a run is the one its attempt writes; a result cannot name another one's.
    const badObject = r.outputObject !== undefined && r.outputObject !== cloneOutputObject(this.record, token, r.requestId);
    const each = r.outputObject === undefined ? unframeOutputs(r.output ?? new Uint8Array(0), count) : undefined;
    if (host === undefined || host !== r.hostId || badObject || (r.outputObject === undefined && !each)) {
      const why = host === undefined ? 'no such attempt was sent' : host !== r.hostId ? `the attempt was sent to ${host}` : 'its outputs are not one frame per task';
      refusedResults.note(this.job.log, id, r, why);
      void this.job.store.dropResult(tenant, id, token, r.requestId).catch(() => undefined);
      return;
    }
    for (const { index } of this.ledger.holders(r.index)) {
      const running = this.attempts.current(index);
      if (running?.requestId === r.requestId) this.alive(running);
    }
    const from = `${r.requestId}/${token}`;
    if (this.outputs && each && this.keepers.get(r.requestId) === r.hostId) this.keptRuns.set(from, { requestId: r.requestId, first: r.index, count, host: r.hostId });
    let any = false;
    for (let k = 0; k < count; k++) {
      const task = r.index + k;
      if (this.ledger.done(task, r.taskRunMs![k])) {
        any = true;
        this.heardIn[task] = from;
        if (this.outputs) this.outputs[task] = each?.[k];
      } else if (this.heardIn[task] !== from) {
        // Another run holds it too (a backup, a clone run twice; not the same message heard again): the stream says which counts.
        if (this.heardIn[task] !== '') this.ledger.duplicates++;
        this.heardIn[task] = '';
        if (this.outputs) this.outputs[task] = undefined;
      }
    }
    if (!any) return;
    this.sync();
    this.wakeHeld();
    if (this.ledger.allDone) this.job.wake();
  }

  /** The task outputs in task order when every one was heard in one run (none to read back from the stream), for reduce. */
  heldOutputs(): Uint8Array[] | undefined {
    const outputs = this.outputs;
    if (!outputs) return undefined;
    for (let t = 0; t < outputs.length; t++) if (!outputs[t]) return undefined;
    return outputs as Uint8Array[];
  }

  outputsKeptOn(requestId: string, host: string): void {
    this.keepers.set(requestId, host);
  }

  /**
   * The runs of task outputs `host` kept for the reduce there (its own clones' runs, ForkRequest.keptOutputs), in
   * task order: each run whose every task counts from that run (heard in it alone, its output held here). The
   * reduce request names them instead of sending their bytes back to the host that made them.
   */
  keptRunsOn(host: string): KeptRun[] {
    const runs: KeptRun[] = [];
    for (const [from, run] of this.keptRuns) {
      if (run.host !== host) continue;
      let whole = true;
      for (let t = run.first; t < run.first + run.count && whole; t++) whole = this.heardIn[t] === from && this.outputs?.[t] !== undefined;
      if (whole) runs.push({ requestId: run.requestId, first: run.first, count: run.count });
    }
    return runs.sort((a, b) => a.first - b.first);
  }

  /** The task outputs in task order, for reduce: those heard in one run from here, the rest (and large ones) from the results stream. */
  async outputsInOrder(): Promise<Uint8Array[]> {
    const { tenant, id } = this.record;
    return this.job.store.taskOutputs(tenant, id, this.ledger.total, 'throw', this.outputs);
  }

  /**
   * A clone runs as many tasks as it gets, each within the job's time limit: its attempt's deadline (the
   * coordinator's guard against a clone it no longer hears from) moves on with every request and result.
   */
  private alive(running: RunningAttempt): void {
    running.deadline = Math.max(running.deadline, Date.now() + this.timeoutMs + START_GRACE_MS);
  }

  /** Tasks stored while nobody heard them (a coordinator taking over, an outage). */
  async readStored(): Promise<void> {
    const { tenant, id } = this.record;
    let any = false;
    for (const task of await this.job.store.finishedIndexes(tenant, id, this.ledger.total)) if (this.ledger.done(task)) any = true;
    if (any) this.sync();
  }

  attemptEnded(index: number, r: RunningAttempt): void {
    if (this.ledger.release({ requestId: r.requestId, index }).length === 0) return;
    this.sync();
    this.wakeHeld();
  }

  /** `run_task` of `task` failed in the clone attempt `r` (a trap, or its time limit ended the clone). */
  cloneFailedInTask(index: number, r: RunningAttempt, task: number, error: WireError): void {
    const key = { requestId: r.requestId, index };
    if (this.ledger.holds(key, task)) this.taskFailed(task, key, error, r.host, index);
  }

  /** Why the job fails: a task that failed more than the job's retries. */
  failure(): WireError | undefined {
    const f = this.finalFailure;
    return f && { code: f.error.code, message: `task ${f.task} failed ${this.ledger.failuresOf(f.task)} times: ${f.error.message}` };
  }

  /** Tasks heard done whose results the stream does not hold: they run again. */
  rerun(tasks: number[]): void {
    for (const task of tasks) {
      this.ledger.undo(task);
      this.heardIn[task] = '';
      if (this.outputs) this.outputs[task] = undefined;
    }
    this.wakeHeld();
    // Their clones may all have been told that every task was done.
    for (const c of this.record.clonesDetail) if (c.state === 'done') c.state = 'pending';
    this.job.changed();
    this.sync();
  }

  private taskFailed(task: number, key: TaskAttempt, error: WireError, host: string, index: number): void {
    // The job fails already: a failure heard after that (a backup of the same task, another clone's) changes nothing.
    if (this.finalFailure) return;
    const { final, failures } = this.ledger.failed(task, key);
    this.job.emit('clone.failed', { index, host, task, attempt: failures, error, final });
    if (final) {
      this.finalFailure = { task, error };
      this.job.wake();
    }
    this.sync();
    this.wakeHeld();
  }

  /** The clone has nothing more to do: done, its run timed from its fork request to now. */
  private cloneDone(index: number, host: string): void {
    const c = this.record.clonesDetail[index];
    const r = this.attempts.end(index);
    c.state = 'done';
    c.host = host;
    c.error = undefined;
    if (r?.sentAt !== undefined) c.runMs = Date.now() - r.sentAt;
    this.job.changed();
    this.job.emit('clone.done', { index, host, startMs: c.startMs, runMs: c.runMs });
    this.job.wake();
  }

  /**
   * Once the job is settled, the clones still running are done, and those never started need not be.
   * True when one may still run a task another clone finished (it is to be stopped).
   */
  endRunning(): boolean {
    // A clone waiting for tasks ends at its next request; only one that may be running a duplicate is worth stopping.
    const running = this.attempts.runningNow().some(([index, r]) => this.ledger.wasted({ requestId: r.requestId, index }));
    for (const [index, r] of this.attempts.runningNow()) this.cloneDone(index, r.host);
    for (const c of this.record.clonesDetail) if (c.state === 'pending') c.state = 'done';
    this.job.changed();
    return running;
  }

  private sync(): void {
    this.record.tasks = this.ledger.counts();
    this.job.progressed();
    const now = Date.now();
    const { done, total } = this.record.tasks;
    if (done === this.lastDone || (now - this.lastProgress < PROGRESS_EVERY_MS && done < total)) return;
    this.lastProgress = now;
    this.lastDone = done;
    this.job.emit('progress', { done, total });
  }
}
