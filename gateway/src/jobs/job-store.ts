/**
 * Where jobs live: records in the `flurry_jobs` KV bucket, idempotency keys in
 * `flurry_job_keys`, specs, descriptors and reduce outputs in the
 * `flurry_job_data` object store, clone results in the `FLURRY_RESULTS`
 * stream (one message per job and index: the first result wins). Every
 * gateway replica opens the same store; only the coordinator writes records
 * after a job is created.
 */
import { jetstream, jetstreamManager, DiscardPolicy, RetentionPolicy, StorageType, type JetStreamManager, type StreamConfig } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { Objm, type ObjectStore } from '@nats-io/obj';
import {
  createShared, decodeChecked, decodeOrRefuse, encode, FailuresStream, FlurryError, newId, JobBuckets, kvKeys, JobObjects, JobSubjects, jobKey, ResultsStream,
  type CloneResult, type Fabric, type IdempotencyEntry, type JobRecord, type JobSpec, type StoredJob,
} from '@flurry/core';
import { jobEventsStreamConfig } from './job-events.js';

/** Results and job data are kept this long after they were written. */
const KEEP_MS = 7 * 24 * 3600 * 1000;
/** Failed attempts matter only while their job runs. */
const FAILURES_KEEP_MS = 24 * 3600 * 1000;

/** Creates a stream unless it exists (every gateway replica opens the store; the first creates it). */
async function ensureStream(jsm: JetStreamManager, config: Partial<StreamConfig> & { name: string }): Promise<void> {
  try {
    await jsm.streams.info(config.name);
  } catch {
    await jsm.streams.add(config).catch(async (err: unknown) => {
      // Another replica made it first.
      await jsm.streams.info(config.name).catch(() => { throw err; });
    });
  }
}

export class JobStore {
  private constructor(
    readonly fabric: Fabric,
    readonly jsm: JetStreamManager,
    readonly jobs: KV,
    readonly keys: KV,
    readonly lease: KV,
    readonly data: ObjectStore,
  ) {}

  static async open(fabric: Fabric, leaseTtlMs: number): Promise<JobStore> {
    const js = jetstream(fabric.nc);
    const jsm = await jetstreamManager(fabric.nc);
    const kvm = new Kvm(js);
    const jobs = await createShared(() => kvm.create(JobBuckets.jobs, { history: 1 }));
    const keys = await createShared(() => kvm.create(JobBuckets.jobKeys, { history: 1, ttl: KEEP_MS }));
    const lease = await createShared(() => kvm.create(JobBuckets.lease, { history: 1, ttl: leaseTtlMs }));
    const data = await createShared(() => new Objm(js).create(JobObjects));
    // One message per subject, the first kept: a clone's result per index, a failure per attempt and index.
    const firstPerSubject = { retention: RetentionPolicy.Limits, storage: StorageType.File, max_msgs_per_subject: 1, discard: DiscardPolicy.New, discard_new_per_subject: true, allow_direct: true };
    await ensureStream(jsm, { name: ResultsStream, subjects: [JobSubjects.allResults], max_age: KEEP_MS * 1_000_000, ...firstPerSubject });
    await ensureStream(jsm, { name: FailuresStream, subjects: [JobSubjects.allFailures], max_age: FAILURES_KEEP_MS * 1_000_000, ...firstPerSubject });
    await ensureStream(jsm, jobEventsStreamConfig);
    return new JobStore(fabric, jsm, jobs, keys, lease, data);
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
    await this.data.putBlob({ name: specObject }, encode(spec));
    const mine: StoredJob = { ...stored, specObject };
    try {
      await this.jobs.create(jobKey(tenant, id), encode(mine));
      return { stored: mine, created: true };
    } catch (err) {
      const theirs = await this.get(tenant, id);
      if (!theirs) throw err;
      await this.data.delete(specObject).catch(() => undefined);
      return { stored: theirs.stored, created: false };
    }
  }

  async put(stored: StoredJob): Promise<void> {
    await this.jobs.put(jobKey(stored.record.tenant, stored.record.id), encode(stored));
  }

  async spec(stored: StoredJob): Promise<JobSpec> {
    const { tenant, id } = stored.record;
    const bytes = await this.data.getBlob(stored.specObject ?? `${tenant}/${id}/spec`);
    if (!bytes) throw new FlurryError('internal', `job ${id} has lost its spec`);
    return decodeOrRefuse('JobSpec', bytes, `${tenant}/${id}/spec`, 'internal');
  }

  async putBlob(name: string, bytes: Uint8Array): Promise<void> {
    await this.data.putBlob({ name }, bytes);
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

  /** Indexes whose result is in the stream. */
  async finishedIndexes(tenant: string, jobId: string): Promise<Set<number>> {
    const prefix = JobSubjects.results(tenant, jobId);
    const info = await this.jsm.streams.info(ResultsStream, { subjects_filter: `${prefix}.*` });
    const out = new Set<number>();
    for (const subject of Object.keys(info.state.subjects ?? {})) out.add(Number(subject.slice(prefix.length + 1)));
    return out;
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
    return r.outputObject ? { ...r, output: await this.objectOutput(r.outputObject) } : r;
  }

  /** A large output kept in the object store. */
  async objectOutput(name: string): Promise<Uint8Array> {
    const bytes = await this.data.getBlob(name);
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
