/**
 * The running-jobs quota: how many unfinished jobs, and clones of them, each
 * tenant has, counted from the job records in the jobs bucket (every
 * gateway follows the bucket, so the count holds across gateways). A job
 * counts from its record's creation until its record reaches a terminal
 * state; all of its clones count until then.
 *
 *   JobTally  — the counts, updated record by record (no I/O: unit-tested)
 *   RunningJobs — a JobTally kept from core's followKv of the bucket; `admit` at submit
 *
 * Two gateways admitting a tenant's jobs in the same few milliseconds can
 * both see room for one: the quota can be passed by one job per gateway.
 */
import type { KV } from '@nats-io/kv';
import { decodeChecked, FlurryError, followKv, TERMINAL_JOB_STATES, type Fabric, type JobRecord, type KvFollower, type Logger } from '@flurry/core';

export interface RunningJobsQuota {
  /** Unfinished jobs a tenant may have; 0: no limit. */
  runningJobs: number;
  /** Clones of a tenant's unfinished jobs; 0: no limit. */
  runningClones: number;
}

/** A refused job waits this long before trying again: jobs run for seconds at least. */
const RETRY_AFTER_S = 5;
/** How long `admit` waits for the first complete count after start. */
const CATCH_UP_MS = 5000;

/** Unfinished jobs and their clones, per tenant. */
export class JobTally {
  private readonly jobs = new Map<string, { tenant: string; clones: number }>();
  private readonly tenants = new Map<string, { jobs: number; clones: number }>();

  /** The latest record of the job at `key`, or undefined when it was deleted. */
  apply(key: string, record: Pick<JobRecord, 'tenant' | 'clones' | 'state'> | undefined): void {
    const was = this.jobs.get(key);
    const running = record !== undefined && !TERMINAL_JOB_STATES.includes(record.state);
    if (was && !running) {
      this.jobs.delete(key);
      this.add(was.tenant, -1, -was.clones);
    } else if (!was && running) {
      this.jobs.set(key, { tenant: record.tenant, clones: record.clones });
      this.add(record.tenant, 1, record.clones);
    }
  }

  of(tenant: string): { jobs: number; clones: number } {
    return this.tenants.get(tenant) ?? { jobs: 0, clones: 0 };
  }

  /** Throws `rate_limited` when one more job of `clones` would take `tenant` past the quota. */
  admit(tenant: string, clones: number, quota: RunningJobsQuota): void {
    const now = this.of(tenant);
    if (quota.runningJobs > 0 && now.jobs + 1 > quota.runningJobs) {
      throw new FlurryError('rate_limited', `tenant "${tenant}" has ${now.jobs} jobs running, its limit (FLURRY_QUOTA_RUNNING_JOBS); submit again when one has finished`, { retryAfterSeconds: RETRY_AFTER_S });
    }
    if (quota.runningClones > 0 && now.clones + clones > quota.runningClones) {
      throw new FlurryError('rate_limited', `tenant "${tenant}" has ${now.clones} clones in running jobs; ${clones} more would pass its limit of ${quota.runningClones} (FLURRY_QUOTA_RUNNING_CLONES)`, { retryAfterSeconds: RETRY_AFTER_S });
    }
  }

  private add(tenant: string, jobs: number, clones: number): void {
    const t = this.of(tenant);
    const next = { jobs: t.jobs + jobs, clones: t.clones + clones };
    if (next.jobs <= 0) this.tenants.delete(tenant);
    else this.tenants.set(tenant, next);
  }
}

export class RunningJobs {
  private readonly tally = new JobTally();
  private caughtUp = false;
  private readonly waiting = new Set<() => void>();
  private watch?: KvFollower;

  constructor(
    private readonly jobs: KV,
    private readonly fabric: Pick<Fabric, 'nc' | 'link'>,
    private readonly quota: RunningJobsQuota,
    private readonly log: Logger,
  ) {}

  /**
   * Follows the jobs bucket from now on (without waiting for the first count). A watch opened again after a
   * broker hiccup goes on from where it left off, so the counts are kept meanwhile.
   */
  async start(): Promise<void> {
    if (this.quota.runningJobs === 0 && this.quota.runningClones === 0) return;
    const empty = (await this.jobs.status()).values === 0;
    if (empty) this.markCaughtUp();
    this.watch = await followKv(this.jobs, {}, (e) => {
      // A record of another shape counts as no job (checked-decode.ts) rather than poisoning the counts.
      const record = e.operation === 'PUT' && e.value.length > 0 ? decodeChecked('StoredJob', e.value, e.key)?.record : undefined;
      this.tally.apply(e.key, record);
      // The last of the values there were when the watch began (and every later one) has nothing pending.
      if (!this.caughtUp && e.delta === 0) this.markCaughtUp();
    }, this.log, 'jobs for quotas', () => this.fabric.nc.isClosed(), this.fabric.link);
  }

  stop(): void {
    this.watch?.stop();
  }

  /** Refuses (429 `rate_limited`) a job that would take `tenant` past its running jobs or clones. */
  async admit(tenant: string, clones: number): Promise<void> {
    if (this.quota.runningJobs === 0 && this.quota.runningClones === 0) return;
    if (!this.caughtUp) await this.whenCaughtUp();
    this.tally.admit(tenant, clones, this.quota);
  }

  /** A job this gateway just stored: counted now, before the watch brings its record. */
  created(key: string, record: JobRecord): void {
    this.tally.apply(key, record);
  }

  private whenCaughtUp(): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(done);
        reject(new FlurryError('unavailable', 'the running jobs of this tenant cannot be counted yet (the jobs bucket is not readable); retry', { retryAfterSeconds: 1 }));
      }, CATCH_UP_MS);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      this.waiting.add(done);
    });
  }

  private markCaughtUp(): void {
    this.caughtUp = true;
    for (const done of this.waiting) done();
    this.waiting.clear();
  }
}
