/**
 * Where jobs live: records in the `flurry_jobs` KV bucket, idempotency keys in
 * `flurry_job_keys`, specs, descriptors and reduce outputs in the
 * `flurry_job_data` object store, clone results in the `FLURRY_RESULTS`
 * stream (one message per job and index: the first result wins). Every
 * gateway replica opens the same store; only the coordinator writes records
 * after a job is created.
 */
import { jetstream, jetstreamManager, DiscardPolicy, RetentionPolicy, StorageType, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { Objm, type ObjectStore } from '@nats-io/obj';
import {
  decode, encode, FlurryError, JobBuckets, kvKeys, JobObjects, JobSubjects, jobKey, ResultsStream,
  type CloneResult, type Fabric, type IdempotencyEntry, type JobRecord, type JobSpec, type StoredJob,
} from '@flurry/core';

/** Results and job data are kept this long after they were written. */
const KEEP_MS = 7 * 24 * 3600 * 1000;

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
    const jobs = await kvm.create(JobBuckets.jobs, { history: 1 });
    const keys = await kvm.create(JobBuckets.jobKeys, { history: 1, ttl: KEEP_MS });
    const lease = await kvm.create(JobBuckets.lease, { history: 1, ttl: leaseTtlMs });
    const data = await new Objm(js).create(JobObjects);
    const config = {
      name: ResultsStream,
      subjects: [JobSubjects.allResults],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      max_msgs_per_subject: 1,
      discard: DiscardPolicy.New,
      discard_new_per_subject: true,
      max_age: KEEP_MS * 1_000_000,
      allow_direct: true,
    };
    try {
      await jsm.streams.info(ResultsStream);
    } catch {
      await jsm.streams.add(config).catch(async (err: unknown) => {
        // Another replica made it first.
        await jsm.streams.info(ResultsStream).catch(() => { throw err; });
      });
    }
    return new JobStore(fabric, jsm, jobs, keys, lease, data);
  }

  async get(tenant: string, jobId: string): Promise<{ stored: StoredJob; revision: number } | undefined> {
    if (!/^[\w-]{1,64}$/.test(jobId)) return undefined;
    const e = await this.jobs.get(jobKey(tenant, jobId));
    if (!e || e.operation !== 'PUT' || e.value.length === 0) return undefined;
    return { stored: decode<StoredJob>(e.value), revision: e.revision };
  }

  async record(tenant: string, jobId: string): Promise<JobRecord> {
    const got = await this.get(tenant, jobId);
    if (!got) throw new FlurryError('not_found', `no job "${jobId}"`);
    return got.stored.record;
  }

  async create(stored: StoredJob, spec: JobSpec): Promise<void> {
    const { tenant, id } = stored.record;
    await this.data.putBlob({ name: `${tenant}/${id}/spec` }, encode(spec));
    await this.jobs.create(jobKey(tenant, id), encode(stored));
  }

  async put(stored: StoredJob): Promise<void> {
    await this.jobs.put(jobKey(stored.record.tenant, stored.record.id), encode(stored));
  }

  async spec(tenant: string, jobId: string): Promise<JobSpec> {
    const bytes = await this.data.getBlob(`${tenant}/${jobId}/spec`);
    if (!bytes) throw new FlurryError('internal', `job ${jobId} has lost its spec`);
    return decode<JobSpec>(bytes);
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
      return decode<IdempotencyEntry>(e.value);
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

  /** A clone's kept result, or undefined. */
  async result(tenant: string, jobId: string, index: number): Promise<CloneResult | undefined> {
    const m = await this.jsm.streams.getMessage(ResultsStream, { last_by_subj: JobSubjects.result(tenant, jobId, index) }).catch(() => null);
    if (!m) return undefined;
    const r = decode<CloneResult>(m.data);
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
