/**
 * Where jobs live: records in the `flurry_jobs` KV bucket, idempotency keys in
 * `flurry_job_keys`, specs, descriptors and reduce outputs in the
 * `flurry_job_data` object store, clone results in the `FLURRY_RESULTS`
 * stream (one message per job and index: the first result wins; a task job's
 * are runs of tasks, `<first>-<last>`, and per task the first stored run that
 * holds it wins). Every
 * gateway replica opens the same store; only the coordinator writes records
 * after a job is created.
 */
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import type { ObjectStore } from '@nats-io/obj';
import {
  decodeChecked, decodeOrRefuse, encode, FailuresStream, FlurryError, isBrokerFailure, maxPayload, newId, JobBuckets, kvKeys, JobSubjects, jobKey, LARGE_JOB_DATA_BYTES, openKv, openObjects, openStreamOf, ResultsStream,
  taskRange, unframeOutputs,
  type CloneResult, type Fabric, type IdempotencyEntry, type JobRecord, type JobSpec, type StoredJob,
} from '@flurry/core';

/** Results read at once when a job's outputs are gathered. */
const RESULT_READS = 32;

/**
 * How long the results stream must stay full, with no more of a job's
 * results arriving, before the job fails storage_full instead of waiting
 * out its whole wait for results heard but not stored.
 */
const FULL_SETTLED_MS = 1_000;

/** The most bytes of specs this gateway keeps from their write to the driver's read (below, `spec`). */
const SPECS_KEPT_BYTES = 32 * 1024 * 1024;

export class JobStore {
  /**
   * Specs this gateway wrote, by object name, until its coordinator's driver reads one (or they pass
   * SPECS_KEPT_BYTES, the oldest first): a job's spec is read back right after its POST, on the way to
   * its first fork, and that read (an object store consumer, the chunks) was a good part of that way.
   * A spec's object is written once under a name of its own and never changed, so these bytes are the object's.
   */
  private readonly specsWritten = new Map<string, Uint8Array>();
  private specsWrittenBytes = 0;
  /**
   * Told of each job this gateway's POST made, right after its record is written (the coordinator, while
   * it leads): its driver starts from here instead of waiting for its watch of the jobs bucket to deliver
   * the record and reading the record back.
   */
  onCreated?: (stored: StoredJob) => void;

  private constructor(
    readonly fabric: Fabric,
    readonly jsm: JetStreamManager,
    readonly jobs: KV,
    readonly keys: KV,
    readonly lease: KV,
    readonly data: ObjectStore,
    readonly outputs: ObjectStore,
  ) {}

  static async open(fabric: Fabric, leaseTtlMs: number): Promise<JobStore> {
    const jsm = await jetstreamManager(fabric.nc);
    const jobs = await openKv(fabric, 'jobs');
    const keys = await openKv(fabric, 'jobKeys');
    const lease = await openKv(fabric, 'jobLease', { ttlMs: leaseTtlMs });
    const data = await openObjects(fabric, 'jobData');
    const outputs = await openObjects(fabric, 'jobOutputs');
    await openStreamOf(fabric, 'results');
    await openStreamOf(fabric, 'failures');
    await openStreamOf(fabric, 'jobEvents');
    return new JobStore(fabric, jsm, jobs, keys, lease, data, outputs);
  }

  async get(tenant: string, jobId: string): Promise<{ stored: StoredJob; revision: number } | undefined> {
    if (!/^[\w-]{1,64}$/.test(jobId)) return undefined;
    const e = await this.jobs.get(jobKey(tenant, jobId));
    if (!e || e.operation !== 'PUT' || e.value.length === 0) return undefined;
    return { stored: decodeOrRefuse('StoredJob', e.value, e.key, 'internal'), revision: e.revision };
  }

  async record(tenant: string, jobId: string): Promise<JobRecord> {
    const got = await this.get(tenant, jobId);
    if (!got) throw new FlurryError('not_found', `no job "${jobId}"`);
    return got.stored.record;
  }

  /**
   * Stores a new job: its spec, then its record (compare-and-set on the job
   * id). Returns the job as stored: this one, or the one another request with
   * the same id (a retry with the same Idempotency-Key) stored first. Each
   * attempt writes its spec under a name of its own, so a losing attempt can
   * never overwrite the winner's.
   */
  async create(stored: StoredJob, spec: JobSpec): Promise<{ stored: StoredJob; created: boolean }> {
    const { tenant, id } = stored.record;
    const specObject = `${tenant}/${id}/spec/${newId('spec')}`;
    const bytes = encode(spec);
    await this.putData(specObject, bytes);
    const mine: StoredJob = { ...stored, specObject };
    try {
      // Kept before the record exists: the coordinator's watch may see the record before this returns.
      this.keepSpec(specObject, bytes);
      await this.jobs.create(jobKey(tenant, id), encode(mine));
      this.onCreated?.(structuredClone(mine));
      return { stored: mine, created: true };
    } catch (err) {
      this.takeSpec(specObject);
      const theirs = await this.get(tenant, id);
      if (!theirs) throw err;
      await this.data.delete(specObject).catch(() => undefined);
      return { stored: theirs.stored, created: false };
    }
  }

  async put(stored: StoredJob): Promise<void> {
    await this.jobs.put(jobKey(stored.record.tenant, stored.record.id), encode(stored));
  }

  /** Compare-and-set: writes `stored` only if the record is still at `revision`; false when it changed meanwhile. */
  async update(stored: StoredJob, revision: number): Promise<boolean> {
    try {
      await this.jobs.update(jobKey(stored.record.tenant, stored.record.id), encode(stored), revision);
      return true;
    } catch (err) {
      if (isBrokerFailure(err)) throw err;
      return false;
    }
  }

  async spec(stored: StoredJob): Promise<JobSpec> {
    const { tenant, id } = stored.record;
    const written = stored.specObject === undefined ? undefined : this.takeSpec(stored.specObject);
    const bytes = written ?? await this.data.getBlob(stored.specObject ?? `${tenant}/${id}/spec`);
    if (!bytes) throw new FlurryError('internal', `job ${id} has lost its spec`);
    return decodeOrRefuse('JobSpec', bytes, `${tenant}/${id}/spec`, 'internal');
  }

  private keepSpec(name: string, bytes: Uint8Array): void {
    this.specsWritten.set(name, bytes);
    this.specsWrittenBytes += bytes.length;
    for (const [oldest, kept] of this.specsWritten) {
      if (this.specsWrittenBytes <= SPECS_KEPT_BYTES) break;
      this.specsWritten.delete(oldest);
      this.specsWrittenBytes -= kept.length;
    }
  }

  /** The spec's bytes this gateway wrote under `name`, if it still holds them; it holds them no longer. */
  private takeSpec(name: string): Uint8Array | undefined {
    const kept = this.specsWritten.get(name);
    if (!kept) return undefined;
    this.specsWritten.delete(name);
    this.specsWrittenBytes -= kept.length;
    return kept;
  }

  async putBlob(name: string, bytes: Uint8Array): Promise<void> {
    await this.putData(name, bytes);
  }

  /**
   * Writes an object in chunks as large as a message may be (less room for headers), not the client's
   * 128 KiB: each chunk is published and acknowledged before the next, and a blast job's 860 KB reduce
   * output, written between its reduce and `done`, took seven of those round trips where one does.
   */
  private async putData(name: string, bytes: Uint8Array): Promise<void> {
    const chunk = Math.max(128 * 1024, maxPayload(this.fabric.nc) - 64 * 1024);
    await this.data.putBlob({ name, options: { max_chunk_size: chunk } }, bytes);
  }

  getBlob(name: string): Promise<Uint8Array | null> {
    return this.data.getBlob(name);
  }

  /** Records an idempotency key; returns the entry already there when the key was used before. */
  async claimKey(tenant: string, keyHash: string, entry: IdempotencyEntry): Promise<IdempotencyEntry | undefined> {
    const k = `${tenant}.${keyHash}`;
    try {
      await this.keys.create(k, encode(entry));
      return undefined;
    } catch {
      const e = await this.keys.get(k);
      if (!e || e.operation !== 'PUT' || e.value.length === 0) throw new FlurryError('unavailable', 'idempotency key is being written; retry', { retryAfterSeconds: 1 });
      return decodeOrRefuse('IdempotencyEntry', e.value, k, 'internal');
    }
  }

  /** Indexes below `limit` whose result is in the stream (a task job's: every task of the runs it holds). */
  async finishedIndexes(tenant: string, jobId: string, limit: number): Promise<Set<number>> {
    const out = new Set<number>();
    for (const token of await this.resultTokens(tenant, jobId)) {
      const run = taskRange(token);
      if (!run) {
        const index = Number(token);
        if (Number.isInteger(index) && index < limit) out.add(index);
      } else for (let t = run.first; t <= run.last && t < limit; t++) out.add(t);
    }
    return out;
  }

  /** The last tokens of a job's subjects in the results stream: clone indexes, or a task job's `<first>-<last>`. */
  private async resultTokens(tenant: string, jobId: string): Promise<string[]> {
    const prefix = JobSubjects.results(tenant, jobId);
    const info = await this.jsm.streams.info(ResultsStream, { subjects_filter: `${prefix}.*` });
    return Object.keys(info.state.subjects ?? {}).map((subject) => subject.slice(prefix.length + 1));
  }

  /**
   * Indexes of a job whose result the results stream does not hold, and
   * whether the stream is full. A coordinator sees each result as it is
   * published, and a full stream refuses it after that: a job must not end
   * `done` with results nobody can read. A result published a moment ago may
   * not be stored yet, so the stream is asked again for up to `waitMs`: on a
   * cluster, a result heard as its stream's leader node was lost is stored
   * only when its host publishes it again to the next leader (seconds).
   */
  async unkeptResults(tenant: string, jobId: string, clones: number, waitMs: number): Promise<{ missing: number[]; full: boolean }> {
    const deadline = Date.now() + waitMs;
    let missing: number[] = [];
    /** Since when the stream has been full with the same results missing: waiting then only delays the failure. */
    let fullSince: number | undefined;
    for (let attempt = 0; ; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, 250));
      const kept = await this.finishedIndexes(tenant, jobId, clones);
      const before = missing.length;
      missing = [];
      for (let i = 0; i < clones; i++) if (!kept.has(i)) missing.push(i);
      if (missing.length === 0) return { missing, full: false };
      const full = await this.resultsFull();
      fullSince = full ? (missing.length === before ? fullSince ?? Date.now() : Date.now()) : undefined;
      if (fullSince !== undefined && Date.now() - fullSince >= FULL_SETTLED_MS) return { missing, full: true };
      if (Date.now() >= deadline) return { missing, full };
    }
  }

  /** The results stream has no room left for a large result (its limit is FLURRY_STORE_MAX_BYTES). */
  private async resultsFull(): Promise<boolean> {
    const { config, state } = await this.jsm.streams.info(ResultsStream);
    return config.max_bytes > 0 && config.max_bytes - state.bytes < LARGE_JOB_DATA_BYTES;
  }

  /** Failed attempts of a job kept in the failures stream, as (subject, attempt request id, index). */
  async failedAttempts(tenant: string, jobId: string): Promise<{ subject: string; requestId: string; index: number }[]> {
    const prefix = `flurry.failures.${tenant}.`;
    const info = await this.jsm.streams.info(FailuresStream, { subjects_filter: `${JobSubjects.failures(tenant, jobId)}.>` });
    return Object.keys(info.state.subjects ?? {}).map((subject) => {
      const rest = subject.slice(prefix.length);
      const dot = rest.lastIndexOf('.');
      return { subject, requestId: rest.slice(0, dot), index: Number(rest.slice(dot + 1)) };
    });
  }

  /** One failed attempt's CloneResult, or undefined. */
  async failure(subject: string): Promise<CloneResult | undefined> {
    const m = await this.jsm.streams.getMessage(FailuresStream, { last_by_subj: subject }).catch(() => null);
    // A message that is no CloneResult (forged, garbled) counts as no failure kept.
    return m ? decodeChecked('CloneResult', m.data, subject) : undefined;
  }

  /** A clone's kept result, or undefined. */
  async result(tenant: string, jobId: string, index: number): Promise<CloneResult | undefined> {
    const m = await this.jsm.streams.getMessage(ResultsStream, { last_by_subj: JobSubjects.result(tenant, jobId, index) }).catch(() => null);
    if (!m) return undefined;
    const r = decodeChecked('CloneResult', m.data, m.subject);
    if (!r) return undefined;
    return r.outputObject ? { ...r, output: await this.objectOutput(tenant, jobId, r.outputObject) } : r;
  }

  /**
   * A clone job's kept outputs of indexes 0..count-1, in order, read RESULT_READS at a time; `missing`:
   * whether a gap throws or reads as empty.
   */
  async outputsInOrder(tenant: string, jobId: string, count: number, missing: 'throw' | 'empty' = 'throw'): Promise<Uint8Array[]> {
    const outputs = new Array<Uint8Array>(count);
    await readEach(count, async (i) => {
      const output = (await this.result(tenant, jobId, i))?.output;
      if (!output && missing === 'throw') throw new FlurryError('internal', `the result of clone ${i} is missing from the results stream`);
      outputs[i] = output ?? new Uint8Array(0);
    });
    return outputs;
  }

  /**
   * A task job's outputs of tasks 0..total-1 in task order: per task, that of the first run the stream
   * stored that holds it (lowest sequence); `missing` as for outputsInOrder. Outputs in `known` (by task)
   * are not read again.
   */
  async taskOutputs(tenant: string, jobId: string, total: number, missing: 'throw' | 'empty', known: readonly (Uint8Array | undefined)[] = []): Promise<Uint8Array[]> {
    const outputs: (Uint8Array | undefined)[] = Array.from({ length: total }, (_, t) => known[t]);
    const wanted = (run: { first: number; last: number }) => {
      for (let t = run.first; t <= run.last && t < total; t++) if (!outputs[t]) return true;
      return false;
    };
    const tokens = outputs.every(Boolean) ? [] : (await this.resultTokens(tenant, jobId)).filter((token) => {
      const run = taskRange(token);
      return run !== undefined && wanted(run);
    });
    const runs: { seq: number; first: number; outputs: Uint8Array[] }[] = [];
    await readEach(tokens.length, async (i) => {
      const subject = `${JobSubjects.results(tenant, jobId)}.${tokens[i]}`;
      const m = await this.jsm.streams.getMessage(ResultsStream, { last_by_subj: subject }).catch(() => null);
      const r = m ? decodeChecked('CloneResult', m.data, subject) : undefined;
      if (!m || !r?.taskRunMs) return;
      const framed = r.outputObject ? await this.objectOutput(tenant, jobId, r.outputObject) : (r.output ?? new Uint8Array(0));
      const each = unframeOutputs(framed, r.taskRunMs.length);
      if (each) runs.push({ seq: m.seq, first: r.index, outputs: each });
    });
    runs.sort((a, b) => a.seq - b.seq);
    for (const run of runs) run.outputs.forEach((o, k) => {
      if (run.first + k < total) outputs[run.first + k] ??= o;
    });
    return outputs.map((o, t) => {
      if (!o && missing === 'throw') throw new FlurryError('internal', `the result of task ${t} is missing from the results stream`);
      return o ?? new Uint8Array(0);
    });
  }

  /**
   * Deletes the stored result `token` (an index, or a task job's `<first>-<last>`) when it is the one from
   * attempt `requestId` (a result the coordinator refused), so that the real one can be stored.
   */
  async dropResult(tenant: string, jobId: string, token: number | string, requestId: string): Promise<void> {
    const m = await this.jsm.streams.getMessage(ResultsStream, { last_by_subj: `${JobSubjects.results(tenant, jobId)}.${token}` }).catch(() => null);
    if (!m || decodeChecked('CloneResult', m.data, m.subject)?.requestId !== requestId) return;
    await this.jsm.streams.deleteMessage(ResultsStream, m.seq, false);
  }

  /**
   * Deletes the output object `name` of a result of `index` from attempt `requestId` when the results
   * stream kept another attempt's result for that index: the loser's output is nobody's.
   */
  async dropLostOutput(tenant: string, jobId: string, index: number, requestId: string, name: string): Promise<void> {
    const m = await this.jsm.streams.getMessage(ResultsStream, { last_by_subj: JobSubjects.result(tenant, jobId, index) }).catch(() => null);
    const kept = m ? decodeChecked('CloneResult', m.data, m.subject) : undefined;
    if (!kept || kept.requestId === requestId || kept.outputObject === name) return;
    await this.outputs.delete(name);
  }

  /** A large output of one of the job's clones, kept in the outputs store (a result naming another job's is refused). */
  async objectOutput(tenant: string, jobId: string, name: string): Promise<Uint8Array> {
    if (!name.startsWith(`${tenant}/${jobId}/`)) throw new FlurryError('internal', `a result of job ${jobId} names the output object ${name}, which is not the job's`);
    const bytes = await this.outputs.getBlob(name);
    if (!bytes) throw new FlurryError('internal', `the output object ${name} is missing`);
    return bytes;
  }

  /** Every job id of a tenant, newest first. */
  async ids(tenant: string): Promise<string[]> {
    const out: string[] = [];
    for (const k of await kvKeys(this.jsm, JobBuckets.jobs, `${tenant}.>`)) out.push(k.slice(tenant.length + 1));
    return out.sort().reverse();
  }
}

/** Runs `read(0..count-1)`, RESULT_READS at a time (a job has up to thousands of results to read). */
async function readEach(count: number, read: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const reader = async () => {
    for (let i = next++; i < count; i = next++) await read(i);
  };
  await Promise.all(Array.from({ length: Math.min(RESULT_READS, count) }, reader));
}
