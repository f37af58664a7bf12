/**
 * Every JetStream store the fleet keeps, once: its name, its kind (KV
 * bucket, object store, stream), its default byte limit and its settings.
 * fabric.ts opens stores from this table only (`openKv(fabric, 'jobs')`);
 * FLURRY_STORE_MAX_BYTES overrides the limits by name (store-limits.ts) and
 * FLURRY_JS_REPLICAS sets every store's replica count.
 *
 * A tenant's uploaded data is the one store outside the table: one object
 * store per tenant (`dataStoreName`), its limit the tenant's data quota.
 */
import { DiscardPolicy, RetentionPolicy, StorageType, type StreamConfig } from '@nats-io/jetstream';
import type { KvOptions } from '@nats-io/kv';
import { Buckets, ControllerBuckets, FailuresStream, GuestLogsStream, GuestLogSubjects, JobBuckets, JobEventsStream, JobObjects, JobOutputObjects, JobSubjects, ObjectStores, ResultsStream, ServiceBuckets } from './protocol.js';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
const NANOS_PER_MS = 1_000_000;

/** Job results, job data and idempotency keys are kept this long after they were written. */
export const JOB_KEEP_MS = 7 * 24 * 3600_000;
/** Failed clone attempts matter only while their job runs. */
const FAILURES_KEEP_MS = 24 * 3600_000;
/** A guest's lines are kept a day, and the last GUEST_LOG_RUNS_KEPT runs of each function, clone or service that logged. */
const GUEST_LOGS_KEEP_MS = 24 * 3600_000;
export const GUEST_LOG_RUNS_KEPT = 1000;
/** A job event published twice with the same id within this window is kept once (its publisher retries after a lost ack). */
export const JOB_EVENT_DUPLICATE_WINDOW_MS = 5 * 60_000;

interface KvStore {
  type: 'kv';
  name: string;
  maxBytes: number;
  settings: Partial<Omit<KvOptions, 'max_bytes' | 'replicas'>>;
  /** Its entries expire after a time the opener gives (a lease's, a heartbeat's): `openKv(fabric, key, { ttlMs })`. */
  ttlGiven?: true;
}
interface ObjectsStore {
  type: 'objects';
  name: string;
  maxBytes: number;
}
interface StreamStore {
  type: 'stream';
  name: string;
  maxBytes: number;
  settings: Partial<Omit<StreamConfig, 'name' | 'max_bytes' | 'num_replicas'>>;
}

/** One message per subject, the first kept: a clone's result per index, a failure per attempt and index. */
const firstPerSubject = { retention: RetentionPolicy.Limits, storage: StorageType.File, max_msgs_per_subject: 1, discard: DiscardPolicy.New, discard_new_per_subject: true, allow_direct: true };

/** About 13 GiB in all by default: records and leases are small; modules, job data and results hold what tenants send and get back. */
export const FabricStores = {
  hosts: { type: 'kv', name: Buckets.hosts, maxBytes: 16 * MiB, settings: { history: 1 }, ttlGiven: true },
  functions: { type: 'kv', name: Buckets.functions, maxBytes: 64 * MiB, settings: { history: 5 } },
  modules: { type: 'objects', name: ObjectStores.modules, maxBytes: 4 * GiB },
  jobs: { type: 'kv', name: JobBuckets.jobs, maxBytes: 1 * GiB, settings: { history: 1 } },
  jobKeys: { type: 'kv', name: JobBuckets.jobKeys, maxBytes: 64 * MiB, settings: { history: 1, ttl: JOB_KEEP_MS } },
  jobLease: { type: 'kv', name: JobBuckets.lease, maxBytes: 1 * MiB, settings: { history: 1 }, ttlGiven: true },
  jobData: { type: 'objects', name: JobObjects, maxBytes: 4 * GiB },
  jobOutputs: { type: 'objects', name: JobOutputObjects, maxBytes: 2 * GiB },
  results: { type: 'stream', name: ResultsStream, maxBytes: 2 * GiB, settings: { subjects: [JobSubjects.allResults], max_age: JOB_KEEP_MS * NANOS_PER_MS, ...firstPerSubject } },
  failures: { type: 'stream', name: FailuresStream, maxBytes: 256 * MiB, settings: { subjects: [JobSubjects.allFailures], max_age: FAILURES_KEEP_MS * NANOS_PER_MS, ...firstPerSubject } },
  // Old events make room for new ones: a job's history is worth less than its progress.
  jobEvents: {
    type: 'stream', name: JobEventsStream, maxBytes: 1 * GiB,
    settings: { subjects: [JobSubjects.allEvents], retention: RetentionPolicy.Limits, storage: StorageType.File, max_age: 24 * 3600_000 * NANOS_PER_MS, max_msgs_per_subject: 100_000, discard: DiscardPolicy.Old, duplicate_window: JOB_EVENT_DUPLICATE_WINDOW_MS * NANOS_PER_MS, allow_direct: true },
  },
  // One stream for every tenant (docs/api.md, "Guest logs"): the subject's tenant scopes readers, and old
  // runs make room for new ones, per subject and in all.
  guestLogs: {
    type: 'stream', name: GuestLogsStream, maxBytes: 256 * MiB,
    settings: { subjects: [GuestLogSubjects.all], retention: RetentionPolicy.Limits, storage: StorageType.File, max_age: GUEST_LOGS_KEEP_MS * NANOS_PER_MS, max_msgs_per_subject: GUEST_LOG_RUNS_KEPT, discard: DiscardPolicy.Old, allow_direct: true },
  },
  services: { type: 'kv', name: ServiceBuckets.services, maxBytes: 64 * MiB, settings: { history: 1 } },
  serviceInstances: { type: 'kv', name: ServiceBuckets.instances, maxBytes: 64 * MiB, settings: { history: 1 } },
  controllerLease: { type: 'kv', name: ControllerBuckets.lease, maxBytes: 1 * MiB, settings: { history: 1 }, ttlGiven: true },
  controllerJournal: { type: 'kv', name: ControllerBuckets.journal, maxBytes: 16 * MiB, settings: { history: 1 } },
} as const satisfies Record<string, KvStore | ObjectsStore | StreamStore>;

type Stores = typeof FabricStores;
export type StoreKey = keyof Stores;
export type KvKey = { [K in StoreKey]: Stores[K]['type'] extends 'kv' ? K : never }[StoreKey];
export type ObjectsKey = { [K in StoreKey]: Stores[K]['type'] extends 'objects' ? K : never }[StoreKey];
export type StreamKey = { [K in StoreKey]: Stores[K]['type'] extends 'stream' ? K : never }[StoreKey];
/** A store's name on the broker (`flurry_jobs`, `FLURRY_RESULTS`): what FLURRY_STORE_MAX_BYTES names. */
export type StoreName = Stores[StoreKey]['name'];
