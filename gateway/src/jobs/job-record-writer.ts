/**
 * Writing one job's record to the jobs bucket as its run changes it: soon
 * after a change (at most every PERSIST_EVERY_MS, the creation counting as a
 * write), progress alone (a task job's counts) at most every
 * PROGRESS_EVERY_MS, a state that may last only a moment (`reducing`) only
 * once it has lasted PERSIST_EVERY_MS, the end at once, and the run's last
 * record until it is stored. Each write is heard and checked by every watcher
 * of the jobs bucket: a write that a later one follows within moments tells
 * nobody anything. Writes go out in order; a failed one leaves the record to
 * write again.
 */
import { untilStored, type Logger, type StoredJob } from '@flurry/core';
import type { JobStore } from './job-store.js';

/** A run's changes are written at most this often, unless written at once. */
const PERSIST_EVERY_MS = 250;
/**
 * A task job's progress (its task counts, its `progress` events) is reported at most this often: each
 * record written is heard and checked by every watcher of the jobs bucket, each event stored and sent,
 * and at 4 a second they were a good part of the fleet's messages during a short job.
 */
export const PROGRESS_EVERY_MS = 1000;

export class JobRecordWriter {
  private dirty = false;
  /** Only progress changed since the last write. */
  private progressDirty = false;
  private writing: Promise<void> = Promise.resolve();
  /** The write of a state that may not last (writeIfLasting), until it is due. */
  private lasting?: ReturnType<typeof setTimeout>;

  constructor(
    private readonly store: JobStore,
    readonly stored: StoredJob,
    private readonly log: Logger,
    /** The run stopped (lease lost): it writes nothing more. */
    private readonly stopped: () => boolean,
    /** When the record was last written as it stands: a job made just now was written by its creation. */
    private lastWrite = 0,
  ) {}

  /** The record changed: the next write takes it. */
  changed(): void {
    this.dirty = true;
  }

  /** Only the job's progress changed: a later write takes it. */
  progressed(): void {
    this.progressDirty = true;
  }

  /** Writes the record when it changed and the last write is PERSIST_EVERY_MS old (PROGRESS_EVERY_MS for progress alone). */
  soon(): void {
    const since = Date.now() - this.lastWrite;
    if ((this.dirty && since > PERSIST_EVERY_MS) || (this.progressDirty && since > PROGRESS_EVERY_MS)) void this.now();
  }

  /**
   * The record changed into a state that may end within moments (a reduce of
   * a few ms): written PERSIST_EVERY_MS from now unless a write takes the
   * change first, so a state that ends sooner is never written on its own.
   */
  writeIfLasting(): void {
    this.dirty = true;
    clearTimeout(this.lasting);
    this.lasting = setTimeout(() => {
      if (this.dirty) void this.now();
    }, PERSIST_EVERY_MS);
  }

  /** Writes the record now (after the writes before it), with its clone counts. */
  now(): Promise<void> {
    clearTimeout(this.lasting);
    if (this.stopped()) return this.writing;
    this.dirty = false;
    this.progressDirty = false;
    this.lastWrite = Date.now();
    const r = this.stored.record;
    r.updatedAt = Date.now();
    r.counts = { done: 0, failed: 0, running: 0, pending: 0 };
    for (const c of r.clonesDetail) r.counts[c.state]++;
    const value = structuredClone(this.stored);
    this.writing = this.writing.then(() => this.store.put(value)).catch((err: unknown) => {
      this.dirty = true;
      this.log.warn({ jobId: r.id, err: (err as Error).message }, 'job record write failed');
    });
    return this.writing;
  }

  /**
   * The run ends: waits for the writes under way and, when the last record
   * (the job ended) was not stored (its stream was electing a leader), writes
   * it again until stored, as nothing else would (no later step writes it, and
   * the stored record says the job runs).
   */
  async last(): Promise<void> {
    await this.writing;
    if (!(this.dirty || this.progressDirty) || this.stopped()) return;
    await untilStored(this.store.fabric.link, async () => {
      await this.now();
      if (this.dirty || this.progressDirty) throw new Error('the job record was not stored');
    }, { stopped: this.stopped }).catch((err: unknown) => {
      const { id, state } = this.stored.record;
      this.log.error({ jobId: id, state, err: (err as Error).message }, 'the job\'s last record could not be stored');
    });
  }
}
