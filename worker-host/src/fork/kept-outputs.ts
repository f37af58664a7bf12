/**
 * Task outputs this host keeps for a job's reduce on it (docs/jobs.md,
 * "Reduce input, as the results come"): the runs of task outputs its own
 * clones published, when the fork request asked for it
 * (`ForkRequest.tasks.keepOutputs`: this host is the parent's, where the
 * reduce runs). The reduce request then names them (`ForkRequest.keptOutputs`)
 * instead of carrying their bytes back to the host that made them.
 *
 * A job's runs go with its release (the job's hold on the snapshot), after
 * `idleMs` without a new run or a reduce, or, oldest job first, when all kept
 * runs pass `maxBytes`. Whatever is gone, the reduce fails with `not_found`
 * and the coordinator sends every output instead: keeping is never needed
 * for a correct result, only to spare the broker and the gateway the bytes.
 */
import { FlurryError, mergeReduceInput, type KeptRun } from '@flurry/core';

/** A job's kept runs, by `<requestId>/<first>+<count>`. */
interface JobRuns {
  runs: Map<string, Uint8Array>;
  bytes: number;
  lastUsed: number;
}

const runKey = (r: KeptRun) => `${r.requestId}/${r.first}+${r.count}`;

export class KeptOutputs {
  /** By `<tenant>/<jobId>`, in the order of their last use (a Map keeps insertion order). */
  private readonly jobs = new Map<string, JobRuns>();
  private bytes = 0;

  constructor(
    /** At most this many bytes of kept runs on the host; the least recently used jobs' go first. */
    private readonly maxBytes: number,
    /** A job's runs go after this long without a new run or a reduce (its coordinator may never release it). */
    private readonly idleMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Keeps a run as its clone published it (the first of the same run: a clone run twice publishes the same tasks twice; the stream keeps the first). */
  keep(tenant: string, jobId: string, run: KeptRun, framed: Uint8Array): void {
    if (framed.length > this.maxBytes) return;
    const key = `${tenant}/${jobId}`;
    const job = this.touch(key) ?? { runs: new Map(), bytes: 0, lastUsed: this.now() };
    this.jobs.set(key, job);
    const k = runKey(run);
    if (job.runs.has(k)) return;
    job.runs.set(k, framed);
    job.bytes += framed.length;
    this.bytes += framed.length;
    for (const [other] of this.jobs) {
      if (this.bytes <= this.maxBytes) break;
      if (other !== key) this.dropKey(other);
    }
  }

  /**
   * The reduce input of `total` task outputs: the runs `kept` names from here, merged in task order with
   * `given`, the frames of every other task. Throws `not_found` for a run not kept here, `bad_request`
   * when the runs and frames do not add up (mergeReduceInput).
   */
  reduceInput(tenant: string, jobId: string, kept: readonly KeptRun[], given: Uint8Array, total: number): Uint8Array {
    const job = this.touch(`${tenant}/${jobId}`);
    const runs = kept.map((r) => {
      const framed = job?.runs.get(runKey(r));
      if (!framed) throw new FlurryError('not_found', `the outputs of tasks ${r.first}..${r.first + r.count - 1} of ${r.requestId} are not kept on this host`);
      return { ...r, framed };
    });
    return mergeReduceInput(total, runs, given);
  }

  /** Lets go of a job's runs (its release, or a cancel). */
  drop(tenant: string, jobId: string): void {
    this.dropKey(`${tenant}/${jobId}`);
  }

  private dropKey(key: string): void {
    const job = this.jobs.get(key);
    if (!job) return;
    this.jobs.delete(key);
    this.bytes -= job.bytes;
  }

  /** Lets go of the runs of jobs idle for `idleMs` (called now and then). */
  sweep(): void {
    const before = this.now() - this.idleMs;
    for (const [key, job] of this.jobs) if (job.lastUsed <= before) this.dropKey(key);
  }

  /** Bytes kept, for tests and the host's record of itself. */
  get keptBytes(): number {
    return this.bytes;
  }

  /** The job's runs, moved to the back of the use order. */
  private touch(key: string): JobRuns | undefined {
    const job = this.jobs.get(key);
    if (!job) return undefined;
    job.lastUsed = this.now();
    this.jobs.delete(key);
    this.jobs.set(key, job);
    return job;
  }
}
