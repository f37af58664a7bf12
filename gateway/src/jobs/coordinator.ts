/**
 * The job coordinator: runs on one gateway replica at a time, the one that
 * holds the lease (lease.ts) on the `coordinator` key of the
 * `flurry_job_lease` bucket. The holder watches the jobs bucket and drives every job that is not
 * finished (new ones and, after a takeover or restart, the ones it inherits).
 */
import type { Subscription } from '@nats-io/transport-node';
import {
  decodeChecked, FlurryError, followKv, jobKey, JobSubjects, newId, serve, TERMINAL_JOB_STATES,
  type FunctionRecord, type JobControlReply, type JobControlRequest, type Logger, type StoredJob,
} from '@flurry/core';
import type { FleetView } from '../fleet-view.js';
import type { JobStore } from './job-store.js';
import { JobRun } from './job-run.js';
import { ParentHostMemory } from './job-snapshot.js';
import { Lease } from '../lease.js';
import type { CallbackDeliverer } from '../callbacks/callback-deliverer.js';
import type { GatewayMetrics } from '../metrics/gateway-metrics.js';

const LEASE_KEY = 'coordinator';

export interface CoordinatorOptions {
  leaseTtlMs: number;
  snapshotTimeoutMs: number;
  tickMs?: number;
  /** Delivers the callbacks of jobs that end (the holder's, like the jobs). */
  callbacks: CallbackDeliverer;
  getFunction(tenant: string, name: string): Promise<FunctionRecord>;
  /** Counts the jobs this coordinator drives to their end. */
  metrics?: GatewayMetrics;
}

export class JobCoordinator {
  readonly id = newId('coord');
  private readonly lease: Lease;
  private readonly runs = new Map<string, JobRun>();
  private readonly inFlight = new Map<string, number>();
  private readonly hostBackoff = new Map<string, number>();
  private readonly parentHosts = new ParentHostMemory();
  private control?: Subscription;
  private watch?: { stop(): void };

  constructor(
    private readonly store: JobStore,
    private readonly fleet: FleetView,
    private readonly log: Logger,
    private readonly opts: CoordinatorOptions,
  ) {
    this.lease = new Lease(store.lease, LEASE_KEY, opts.leaseTtlMs, log, { onGain: () => this.lead(), onLose: () => this.stepDown() }, store.fabric.link);
  }

  get leader(): boolean {
    return this.lease.held;
  }

  start(): void {
    this.lease.start();
  }

  /** Steps down and hands over at once instead of letting the lease run out. */
  async stop(): Promise<void> {
    await this.lease.stop();
  }

  private async lead(): Promise<void> {
    const nc = this.store.fabric.nc;
    this.control = serve(nc, 'jobControl', JobSubjects.control, (req) => this.onControl(req), { log: this.log });
    // A job this gateway just made was never driven by anyone: nothing of it can be stored yet.
    this.store.onCreated = (stored) => {
      const key = jobKey(stored.record.tenant, stored.record.id);
      if (this.leader && !this.runs.has(key)) this.drive(stored, true);
    };
    this.watch = await followKv(this.store.jobs, {}, async (e) => {
      if (!this.leader) return;
      if (e.operation !== 'PUT' || e.value.length === 0) return;
      // Until its run ends a job this coordinator drives, the record is the run's own write: nothing in it is news here,
      // and checking a whole StoredJob at every write was a good part of this thread's work during a job.
      const driving = this.runs.get(e.key);
      if (driving && !TERMINAL_JOB_STATES.includes(driving.record.state)) return;
      const stored = decodeChecked('StoredJob', e.value, e.key);
      if (!stored) return;
      if (TERMINAL_JOB_STATES.includes(stored.record.state)) {
        // An ended job's callback goes out once its run has written its last record; a new holder finds pending ones here.
        this.opts.callbacks.offer(e.key, stored, this.runs.get(e.key)?.finished);
        return;
      }
      if (this.runs.has(e.key)) return;
      // The watch may deliver an older revision after a driver finished the job: go by the latest.
      const latest = await this.store.get(stored.record.tenant, stored.record.id).catch(() => undefined);
      if (!latest || TERMINAL_JOB_STATES.includes(latest.stored.record.state) || this.runs.has(e.key) || !this.leader) return;
      this.drive(latest.stored);
    }, this.log, 'jobs', () => this.store.fabric.nc.isClosed(), this.store.fabric.link);
  }

  /** `fresh`: a job this coordinator's gateway has just made (JobStore.onCreated), with nothing stored for it. */
  private drive(stored: StoredJob, fresh = false): JobRun {
    const key = jobKey(stored.record.tenant, stored.record.id);
    const run = new JobRun({
      store: this.store, fleet: this.fleet, log: this.log, inFlight: this.inFlight, hostBackoff: this.hostBackoff, parentHosts: this.parentHosts,
      snapshotTimeoutMs: this.opts.snapshotTimeoutMs, tickMs: this.opts.tickMs ?? 250, getFunction: this.opts.getFunction,
    }, stored, fresh);
    this.runs.set(key, run);
    this.log.info({ jobId: stored.record.id, state: stored.record.state }, 'driving job');
    void run.run().finally(() => {
      if (TERMINAL_JOB_STATES.includes(run.record.state)) this.opts.metrics?.jobEnded(run.record);
      if (this.runs.get(key) === run) this.runs.delete(key);
    });
    return run;
  }

  private stepDown(): void {
    this.store.onCreated = undefined;
    this.control?.unsubscribe();
    this.control = undefined;
    this.watch?.stop();
    this.watch = undefined;
    this.opts.callbacks.stop();
    for (const run of this.runs.values()) run.stop();
    this.runs.clear();
    this.inFlight.clear();
  }

  /** A cancel, from whichever replica got the HTTP request; what it throws is answered as a refusal (serve). */
  private async onControl(req: JobControlRequest): Promise<JobControlReply> {
    const key = jobKey(req.tenant, req.jobId);
    let run = this.runs.get(key);
    if (!run) {
      const got = await this.store.get(req.tenant, req.jobId);
      if (!got) throw new FlurryError('not_found', `no job "${req.jobId}"`);
      if (TERMINAL_JOB_STATES.includes(got.stored.record.state)) return { ok: true, job: got.stored.record };
      run = this.drive(got.stored);
    }
    await run.cancel();
    return { ok: true, job: run.record };
  }
}
