/** The gateway's record shapes, as the SDK's own public types (copied from core's protocol so the SDK has no runtime dependency on it). */

/**
 * Error codes the gateway puts in `{ "error": { "code" } }` and in the `x-flurry-error` header.
 *
 * @example
 * if (err instanceof FlurryApiError && err.code === 'no_capacity') await sleep(err.retryAfterSeconds ?? 1);
 */
export type ErrorCode =
  | 'bad_request'
  | 'invalid_module'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'payload_too_large'
  | 'timeout'
  | 'guest_trap'
  | 'guest_error'
  | 'output_limit'
  | 'no_capacity'
  | 'unavailable'
  | 'conflict'
  | 'rate_limited'
  | 'quota_exceeded'
  | 'storage_full'
  | 'internal';

/**
 * A deployed function. Times are milliseconds since the Unix epoch.
 *
 * @example
 * const fn: FunctionRecord = await flurry.functions.get('hello');
 * console.log(fn.digest.slice(0, 12), fn.exports.includes('handle'));
 */
/**
 * Uploaded data (`flurry.data`), usable as a job's `initData`.
 *
 * @example
 * const d: DataRecord = await flurry.data.put('db.fasta', bytes); // d.digest: 'sha256:…'
 */
export interface DataRecord {
  name: string;
  bytes: number;
  /** `sha256:<hex>` of the bytes. */
  digest: string;
  /** Milliseconds since the Unix epoch. */
  createdAt: number;
}

export interface FunctionRecord {
  tenant: string;
  name: string;
  /** SHA-256 of the module bytes, lower-case hex. */
  digest: string;
  /** Module size in bytes. */
  size: number;
  /** Entry points the module exports (`init`, `handle`, `run`, ...). */
  exports: string[];
  /** Linear memory size in 64 KiB wasm pages. */
  memory: { initialPages: number; maximumPages: number };
  /** Its own limits instead of the fleet's defaults; absent when it has none. */
  limits?: FunctionLimits;
  createdAt: number;
  updatedAt: number;
}

/**
 * A function's own limits, each within the fleet's cap; one left out is the fleet's default.
 *
 * @example
 * await flurry.functions.setLimits('resize', { timeoutMs: 2000, outputBytes: 1024 * 1024 });
 */
export interface FunctionLimits {
  /** A call's time limit in ms (at most the gateway's FLURRY_INVOKE_TIMEOUT_MS). */
  timeoutMs?: number;
  /** Most linear memory its module may declare, in bytes (at most FLURRY_MAX_GUEST_MEMORY). */
  memoryBytes?: number;
  /** Most bytes a call may answer (at most FLURRY_MAX_OUTPUT). */
  outputBytes?: number;
}

/**
 * What every caller sees of a worker host: its capacity figures (all that a `user` API key
 * gets from `hosts.list()`). Times are milliseconds since the Unix epoch.
 *
 * @example
 * const free = (await flurry.hosts.list()).reduce((n, h) => n + h.guestSlots - h.runningGuests, 0);
 */
export interface HostCapacity {
  id: string;
  startedAt: number;
  heartbeatAt: number;
  cores: number;
  memoryBytes: number;
  /** Guest threads in the host's pool. */
  guestSlots: number;
  /** Guest calls running now. */
  runningGuests: number;
  /** `userfaultfd` when the native pager works on the host, else `portable`. */
  pager: 'userfaultfd' | 'portable';
  /** True once the host has begun draining, or is drained: nothing new is placed on it. */
  draining: boolean;
  /** `active` takes work; `draining` is being emptied; `drained` holds nothing and takes no work (docs/autoscaling.md). */
  state?: 'active' | 'draining' | 'drained';
  /** Drained, idle and holding nothing: the machine may be released. */
  releasable?: boolean;
  /** The host's memory budget and what its parents, page caches and instances use of it (docs/fork.md, "Memory"). */
  memoryBudget?: { budgetBytes: number; usedBytes: number };
}

/**
 * A worker host as it last reported itself, as an `admin` API key sees it: its capacity and
 * what it holds for every tenant.
 *
 * @example
 * const hosts = await flurry.hosts.list();
 * if (isFullHostRecord(hosts[0])) console.log(hosts[0].hostname, hosts[0].warm.length);
 */
export interface HostRecord extends HostCapacity {
  pid: number;
  hostname: string;
  /** Functions the host holds warm parents of. */
  warm: WarmFunction[];
  /** Parents of jobs this host keeps for later jobs with the same key (module digest, init digest). */
  parents?: { tenant: string; function: string; moduleDigest: string; initDigest: string; snapshotId: string; memoryBytes: number; holders: number; idleSince?: number }[];
  /** Snapshots whose pages this host caches for clones. */
  pageCaches?: string[];
  /** Why the host is draining or drained. */
  stateReason?: string;
  /** The service instances on the host. */
  instances?: { tenant: string; service: string; instanceId: string; requests: number }[];
}

/**
 * A function a host holds a warm parent of.
 *
 * @example
 * const warmHosts = hosts.filter((h) => h.warm.some((w: WarmFunction) => w.name === 'hello'));
 */
export interface WarmFunction {
  tenant: string;
  name: string;
  digest: string;
}

/**
 * Where a job stands. `done`, `failed` and `cancelled` are final.
 *
 * @example
 * const finished = (['done', 'failed', 'cancelled'] as JobState[]).includes(job.state);
 */
export type JobState = 'queued' | 'snapshotting' | 'running' | 'reducing' | 'done' | 'failed' | 'cancelled';

/**
 * A platform error as a job or clone record carries it.
 *
 * @example
 * if (job.error) console.error(`${job.error.code}: ${job.error.message}`);
 */
export interface JobErrorInfo {
  code: ErrorCode | (string & {});
  message: string;
}

/**
 * Where a clone's memory pages came from: already on the host, multicast by the parent's
 * memory server, asked for by this host alone, or all-zero.
 *
 * @example
 * const fetched = (p: PageCounts) => p.multicast + p.unicast;
 */
export interface PageCounts {
  local: number;
  multicast: number;
  unicast: number;
  zero: number;
}

/**
 * One clone of a job. Times are milliseconds: `startMs` since the Unix epoch, `runMs` a duration.
 *
 * @example
 * const slowest = job.clonesDetail.reduce((a, b) => ((b.runMs ?? 0) > (a.runMs ?? 0) ? b : a));
 */
export interface CloneDetail {
  index: number;
  state: 'pending' | 'running' | 'done' | 'failed';
  /** The host the clone runs or ran on. */
  host?: string;
  /** How many times it was forked (retries and re-forks after a lost host included). */
  attempts: number;
  startMs?: number;
  runMs?: number;
  error?: JobErrorInfo;
  pages?: PageCounts;
}

/**
 * A fork-join job: one snapshot of a warm parent, forked into `clones` clones. Times are
 * milliseconds since the Unix epoch.
 *
 * @example
 * const job: JobRecord = await flurry.jobs.get('job-1');
 * console.log(job.state, `${job.counts.done}/${job.clones}`);
 */
export interface JobRecord {
  id: string;
  tenant: string;
  function: string;
  /** The module digest the job runs. */
  digest: string;
  clones: number;
  state: JobState;
  createdAt: number;
  updatedAt: number;
  startedAt?: number;
  finishedAt?: number;
  /** The host of the warm parent that was snapshotted. */
  parentHost?: string;
  snapshotId?: string;
  /** `fork`: clones forked from one snapshotted parent; `cold`: every clone booted and ran init itself. */
  boot?: 'fork' | 'cold';
  /** The uploaded data used as the init input, by name. */
  initData?: string;
  /** The parent was kept from an earlier job with the same function version and init (no init run, no new snapshot). */
  parentReused?: boolean;
  /** The parent's init and snapshot times in ms (0 when reused). */
  initMs?: number;
  snapshotMs?: number;
  counts: { done: number; failed: number; running: number; pending: number };
  clonesDetail: CloneDetail[];
  /** Pages the clones waited for, all together (unicast and multicast). */
  pagesFetched: number;
  /** Why the job failed. */
  error?: JobErrorInfo;
  /** Each failed clone's error. */
  errors?: { index: number; code: ErrorCode | (string & {}); message: string }[];
  /** How the job's callback went, when it has a `callbackUrl`. */
  callback?: CallbackOutcome;
}

/**
 * The delivery of a job's callback: `pending` until a 2xx answer (`delivered`) or until every
 * attempt has failed (`failed`). Times are milliseconds since the Unix epoch.
 *
 * @example
 * const { callback } = await flurry.jobs.get(id);
 * if (callback?.state === 'failed') console.error(`callback: ${callback.lastStatus ?? ''} ${callback.lastError}`);
 */
export interface CallbackOutcome {
  state: 'pending' | 'delivered' | 'failed';
  attempts: number;
  /** The last attempt's HTTP status, when the receiver answered. */
  lastStatus?: number;
  /** Why the last attempt failed. */
  lastError?: string;
  /** When the last attempt ended. */
  at?: number;
}

/**
 * A long-lived service: `min`..`max` persistent instances of one function version, each a
 * clone of a parent booted with `init`. Times are milliseconds since the Unix epoch.
 *
 * @example
 * const svc: ServiceRecord = await flurry.services.get('chat');
 * console.log(svc.instances.map((i) => `${i.id}@${i.host}`).join(' '));
 */
export interface ServiceRecord {
  tenant: string;
  name: string;
  function: string;
  /** The function version the service was created with. */
  digest: string;
  /** The init input of the instances' parent, base64 (as given). */
  init?: string;
  /** Or the name of the uploaded data that is its init input. */
  initData?: string;
  min: number;
  max: number;
  /** Requests in flight per instance the autoscaler aims at. */
  targetConcurrency: number;
  createdAt: number;
  updatedAt: number;
  instances: ServiceInstance[];
}

/**
 * One instance of a service and the host that holds it.
 *
 * @example
 * const busiest = svc.instances.reduce((a, b) => (b.inFlight > a.inFlight ? b : a));
 */
export interface ServiceInstance {
  id: string;
  host: string;
  /** Requests the answering gateway has in flight to the instance. */
  inFlight: number;
  createdAt: number;
  /** Present while a migration of the instance is under way. */
  migrating?: { target: string; since: number; migrationRequest: string };
}

/**
 * What a live migration of a service instance did (docs/services.md, "Migration"). Times are
 * milliseconds, sizes bytes.
 *
 * @example
 * const report: MigrationReport = await flurry.services.migrate('inst-1', { target: 'host-b' });
 * console.log(`${report.rounds.length} rounds, paused ${report.downtimeMs} ms`);
 */
export interface MigrationReport {
  source: string;
  target: string;
  /** Dirty tracking used: `async` / `sync` (native pager) or `compare`. */
  mode?: string;
  /** Each pre-copy round, round 0 (all non-zero pages) first. */
  rounds: { pages: number; bytes: number; ms: number }[];
  /** `budget`, `not-shrinking`, `max-rounds` or `stop-and-copy`. */
  stopReason: string;
  /** Pages sent while the instance was paused. */
  finalPages: number;
  downtimeMs: number;
  /** Where the pause went. */
  downtime: { stopMs: number; waitMs: number; readMs: number; sendMs: number; commitMs: number; targetApplyMs: number; targetCommitMs: number; releaseMs: number };
  totalMs: number;
  totalBytes: number;
  perPageMs: number;
  /** Requests held during the pause and answered by the target. */
  forwarded: number;
  /** The gateway's placement write, after the pause. */
  placementMs: number;
}

/**
 * One instance moved by the services controller (a consolidation or a drain), and why.
 *
 * @example
 * const failed = (await flurry.hosts.consolidation()).moves.filter((m: HostMove) => !m.ok);
 */
export interface HostMove {
  at: number;
  tenant: string;
  service: string;
  instanceId: string;
  from: string;
  to?: string;
  kind: 'consolidate' | 'drain';
  reason: string;
  ok: boolean;
  downtimeMs?: number;
  error?: string;
}

/**
 * The answer of a host drain: every instance moved away, or why one could not be (the host then
 * stays `draining`).
 *
 * @example
 * const drain: HostDrainReport = await flurry.hosts.drain('host-2');
 * if (drain.failed.length > 0) console.error(drain.failed[0].error);
 */
export interface HostDrainReport {
  hostId: string;
  moved: HostMove[];
  failed: { instanceId: string; error: string }[];
}

/**
 * The services controller's view: each host's state, and its latest moves of the caller's
 * instances, newest last.
 *
 * @example
 * const { hosts } = await flurry.hosts.consolidation();
 * const releasable = hosts.filter((h) => h.releasable).map((h) => h.id);
 */
export interface ConsolidationState {
  hosts: {
    id: string;
    state: 'active' | 'draining' | 'drained';
    stateReason?: string;
    /** How many service instances the host holds (`hosts.list()` names them). */
    instances: number;
    runningGuests: number;
    releasable: boolean;
  }[];
  moves: HostMove[];
}
