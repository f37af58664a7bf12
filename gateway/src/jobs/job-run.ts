/**
 * One job, driven by the coordinator: snapshot the parent, fork clones over
 * the live hosts by free guest slots, gather results from the results stream,
 * retry failed clones, reduce, release, finish. Everything it knows is in the
 * job's KV record and the results stream, so a coordinator that takes over
 * (or restarts) resumes a job where it stood.
 *
 *   resume ─► step ─► step ─► … every tickMs, or at once when a result, failure or loss wakes it
 *            (parent snapshot → clone forks → all done → reduce → release → done)
 *
 * Its parts: clone-attempts.ts, clone-dispatch.ts, job-snapshot.ts, job-forks.ts, job-reduce.ts,
 * job-record-writer.ts, job-event-writer.ts, and for a task job its task server (job-tasks.ts);
 * where things go is planning/job-hosts.ts's.
 */
import {
  framesBesideKept, isBrokerFailure, parseTraceparent, ResultsStream, TERMINAL_JOB_STATES, toWireError,
  type FunctionRecord, type HostRecord, type JobEvent, type JobEventKind, type JobSpec, type Logger, type StoredJob, type WireError,
} from '@flurry/core';
import { jetstream } from '@nats-io/jetstream';
import type { FleetView } from '../fleet-view.js';
import { coldReduceHost, notResting, slotsLeft } from '../planning/job-hosts.js';
import { CloneAttempts, type AttemptsOwner } from './clone-attempts.js';
import { CloneDispatch, type DispatchOwner } from './clone-dispatch.js';
import { JobEventWriter, recordStored } from './job-event-writer.js';
import { isColdBoot, outputCount, storeLargeInputs, type JobForkFacts } from './job-forks.js';
import { JobRecordWriter } from './job-record-writer.js';
import { reduceOn } from './job-reduce.js';
import { HostAway } from '../host-held-work.js';
import { taskCloneRoom } from './machine-cores.js';
import { JobSnapshot, type ParentHostMemory, type SnapshotOwner } from './job-snapshot.js';
import type { JobStore } from './job-store.js';
import { JobTasks } from './job-tasks.js';

/** How often a run reads the streams for results its subscriptions missed (a safety net: outages are caught at once). */
const READ_STORED_MS = 10_000;
/**
 * How long a job whose clones were all heard done waits for their results to
 * be in the results stream: longer than a stream leader's election on a nats
 * cluster plus a host's publish timeout and retry.
 */
const RESULTS_STORED_WAIT_MS = 20_000;

export interface JobRunDeps {
  store: JobStore;
  fleet: FleetView;
  log: Logger;
  /** Clones each host runs for all jobs of this coordinator now. */
  inFlight: Map<string, number>;
  /** Hosts whose last fork request failed, and until when to skip them. */
  hostBackoff: Map<string, number>;
  parentHosts: ParentHostMemory;
  snapshotTimeoutMs: number;
  /** Tick period. */
  tickMs: number;
  getFunction(tenant: string, name: string): Promise<FunctionRecord>;
}

export class JobRun implements AttemptsOwner, SnapshotOwner, DispatchOwner {
  private spec!: JobSpec;
  private readonly attempts: CloneAttempts;
  private readonly snapshot: JobSnapshot;
  private readonly dispatch: CloneDispatch;
  private readonly writer: JobRecordWriter;
  /** A task job's task server. */
  private tasks?: JobTasks;
  /** Object names of clone inputs too large to send in a fork request. */
  private inputObjects = new Map<number, string>();
  private stopped = false;
  private wakeUp?: () => void;
  /** Writes this run's events in order (emit). */
  private events?: JobEventWriter;
  /** Broker outages this run has caught up with (afterOutage), and when it last read the streams. */
  private outagesSeen: number;
  private lastRead = Date.now();
  private finishing = false;
  readonly finished: Promise<void>;
  private resolveFinished!: () => void;

  constructor(
    private readonly deps: JobRunDeps,
    readonly stored: StoredJob,
    /** Made by this coordinator's gateway just now: no attempt was ever sent, so the streams hold nothing of it to read. */
    private readonly fresh = false,
  ) {
    this.finished = new Promise((r) => (this.resolveFinished = r));
    this.outagesSeen = deps.store.fabric.link.outages;
    this.attempts = new CloneAttempts(this, deps.inFlight);
    // A job made just now was written by its creation: the run's first changes (the snapshot, the forks) go in its next write.
    this.writer = new JobRecordWriter(deps.store, stored, deps.log, () => this.stopped, fresh ? Date.now() : 0);
    const { nc, link } = deps.store.fabric;
    this.snapshot = new JobSnapshot(this, () => this.spec, { ...deps, nc, link });
    this.dispatch = new CloneDispatch(this, this.attempts, this.snapshot, { ...deps, nc, link });
  }

  get record() {
    return this.stored.record;
  }

  get log(): Logger {
    return this.deps.log;
  }

  get store(): JobStore {
    return this.deps.store;
  }

  get retries(): number {
    return this.spec.retries;
  }

  private get nc() {
    return this.deps.store.fabric.nc;
  }

  private get link() {
    return this.deps.store.fabric.link;
  }

  over(): boolean {
    return this.stopped || this.terminal();
  }

  changed(): void {
    this.writer.changed();
  }

  progressed(): void {
    this.writer.progressed();
  }

  wake(): void {
    this.wakeUp?.();
  }

  persistNow(): Promise<void> {
    return this.writer.now();
  }

  /** Stops driving the job (the lease was lost, or the gateway stops); nothing is changed. */
  stop(): void {
    this.stopped = true;
    this.tasks?.close();
    this.attempts.close();
    this.attempts.forgetAll();
    this.wake();
  }

  async run(): Promise<void> {
    try {
      let resumed = false;
      while (!this.over()) {
        const outagesBefore = this.link.outages;
        try {
          if (!resumed) {
            await this.resume();
            resumed = true;
          }
          if (!this.over()) await this.step(); // right after resume too: a new job waits for no tick
        } catch (err) {
          // The broker went away in the middle of a step: try again once it is back, never fail the job for it.
          if (this.link.connected && this.link.outages === outagesBefore && !isBrokerFailure(err)) throw err;
          this.log.warn({ jobId: this.record.id, err: (err as Error).message }, `job ${resumed ? 'step' : 'resume'} interrupted by a broker outage; it runs again`);
        }
        this.writer.soon();
        if (this.over()) break;
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, this.deps.tickMs);
          this.wakeUp = () => {
            clearTimeout(t);
            resolve();
          };
        });
        this.wakeUp = undefined;
      }
    } catch (err) {
      if (!this.over()) {
        this.log.error({ jobId: this.record.id, err: (err as Error).message }, 'job failed unexpectedly');
        await this.fail(toWireError(err));
      }
    } finally {
      this.tasks?.close(!this.stopped);
      this.attempts.close();
      this.attempts.forgetAll();
      await this.writer.last();
      this.resolveFinished();
    }
  }

  private terminal(): boolean {
    return TERMINAL_JOB_STATES.includes(this.record.state);
  }

  private forkFacts(): JobForkFacts {
    return { record: this.record, spec: this.spec, descriptor: this.snapshot.descriptor!, inputObjects: this.inputObjects, trace: parseTraceparent(this.stored.traceparent) };
  }

  /** Reads what the store knows: the spec, results already kept, clones that were running. */
  private async resume(): Promise<void> {
    const { store } = this.deps;
    this.spec = await store.spec(this.stored);
    if (this.spec.tasks) this.tasks ??= JobTasks.serving(this, this.attempts, this.spec, this.nc);
    // Once, even when a broker outage makes the rest of resume run again.
    await this.attempts.listen(this.nc);
    // Inputs too large for a fork message go through the object store, once per job (again on resume: same bytes).
    this.inputObjects = await storeLargeInputs(store, this.record, this.spec);
    if (!this.fresh) await this.attempts.resume();
    // After the results kept meanwhile are counted: hosts of clones still to finish may have the snapshot's pages.
    await this.snapshot.resume();
    this.lastRead = Date.now();
    this.changed();
    if (this.stored.cancelRequested && !this.terminal()) await this.cancel();
  }

  private async readStored(): Promise<void> {
    this.lastRead = Date.now();
    await this.attempts.readStored();
  }

  /**
   * The broker was away: nothing could be judged meanwhile (no heartbeat, no
   * result could reach this run), so running clones get the outage's time
   * back and what the hosts stored meanwhile is read from the streams.
   */
  private async afterOutage(): Promise<void> {
    const link = this.link;
    this.outagesSeen = link.outages;
    const outageMs = Math.max(0, link.lastUpAt - link.lastDownAt);
    this.attempts.extendDeadlines(outageMs);
    this.log.info({ jobId: this.record.id, outageMs, running: this.attempts.runningCount }, 'broker back; reading results stored meanwhile');
    await this.readStored();
  }

  private async step(): Promise<void> {
    const link = this.link;
    if (!link.connected) return;
    if (link.outages !== this.outagesSeen) await this.afterOutage();
    else if (Date.now() - this.lastRead > READ_STORED_MS) await this.readStored();
    const live = this.liveHosts();
    const liveIds = new Set(live.map((h) => h.id));
    // A lost parent: its snapshot is gone; clones that need its pages cannot finish.
    if (this.record.snapshotId && this.record.parentHost && this.snapshot.parentLost(liveIds)) {
      this.log.warn({ jobId: this.record.id, hostId: this.record.parentHost, snapshotId: this.record.snapshotId }, 'parent host lost; snapshotting again');
      for (const [index, r] of this.attempts.runningNow()) this.attempts.lose(index, r, 'parent host lost');
      this.snapshot.dropLost(liveIds);
    }
    // Clones on hosts that stopped heartbeating go elsewhere; clones past their deadline failed.
    this.attempts.judgeRunning(liveIds, (host) => this.deps.fleet.incarnation(host), this.spec.timeoutMs);
    const details = this.record.clonesDetail;
    const anyFailed = details.some((c) => c.state === 'failed');
    if (this.tasks ? this.tasks.settled || anyFailed : details.every((c) => c.state === 'done' || c.state === 'failed')) {
      if (this.finishing) return;
      this.finishing = true;
      try {
        if (this.tasks?.failure()) await this.fail(this.tasks.failure()!);
        else if (anyFailed) await this.failWithClones();
        else await this.complete();
      } catch (err) {
        // Interrupted (a broker outage): the next step finishes it.
        this.finishing = false;
        throw err;
      }
      return;
    }
    if (!this.snapshot.descriptor) {
      await this.snapshot.make(live, this.freeSlots);
      if (!this.snapshot.descriptor) return;
    } else if (this.record.state === 'queued') {
      this.record.startedAt ??= Date.now();
      this.setState('running');
    }
    // A task job's clones fill the free slots and the machines' cores at most: more would only time-slice them.
    if (this.tasks && !this.tasks.wantsClones) return;
    const usable = notResting(live, this.deps.hostBackoff, Date.now());
    this.dispatch.dispatch(this.forkFacts(), usable, this.tasks ? taskCloneRoom(live, this.freeSlots, this.deps.inFlight, this.snapshot.hasPages) : this.freeSlots);
  }

  private liveHosts(): HostRecord[] {
    return this.deps.fleet.live().filter((h) => !h.draining);
  }

  private freeSlots = (h: HostRecord): number => slotsLeft(h, this.deps.inFlight);

  /**
   * All clones done: reduce when asked, done, then release the snapshot everywhere. The reduce runs from the
   * outputs heard while the check that every result is in the results stream (a stream info) is made: the
   * reduce's output counts, and the job is done, only once the check has passed.
   */
  private async complete(): Promise<void> {
    const { tenant, id } = this.record;
    const checked = this.deps.store.unkeptResults(tenant, id, outputCount(this.record), RESULTS_STORED_WAIT_MS);
    // A task job's clones still running (backups of tasks done meanwhile) are stopped.
    const stopClones = this.tasks?.endRunning() ?? false;
    const reducing = this.spec.reduce ? this.reduce(checked) : undefined;
    // Awaited below; a broker outage that fails the check first leaves it to end on its own.
    reducing?.catch(() => undefined);
    const unkept = await checked;
    if (unkept.missing.length > 0) {
      // The reduce ends without a word (it waits for the check before anything it could not undo).
      await reducing;
      if (this.over()) return;
      if (unkept.full) {
        const which = `${unkept.missing.slice(0, 8).join(', ')}${unkept.missing.length > 8 ? ', …' : ''}`;
        await this.fail({ code: 'storage_full', message: `the results of clones ${which} were not kept: the results stream ${ResultsStream} is full (its limit is FLURRY_STORE_MAX_BYTES)` });
        return;
      }
      // Heard done, but the result never reached the stream (its host died before its publish was
      // stored, or the stream's leader was lost first): run again, as clones lost to the platform.
      const why = `its result was heard but not stored in ${ResultsStream} within ${RESULTS_STORED_WAIT_MS} ms`;
      if (this.tasks) this.tasks.rerun(unkept.missing);
      else for (const index of unkept.missing) {
        const host = this.record.clonesDetail[index]?.host;
        this.log.warn({ jobId: id, index, hostId: host }, `clone ${why}; forking it again`);
        this.attempts.platformLoss(index, host, why);
      }
      if (this.record.state === 'reducing') this.setState('running');
      this.finishing = false;
      return;
    }
    if (reducing) {
      const reduced = await reducing;
      if (!reduced) return;
      await this.deps.store.putBlob(`${tenant}/${id}/reduced`, reduced);
      this.emit('reduced', { bytes: reduced.length });
    }
    await this.snapshot.descriptorStored;
    if (this.over()) return;
    this.record.finishedAt = Date.now();
    this.setState('done');
    await this.persistNow();
    this.emit('done', { job: this.record });
    // After `done`: the result is stored and nothing the job's client waits for depends on the release.
    await this.snapshot.release(stopClones);
  }

  /**
   * Reduces the clones' outputs (again after a lost parent, up to the job's retries); undefined when the job
   * ended meanwhile, failed, or `checked` found results missing from the stream. It reads the stream, and
   * fails the job, only once `checked` found every result there; outputs all heard before go at once.
   */
  private async reduce(checked: Promise<{ missing: number[] }>): Promise<Uint8Array | undefined> {
    const { id } = this.record;
    const stored = async () => (await checked).missing.length === 0;
    const held = this.tasks?.heldOutputs();
    if (!held && !(await stored())) return undefined;
    this.record.state = 'reducing';
    // Most reduces end in a few ms, and `done` is written then: `reducing` alone only when it lasts.
    this.writer.writeIfLasting();
    const outputs = held ?? (this.tasks ? await this.tasks.outputsInOrder() : await this.deps.store.outputsInOrder(this.record.tenant, id, outputCount(this.record)));
    let reduced: Uint8Array | undefined;
    let lastError: WireError | undefined;
    const cold = isColdBoot(this.spec);
    // Outputs the reduce's host kept from its own clones are named, not sent, until that host says it lacks one.
    let useKept = held !== undefined;
    for (let attempt = 0; attempt <= this.spec.retries && !reduced; attempt++) {
      if (!cold && (!this.record.snapshotId || this.snapshot.parentLost(new Set(this.liveHosts().map((h) => h.id))))) {
        this.record.snapshotId = undefined;
        await this.snapshot.make(this.liveHosts(), this.freeSlots);
        if (this.terminal()) return undefined;
        if (!this.record.snapshotId) continue;
        this.setState('reducing');
      }
      const host = cold ? coldReduceHost(notResting(this.liveHosts(), this.deps.hostBackoff, Date.now()), this.freeSlots)?.id : this.record.parentHost;
      if (!host) {
        lastError = { code: 'unavailable', message: 'no live host to reduce on' };
        continue;
      }
      const outagesBefore = this.link.outages;
      const kept = useKept && this.tasks ? this.tasks.keptRunsOn(host) : [];
      try {
        reduced = await reduceOn({ nc: this.nc, store: this.deps.store, link: this.link, fleet: this.deps.fleet }, this.forkFacts(), host, framesBesideKept(outputs, kept), kept);
      } catch (err) {
        // Cut off by a broker outage: not the reduce's fault; the next step reduces again.
        if (!this.link.connected || this.link.outages !== outagesBefore) throw err;
        lastError = toWireError(err);
        this.log.warn({ jobId: id, err: lastError.message, keptRuns: kept.length }, 'reduce failed');
        if (kept.length > 0 && lastError.code === 'not_found') {
          // The host lacks outputs it kept (restarted, or let them go): every output goes, and that is no failed attempt.
          useKept = false;
          attempt--;
        } else if (err instanceof HostAway && err.reason === 'lost its broker connection') {
          // Its node of the cluster was lost with the request or the result: not the reduce's fault either.
          attempt--;
        }
      }
      if (this.stopped) return undefined;
    }
    if (!(await stored()) || this.terminal()) return undefined;
    if (!reduced) {
      await this.fail({ code: lastError?.code ?? 'internal', message: `reduce failed: ${lastError?.message}` });
      return undefined;
    }
    return reduced;
  }

  private async failWithClones(): Promise<void> {
    const failed = this.record.clonesDetail.filter((c) => c.state === 'failed');
    this.record.errors = failed.map((c) => ({ index: c.index, code: c.error?.code ?? 'internal', message: c.error?.message ?? 'failed' }));
    const first = failed[0].error ?? { code: 'internal' as const, message: 'failed' };
    await this.fail({ code: first.code, message: `${failed.length} of ${this.record.clones} clones failed; clone ${failed[0].index}: ${first.message}` });
  }

  async fail(error: WireError): Promise<void> {
    if (this.terminal()) return;
    this.record.error = error;
    this.record.finishedAt = Date.now();
    this.setState('failed');
    for (const [index] of this.attempts.runningNow()) this.attempts.end(index);
    await this.persistNow();
    this.emit('failed', { error, errors: this.record.errors, job: this.record });
    await this.snapshot.release(true);
  }

  /** Cancels: stops the clones on every host, releases the snapshot, records the state. */
  async cancel(): Promise<void> {
    if (this.terminal()) return;
    this.stored.cancelRequested = true;
    this.record.finishedAt = Date.now();
    this.setState('cancelled');
    for (const [index] of this.attempts.runningNow()) this.attempts.end(index);
    for (const c of this.record.clonesDetail) if (c.state === 'running') c.state = 'pending';
    await this.persistNow();
    this.emit('cancelled', { job: this.record });
    await this.snapshot.release(true);
    this.wake();
  }

  setState(state: StoredJob['record']['state']): void {
    this.record.state = state;
    this.changed();
  }

  /**
   * Stores an event in the job events stream, after the ones emitted before it (job-event-writer.ts);
   * never waits, never throws. `eventSeq` follows what is stored, so the record written next
   * tells the SSE route which events it reflects.
   */
  emit(kind: JobEventKind, fields: Record<string, unknown>): void {
    const { tenant, id } = this.record;
    const event: JobEvent = { kind, at: Date.now(), tenant, jobId: id, ...fields };
    this.events ??= new JobEventWriter(jetstream(this.nc), () => this.nc.isClosed(), this.link, this.log, (seq, stored) => {
      if (recordStored(this.stored, seq, stored)) this.changed();
    });
    this.events.append(event);
  }
}
