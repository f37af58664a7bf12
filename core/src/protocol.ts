/**
 * The fleet's wire protocol: every NATS subject, KV bucket, object store and
 * message type that crosses a process boundary is named here and nowhere else.
 * Messages are msgpackr-encoded (see codec.ts). Each type here has a zod schema
 * in schemas.ts (checked at compile time to match it), each subject an entry in
 * subject-table.ts, and every process decodes what it receives with
 * checked-decode.ts.
 *
 * Tenancy is part of every name that addresses a tenant's object: a function
 * key is `<tenant>.<name>`, an invoke subject carries the tenant, a module's
 * object name starts with it.
 */

/** The tenant of every caller when the gateway runs without API keys (FLURRY_AUTH=none). */
export const DEFAULT_TENANT = 'default';

/** JetStream KV buckets and object stores. */
export const Buckets = {
  /** host id -> HostRecord; entries expire when a host stops heartbeating. */
  hosts: 'flurry_hosts',
  /** `<tenant>.<name>` -> FunctionRecord. */
  functions: 'flurry_functions',
} as const;

export const ObjectStores = {
  /** `<tenant>/<sha256>` -> module bytes (content-addressed). */
  modules: 'flurry_modules',
} as const;

/** Names: lower-case letters, digits and dashes, 1-63 chars, starting with a letter or digit. */
export const NAME_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** How many hex digits of a module digest go into an invoke subject. */
const DIGEST_IN_SUBJECT = 16;

export const Subjects = {
  /** Request to one host: place (warm up) a function there. */
  place: (hostId: string) => `flurry.host.${hostId}.place`,
  /** Request to one host: drain (finish in-flight work, deregister, exit). */
  drain: (hostId: string) => `flurry.host.${hostId}.drain`,
  /** Request to one host, from the gateway only: open a direct call channel (call-frames.ts) with the gateway's token. */
  openCalls: (hostId: string) => `flurry.host.${hostId}.calls`,
  /**
   * Invoke a warm function. Hosts holding it warm subscribe in the queue group
   * `InvokeQueue`, so each call reaches exactly one of them. The digest is in
   * the subject: a redeployed function gets new warm parents, and hosts still
   * holding the old version never receive its calls.
   */
  invoke: (tenant: string, name: string, digest: string) =>
    `flurry.fn.${tenant}.${name}.${digest.slice(0, DIGEST_IN_SUBJECT)}.invoke`,
  /** Request to one host: boot a warm parent with an init input and snapshot it. */
  snapshot: (hostId: string) => `flurry.host.${hostId}.snapshot`,
  /** Request to one host: fork clones of a snapshot there. */
  fork: (hostId: string) => `flurry.host.${hostId}.fork`,
  /** Request to one host: drop a snapshot (parent side) or its cached pages (clone side). */
  release: (hostId: string) => `flurry.host.${hostId}.release`,
  /** Broadcast by a host that freed a kept parent (ReleaseRequest without holder): hosts drop their cached pages of it. */
  parentFreed: (tenant: string) => `flurry.parents.${tenant}.freed`,
  allParentsFreed: 'flurry.parents.*.freed',
  /**
   * The memory server of a snapshot (on the parent's host): requests for chunks.
   * It answers each request with a short ack and sends the chunks themselves on
   * `pages`, so that one transmission reaches every host with clones.
   */
  pageRequests: (tenant: string, snapshotId: string) => `flurry.snap.${tenant}.${snapshotId}.fetch`,
  /** Multicast of a snapshot's chunks: every host with clones listens once. */
  pages: (tenant: string, snapshotId: string) => `flurry.snap.${tenant}.${snapshotId}.pages`,
  /** One host's own page subject for a snapshot (the unicast baseline). */
  unicastPages: (tenant: string, snapshotId: string, receiver: string) => `flurry.snap.${tenant}.${snapshotId}.to.${receiver}`,
  /** Typed events, `flurry.events.<tenant>.<kind>`; `flurry.events.>` reads all. */
  event: (tenant: string, kind: string) => `flurry.events.${tenant}.${kind}`,
  allEvents: 'flurry.events.>',
} as const;

export const InvokeQueue = 'flurry-invoke';

/** What a host tells the fleet about itself; refreshed every heartbeat. */
export interface HostRecord {
  id: string;
  /** Process id and hostname, for people reading `flurry hosts`. */
  pid: number;
  hostname: string;
  startedAt: number;
  heartbeatAt: number;
  /** The machine's cores (its guest slots may be more: calls that wait on I/O); a task job runs no more clones on a machine than this. */
  cores: number;
  memoryBytes: number;
  /** Guest threads in this host's pool. */
  guestSlots: number;
  /** Guest calls running now. */
  runningGuests: number;
  /** Functions this host holds warm parents of. */
  warm: WarmFunction[];
  /** `userfaultfd` when the native pager works here, else `portable`. */
  pager: 'userfaultfd' | 'portable';
  /** True once the host has begun draining, or is drained: place nothing new on it. */
  draining: boolean;
  /**
   * Where the host stands (docs/autoscaling.md): `active` takes work;
   * `draining` is being emptied (by hand, consolidation or its own exit);
   * `drained` holds no instances and takes no work until reactivated.
   */
  state?: HostState;
  /** Why the host is draining or drained. */
  stateReason?: string;
  /** The service instances this host holds. */
  instances?: HostServiceInstance[];
  /** Drained, idle and holding nothing: a cloud autoscaler may release the machine. */
  releasable?: boolean;
  /** Parents kept here for reuse by later jobs (docs/jobs.md, "Kept parents"). */
  parents?: KeptParent[];
  /**
   * Services' parents booted with an init input that are warm here with their
   * digest made (docs/services.md, "Migration"): an instance migrated here
   * starts from one without booting or hashing it in the migration.
   */
  serviceParents?: ParentKey[];
  /** Snapshots whose pages this host caches for clones (kept while their parent is). */
  pageCaches?: string[];
  /** FLURRY_HOST_MEMORY_BUDGET and how much of it warm parents, snapshots, page caches and instances hold now. */
  memoryBudget?: { budgetBytes: number; usedBytes: number };
  /** Messages this host dropped as malformed, by message kind (core/src/checked-decode.ts). */
  rejectedMessages?: Record<string, number>;
  /**
   * How often this host's broker connection dropped since it started (on a
   * cluster, it then reconnects to another node): a reply it sent just
   * before may be lost, so a request it held meanwhile has an unknown outcome.
   */
  brokerOutages?: number;
}

/** What identifies a parent's state: a later job with the same key may reuse its snapshot. */
export interface ParentKey {
  tenant: string;
  /** The module's digest (the function version). */
  moduleDigest: string;
  /** `sha256:<hex>` of the inline init input, or the uploaded init data's digest. */
  initDigest: string;
}

/** A ParentKey as one string (map keys, logs). */
export function parentKeyString(k: ParentKey): string {
  return `${k.tenant}/${k.moduleDigest}/${k.initDigest}`;
}

export interface KeptParent extends ParentKey {
  function: string;
  snapshotId: string;
  memoryBytes: number;
  /** Jobs holding it now; 0 when idle. */
  holders: number;
  /** When it became idle (ms since the epoch); absent while held. */
  idleSince?: number;
}

export type HostState = 'active' | 'draining' | 'drained';

export interface WarmFunction {
  tenant: string;
  name: string;
  digest: string;
}

/** A deployed function, as stored in the functions bucket. */
export interface FunctionRecord {
  tenant: string;
  name: string;
  /** SHA-256 of the module bytes, lower-case hex. */
  digest: string;
  size: number;
  /** Entry points the module exports. */
  exports: string[];
  memory: { initialPages: number; maximumPages: number };
  /** Its own limits instead of the fleet's defaults (docs/manifests.md); kept across redeploys. */
  limits?: FunctionLimits;
  createdAt: number;
  updatedAt: number;
}

/** A function's own limits, each within the fleet's cap (gateway/src/functions/function-limits.ts); absent: the default. */
export interface FunctionLimits {
  /** A call's (or service request's) time limit, instead of the hosts' FLURRY_CALL_TIMEOUT_MS. */
  timeoutMs?: number;
  /** Most linear memory a module of it may declare: a deploy of one declaring more is refused. */
  memoryBytes?: number;
  /** Most bytes a call may answer, instead of the hosts' FLURRY_MAX_OUTPUT. */
  outputBytes?: number;
}

/**
 * The bounds of a call's limits, wherever one is set or checked (the schemas, the call's hand check, the hosts'
 * and the gateway's settings): a time limit of 1 ms to an hour, an answer of 1 KiB to 64 MiB.
 */
export const CALL_LIMIT_BOUNDS = {
  timeoutMs: { min: 1, max: 3_600_000 },
  outputBytes: { min: 1024, max: 64 * 1024 * 1024 },
} as const;

/** The limits a host applies to one call, from its function's (the host's own defaults where absent). */
export interface InvokeLimits {
  timeoutMs?: number;
  /** Capped by the host's own FLURRY_MAX_OUTPUT. */
  outputBytes?: number;
}

export interface PlaceRequest {
  requestId: string;
  tenant: string;
  name: string;
  digest: string;
}

export type PlaceReply = { ok: true; hostId: string; initMs: number } | { ok: false; error: WireError };

/** An HTTP call to a function, as the gateway sends it to a host. */
export interface InvokeRequest {
  requestId: string;
  tenant: string;
  name: string;
  digest: string;
  method: string;
  /** Path below the function, starting with `/`. */
  path: string;
  /** Raw query string without `?`. */
  query: string;
  headers: [string, string][];
  body: Uint8Array;
  /** The function's own limits for this call (FunctionRecord.limits). */
  limits?: InvokeLimits;
}

export type InvokeReply =
  | { ok: true; status: number; headers: [string, string][]; body: Uint8Array; hostId: string; durationMs: number }
  | { ok: false; error: WireError; hostId?: string };

/**
 * The gateway's token for a direct call channel to one host: the host takes
 * a connection only once its first frame is this token. The request travels
 * on a subject only the gateway may publish to, its reply to the gateway's
 * own inbox, so only the two know it.
 */
export interface OpenCallsRequest {
  token: Uint8Array;
}

/**
 * Where the host takes direct calls: its own channel at `host:port`, and (optional) one port per call thread
 * on the same `host`, each read by that thread itself (the same token, the same frames; docs/architecture.md,
 * "Call threads that read their own calls"). Asked again with the same token, the host names its threads now
 * (a thread replaced since has a new port).
 */
export type OpenCallsReply = { ok: true; hostId: string; host: string; port: number; threadPorts?: number[] } | { ok: false; error: WireError };

export interface SnapshotRequest {
  requestId: string;
  tenant: string;
  name: string;
  digest: string;
  /** Input to the parent's `init` (empty when `initData` names it). */
  initInput: Uint8Array;
  /** The init input is this uploaded object instead: the host fetches it. */
  initData?: InitDataRef;
  /**
   * Keep the parent after its last holder releases it, and reuse a parent
   * kept here with the same ParentKey instead of booting a new one (jobs:
   * docs/jobs.md, "Kept parents"). The request id is the holder's name.
   */
  keep?: boolean;
}

export type SnapshotReply =
  | { ok: true; hostId: string; snapshotId: string; descriptor: Uint8Array; initMs: number; snapshotMs: number; reused?: boolean }
  | { ok: false; error: WireError };

// A parent's snapshot as forks carry it (encoded and checked by snapshot.ts).

export type GlobalType = 'i32' | 'i64' | 'f32' | 'f64';

export interface SnapshotGlobal {
  /** Export name in the rewritten module (`__flurry_global_<i>`). */
  name: string;
  type: GlobalType;
  /** i64 values as decimal strings (they do not fit a double). */
  value: number | string;
}

export interface SnapshotDescriptor {
  snapshotId: string;
  tenant: string;
  function: string;
  /** SHA-256 (hex) of the original module the parent runs. */
  moduleDigest: string;
  /** Linear memory size at snapshot time; a clone's memory is exactly this size. */
  memoryBytes: number;
  maximumPages: number;
  pageSize: number;
  chunkPages: number;
  globals: SnapshotGlobal[];
  /** One bit per page: set when the page is all zeros. */
  zeroPages: Uint8Array;
  /** 8 bytes per chunk: the first bytes of SHA-256 of the chunk's bytes. */
  chunkHashes: Uint8Array;
  /** Host whose memory server serves the pages. */
  serverHostId: string;
  createdAt: number;
}

export interface ForkRequest {
  /** Opaque to the host: names this request's clones (their results, failures stream, stored outputs). */
  requestId: string;
  /**
   * Jobs: the job these clones belong to. A CancelRequest naming it stops
   * them (several jobs may share a kept parent), and the job's results,
   * progress and objects are routed by it. Required with `perIndexResults`,
   * `progressSubject` or `objects`.
   */
  jobId?: string;
  /** Encoded SnapshotDescriptor (see snapshot.ts). */
  descriptor: Uint8Array;
  /** Clone indices to start on this host, with an input each (empty when shared). */
  clones: { index: number; input: Uint8Array }[];
  /** Total clones of the fork, passed to `run(index, count)`. */
  count: number;
  /** Where each clone's CloneResult is published. */
  resultSubject: string;
  /** Fetch the snapshot's recorded working set before the clones need it. */
  prefetch: boolean;
  /**
   * How clones get memory. `lazy` (default): on demand, multicast. The rest are
   * baselines for benchmarks: `unicast` (on demand, no sharing between hosts),
   * `eager` (every clone receives the whole memory before it starts), `cold`
   * (every clone boots the module and runs `init` itself, with `initInput`).
   */
  mode?: ForkMode;
  initInput?: Uint8Array;
  /** `cold`: the init input is this uploaded object instead of `initInput` (fetched once per request by the host). */
  initData?: InitDataRef;
  /**
   * Jobs: publish a successful clone's result to `<resultSubject>.<index>`
   * (a subject of the results stream, kept once per index) and a failed one to
   * `<failSubject>.<index>` (the failures stream), instead of both to
   * `resultSubject`; both through JetStream, retried until acknowledged.
   */
  perIndexResults?: boolean;
  failSubject?: string;
  /** Jobs: where the guest's `progress()` reports go, as CloneProgress. */
  progressSubject?: string;
  /**
   * `reduce`: run the snapshot's `reduce(count)` once, with `clones[0].input`
   * holding the framed outputs (its CloneResult has index `clones[0].index`).
   * Default `run`.
   */
  entry?: 'run' | 'reduce';
  /**
   * A task job (docs/jobs.md, "Tasks"): each clone runs `run_task(task, count)`
   * in one instance for the tasks of the range the job's task server at
   * `subject` gives it (TaskRequest; its host hands them out in batches and
   * asks again only when the range runs dry), and the outputs of consecutive
   * tasks it finished are published as one result, framed per task
   * (`<resultSubject>.<first>-<last>`); the clone itself publishes only a
   * failure.
   */
  tasks?: {
    count: number;
    subject: string;
    /**
     * This host runs the job's reduce (the parent's host): it keeps the outputs
     * of the task runs its clones publish, so that the reduce request need not
     * send them back to it (`keptOutputs`). Dropped with the job's release.
     */
    keepOutputs?: boolean;
  };
  /**
   * A task job's reduce: runs of task outputs this host's own clones of the job
   * published (and kept, `tasks.keepOutputs`), in task order; `clones[0].input`
   * then holds the frames of every other task, in task order. A host that does
   * not hold one of them fails the reduce with `not_found` (the coordinator sends
   * every output then).
   */
  keptOutputs?: KeptRun[];
  /**
   * Jobs: large data through an object store instead of the message. `inputs`
   * names the object holding a clone's input (by index; its `input` is then
   * empty); a successful output of at least `minOutputBytes` is stored as
   * `<outputPrefix>/<index>/<requestId>` and its CloneResult names it in
   * `outputObject` instead of carrying `output`.
   */
  objects?: { store: string; inputs?: Record<number, string>; outputPrefix?: string; minOutputBytes?: number };
  /** Each clone's time limit in `run` (or `reduce`), instead of the host's FLURRY_CALL_TIMEOUT_MS. */
  timeoutMs?: number;
}

export type ForkMode = 'lazy' | 'unicast' | 'eager' | 'cold';

/** Tasks `first` .. `first + count - 1` of a task job, as the attempt `requestId` published them in one result. */
export interface KeptRun {
  requestId: string;
  first: number;
  count: number;
}

export interface ReleaseRequest {
  tenant: string;
  snapshotId: string;
  /**
   * A kept parent: only this holder lets go (the snapshot request's id); the
   * parent stays, idle, once no holder is left. Without it the parent is freed now.
   */
  holder?: string;
}

/** What a host did for a snapshot, returned when it lets go of it. */
export interface ReleaseReply {
  hostId: string;
  server?: { requests: number; chunksSent: number; bytesSent: number; workingSetChunks: number };
  cache?: { chunksRequested: number; chunksUnicast: number; chunksMulticast: number; bytesReceived: number; duplicateChunks: number };
  /** The request was refused (malformed): nothing was released. */
  error?: WireError;
}

/** Sent once the host's clones are all running (memory attached, `on_restore` done). */
export type ForkReply =
  | { ok: true; hostId: string; started: number; runningAt: number; pager: HostRecord['pager']; phases?: ForkPhases }
  | { ok: false; error: WireError; hostId?: string };

/**
 * Where a host's part of a fork went (`npm run bench -- fork` breaks fan-out
 * down by it). Times are ms since the host received the request; its clones'
 * own phases are in their CloneResults.
 */
export interface ForkPhases {
  /** When the host received the request, ms since the epoch on its clock (sub-ms; compare across hosts only with synchronised clocks). */
  receivedAt: number;
  /** The snapshot's memory ready here: the parent's, or the descriptor adopted (page cache, module compiled). */
  preparedMs: number;
  /** Every clone running: the host's answer went out. */
  runningMs: number;
}

export interface PageCounts {
  /** Pages already in this host's cache (or the parent's memory file, for local clones). */
  local: number;
  /** Pages that arrived on the multicast subject, requested by another host or prefetched. */
  multicast: number;
  /** Pages this host requested from the memory server itself. */
  unicast: number;
  zero: number;
}

export interface CloneResult {
  requestId: string;
  hostId: string;
  index: number;
  ok: boolean;
  output?: Uint8Array;
  error?: WireError;
  /** Milliseconds from receiving the fork to the clone running, and in `run`. */
  startMs: number;
  runMs: number;
  /** Milliseconds from receiving the fork to the clone's instance made (its first instruction next). */
  createdMs?: number;
  /** Milliseconds from receiving the fork to the clone's first lazy page fault served (lazy clones that faulted). */
  firstFaultMs?: number;
  pages: PageCounts;
  faultWaitMs: number;
  progress?: { done: number; total: number };
  /** The object (in ForkRequest.objects.store) holding the output, when it was too large to send. */
  outputObject?: string;
  /** A task job's clone that failed in `run_task`: the task it was running (a time limit ends the clone, not only the task). */
  task?: number;
  /**
   * A task job's results of tasks `index` .. `index + taskRunMs.length - 1` in one message (docs/jobs.md,
   * "Tasks"): how long each ran; `output` (or the object) frames their outputs in task order, each a u32 LE
   * length and its bytes (as reduce input). Published to `JobSubjects.taskResults`.
   */
  taskRunMs?: number[];
}

/** Tasks `lo` .. `hi - 1` of a task job. */
export interface TaskRange {
  lo: number;
  hi: number;
}

/**
 * A task job's clone asks its task server for work (JobSubjects.tasks): it
 * reports the tasks whose `run_task` failed since its last request and, when
 * it has nothing left to run, takes more: a range of its own, which it runs
 * without asking again (docs/jobs.md, "Ranges"), or single tasks.
 */
export interface TaskRequest {
  requestId: string;
  hostId: string;
  /** The clone's index. */
  index: number;
  failed: { task: number; error: WireError }[];
  /** Ms from the fork request's arrival at the host to the clone running (instance made, `on_restore` returned): the record's `clonesDetail[].startMs`. */
  startMs?: number;
  /**
   * Asked while the clone still runs the last tasks it has, so that more are there when it ends (no round
   * trip between ranges): never a backup, never held, never `end` (the ask after its running task says that).
   * Without it: the clone has nothing to run.
   */
  ahead?: boolean;
  /** Only reports `failed`: the clone still has tasks of its own (answered with none). */
  report?: boolean;
  /**
   * The range the clone took its tasks from, every one of them handed to its guest: tasks the server counts
   * in its range past `hi` (a split whose answer was lost) or a range it never heard of are given back.
   */
  range?: TaskRange;
}

/**
 * `tasks` to run now, in order, or a `range` to run from its front (the clone's own until a split gives
 * its back away); neither with `end`: the job needs nothing more of this clone; neither without: ask
 * again shortly.
 */
export type TaskReply = { ok: true; tasks: number[]; range?: TaskRange; end: boolean } | { ok: false; error: WireError };

/**
 * The task server asks a clone's host to give away the back of the clone's range (JobSubjects.split): a
 * clone whose range is dry takes it. `lo` names the range (its start when it was given).
 */
export interface TaskSplitRequest {
  requestId: string;
  index: number;
  lo: number;
}

/** `hi`: the clone's range ends there now; tasks from `hi` to its old end are given away (none when `hi` is the old end). */
export type TaskSplitReply = { ok: true; hi: number } | { ok: false; error: WireError };

/** A chunk run on the multicast subject: `chunk` is the first chunk index; `bytes` holds one or more chunks. */
export interface PageMessage {
  chunk: number;
  bytes: Uint8Array;
}

export interface PageFetchRequest {
  hostId: string;
  chunks: number[];
  /** Send the snapshot's recorded working set instead of `chunks` (prefetch at fork time). */
  workingSet?: boolean;
  /** Baseline mode: send the chunks to this subject (one host's own) instead of multicasting them. */
  unicastSubject?: string;
  /** Send even chunks multicast moments ago (a re-request after they did not arrive). */
  force?: boolean;
  /**
   * This host may have missed chunks multicast so far (it was cut off, paused,
   * or dropped as a slow consumer): from now on count it as a new listener,
   * so that chunks sent before now are sent again when it asks.
   */
  relisten?: boolean;
}

export type PageFetchReply = { ok: true; sent: number } | { ok: false; error: WireError };

export interface DrainRequest {
  requestId: string;
}

export type DrainReply = { ok: true; hostId: string } | { ok: false; error: WireError };

/** Error codes that cross the wire; the gateway maps each to one HTTP status. */
export type ErrorCode =
  | 'bad_request'
  | 'unauthorized'
  /** The caller's key is known but its role may not do this (an admin-only route). */
  | 'forbidden'
  | 'invalid_module'
  | 'not_found'
  | 'payload_too_large'
  | 'timeout'
  | 'guest_trap'
  | 'guest_error'
  | 'output_limit'
  | 'no_capacity'
  | 'unavailable'
  | 'conflict'
  /** A tenant's concurrent calls, request rate or running jobs are at their quota: retry after Retry-After. */
  | 'rate_limited'
  /** A tenant's stored data or service instances are at their quota: only deleting or shrinking something helps. */
  | 'quota_exceeded'
  /** A JetStream store is full (its max_bytes): the operator raises the limit or old data expires. */
  | 'storage_full'
  | 'internal';

export interface WireError {
  code: ErrorCode;
  message: string;
  /** When to try again (a full host, a broker away): the gateway answers it as Retry-After. */
  retryAfterSeconds?: number;
}

/** Events that hosts and the gateway publish for logs, CLIs and dashboards. */
export type FleetEvent =
  | { kind: 'host.up'; at: number; hostId: string }
  | { kind: 'host.down'; at: number; hostId: string; reason: string }
  /**
   * The host's broker connection came back (on a cluster, often to another node): a request or reply in flight
   * through the node it lost may be lost. The gateway hears it at once, its next stored heartbeat only seconds later.
   */
  | { kind: 'host.reconnected'; at: number; hostId: string; startedAt: number; brokerOutages: number }
  | { kind: 'function.deployed'; at: number; tenant: string; name: string; digest: string }
  | { kind: 'function.deleted'; at: number; tenant: string; name: string }
  | { kind: 'function.placed'; at: number; tenant: string; name: string; digest: string; hostId: string; initMs: number; requestId: string }
  | { kind: 'function.evicted'; at: number; tenant: string; name: string; digest: string; hostId: string; reason: string };

/** The KV key of a function. */
export function functionKey(tenant: string, name: string): string {
  return `${tenant}.${name}`;
}

/** The object-store name of a module. */
export function moduleObjectName(tenant: string, digest: string): string {
  return `${tenant}/${digest}`;
}

// ---------------------------------------------------------------------------
// Fork-join jobs (gateway/src/jobs/, docs/jobs.md)

export const JobBuckets = {
  /** `<tenant>.<jobId>` -> StoredJob (msgpack). */
  jobs: 'flurry_jobs',
  /** `<tenant>.<sha256(idempotency key)>` -> IdempotencyEntry. */
  jobKeys: 'flurry_job_keys',
  /** `coordinator` -> the gateway replica that runs jobs now; entries expire (lease). */
  lease: 'flurry_job_lease',
} as const;

/**
 * Object store of job data: `<tenant>/<jobId>/spec`, `/descriptor/<snapshotId>` (of a parent not kept), `/reduced`, and
 * data too large for a message (`LARGE_JOB_DATA_BYTES`): `/input`, `/inputs/<i>`, `/reduce-input`, `/out/<i>/<requestId>`.
 */
export const JobObjects = 'flurry_job_data';

/**
 * Object store of clones' outputs too large for a message (`<tenant>/<jobId>/out/<i>/<requestId>`,
 * `/reduce-out/...`): the only job data hosts may write (their NATS permissions allow this store, not JobObjects).
 */
export const JobOutputObjects = 'flurry_job_outputs';

/** JetStream stream of clone results, one message per (job, index). */
export const ResultsStream = 'FLURRY_RESULTS';

/**
 * JetStream stream of failed clone attempts, one message per (attempt, index):
 * a failure is a result too, and one lost in a broker outage would leave the
 * coordinator waiting for the clone's whole time limit.
 */
export const FailuresStream = 'FLURRY_FAILURES';

/**
 * JetStream stream that keeps every job's events (JobEvent, subject `JobSubjects.events`); its
 * sequence numbers are the events' ids on the SSE stream (docs/jobs.md, "Events").
 */
export const JobEventsStream = 'FLURRY_JOB_EVENTS';

/** The most tasks a task job may declare (JobSpec.tasks). */
export const MAX_TASKS = 65_536;

/**
 * A task clone sends the results of the tasks it finished together (one message, TaskResults), each at
 * most this long after it ended, and before its next ask: the task server allows for it before it
 * judges a task a straggler. Every result is a stored message, its acknowledgement and the coordinator
 * hearing it, and the fleet's CPU lands on the cores the guests run on (docs/benchmarks.md). Once a
 * second: the job's progress is reported no more often (PROGRESS_EVERY_MS), the job's end does not wait
 * for it (a clone with nothing left sends first), and a host that dies loses at most that much of a
 * clone's work (what is stored survives).
 */
export const TASK_RESULT_LAG_MS = 1000;

/** Job inputs and outputs at least this large go through the job object store. */
export const LARGE_JOB_DATA_BYTES = 512 * 1024;

export const JobSubjects = {
  /** Every subject of the results stream. */
  allResults: 'flurry.results.>',
  /** Prefix of a job's result subjects; a clone's result is `<prefix>.<index>`. */
  results: (tenant: string, jobId: string) => `flurry.results.${tenant}.${jobId}`,
  result: (tenant: string, jobId: string, index: number) => `flurry.results.${tenant}.${jobId}.${index}`,
  /** A task job's results of tasks first..last (CloneResult.taskRunMs): `<prefix>.<first>-<last>` (taskRange reads it back). */
  taskResults: (tenant: string, jobId: string, first: number, last: number) => `flurry.results.${tenant}.${jobId}.${first}-${last}`,
  /** Every subject of the failures stream. */
  allFailures: 'flurry.failures.>',
  /** Prefix of a job's failed attempts: `<prefix>.<attempt>.<index>` (the attempt is the fork request's id, which starts with the job's). */
  failures: (tenant: string, jobId: string) => `flurry.failures.${tenant}.${jobId}`,
  /** Where one fork request's failed clones go (`<this>.<index>`); `requestId` starts with `<jobId>.`. */
  attemptFailures: (tenant: string, requestId: string) => `flurry.failures.${tenant}.${requestId}`,
  /** Progress reports of a job's clones (core NATS). */
  progress: (tenant: string, jobId: string) => `flurry.jobs.${tenant}.${jobId}.progress`,
  /** A task job's task server, in the coordinator (TaskRequest, TaskReply). */
  tasks: (tenant: string, jobId: string) => `flurry.jobs.${tenant}.${jobId}.tasks`,
  /** A job's typed events (JobEvent). */
  events: (tenant: string, jobId: string) => `flurry.events.${tenant}.job.${jobId}`,
  /** Every subject of the job events stream. */
  allEvents: 'flurry.events.*.job.*',
  /** Requests to the coordinator holding the lease (JobControlRequest). */
  control: 'flurry.jobs.control',
  /** Request to one host: stop every clone of a snapshot now (CancelRequest). */
  cancel: (hostId: string) => `flurry.host.${hostId}.cancel`,
  /** Request to one host: give away the back half of a task clone's range (TaskSplitRequest). */
  split: (hostId: string) => `flurry.host.${hostId}.split`,
} as const;

export type JobState = 'queued' | 'snapshotting' | 'running' | 'reducing' | 'done' | 'failed' | 'cancelled';
export type CloneState = 'pending' | 'running' | 'done' | 'failed';

export interface CloneDetail {
  index: number;
  state: CloneState;
  host?: string;
  attempts: number;
  startMs?: number;
  runMs?: number;
  error?: WireError;
  pages?: PageCounts;
}

export interface JobRecord {
  id: string;
  tenant: string;
  function: string;
  digest: string;
  clones: number;
  state: JobState;
  createdAt: number;
  updatedAt: number;
  startedAt?: number;
  finishedAt?: number;
  parentHost?: string;
  snapshotId?: string;
  /** `fork` or `cold` (docs/jobs.md); missing in records written before boot modes. */
  boot?: JobBoot;
  /** The name of the uploaded data used as the init input, when the job has one. */
  initData?: string;
  /** Whether the parent was a kept one (no init, no new snapshot); set with the snapshot. */
  parentReused?: boolean;
  /** The parent's init and snapshot times (0 for a reused parent). */
  initMs?: number;
  snapshotMs?: number;
  counts: { done: number; failed: number; running: number; pending: number };
  clonesDetail: CloneDetail[];
  pagesFetched: number;
  error?: WireError;
  errors?: { index: number; code: ErrorCode; message: string }[];
  /** The delivery of the job's callback, when it has a callbackUrl. */
  callback?: CallbackOutcome;
  /** A task job: its tasks (docs/jobs.md, "Tasks"). */
  tasks?: TaskCounts;
}

/** Where a task job's tasks stand. */
export interface TaskCounts {
  total: number;
  done: number;
  /** Tasks some clone runs now (a task with a backup counts once). */
  running: number;
  /** Backup tasks handed out: duplicates of tasks still running elsewhere. */
  backups: number;
  /** Results of tasks that had one already, dropped. */
  duplicates: number;
  /** Failures of `run_task`, each counted against its task's retries. */
  failures: number;
}

/** How a job's callback went (docs/jobs.md, "Callbacks"). */
export interface CallbackOutcome {
  /** `pending` until it is delivered (a 2xx answer) or every attempt has failed. */
  state: 'pending' | 'delivered' | 'failed';
  attempts: number;
  /** The last attempt's HTTP status, when the receiver answered. */
  lastStatus?: number;
  /** Why the last attempt failed. */
  lastError?: string;
  /** When the last attempt ended (ms since the epoch). */
  at?: number;
}

/**
 * How a job's clones get the parent's state: `fork` (default) boots one parent,
 * snapshots it and forks every clone from it; `cold` makes no snapshot: every
 * clone (and the reduce) boots from the module and runs `init` itself (the
 * baseline that fork is measured against).
 */
export type JobBoot = 'fork' | 'cold';

/** What a job was asked to do (kept in the job object store). */
export interface JobSpec {
  /** Inline init input (empty when `initData` is set). */
  init: Uint8Array;
  /** The init input is an uploaded data object, pinned to its digest at submit time. */
  initData?: InitDataRef;
  /** Missing in specs written before boot modes: `fork`. */
  boot?: JobBoot;
  /** `false`: free the parent when the job ends instead of keeping it for later jobs (default true). */
  keepParent?: boolean;
  input: Uint8Array;
  inputs?: Uint8Array[];
  timeoutMs: number;
  retries: number;
  reduce: boolean;
  /** Work units: clones take task indices at run time and run `run_task(task, tasks)` (docs/jobs.md, "Tasks"). */
  tasks?: number;
}

/** The value of a job's KV entry: the public record plus the coordinator's own notes. */
export interface StoredJob {
  record: JobRecord;
  /** The JobSpec's object in JobObjects (absent in jobs written before: `<tenant>/<jobId>/spec`). */
  specObject?: string;
  /** Where the final record is POSTed (kept out of the public record: its path or query may hold the tenant's token). */
  callbackUrl?: string;
  /** The request id of each running clone's current attempt, by index. */
  dispatch?: Record<number, string>;
  /** The incarnation (HostRecord.startedAt) of the parent's host when it made the snapshot: a host restarted since has lost it. */
  parentIncarnation?: number;
  cancelRequested?: boolean;
  /**
   * The stream sequence of the last job event stored before this value was written: the
   * record reflects every event of the job up to it (the `state` event's SSE id).
   */
  eventSeq?: number;
  /**
   * The clones whose `clone.done` event the stream has stored. A coordinator
   * that dies between storing a clone's result in the record and storing its
   * event leaves the clone done without an event; the one that resumes the job
   * emits it for the done clones missing here.
   */
  doneEventsStored?: number[];
  /** The W3C traceparent of the request that submitted the job (trace.ts): its fork requests carry it to the hosts. */
  traceparent?: string;
}

export interface IdempotencyEntry {
  jobId: string;
  /** SHA-256 of the request body. */
  bodyHash: string;
}

export interface CloneProgress {
  requestId: string;
  hostId: string;
  index: number;
  done: number;
  total: number;
}

export type JobControlRequest = { action: 'cancel'; tenant: string; jobId: string };
export type JobControlReply = { ok: true; job: JobRecord } | { ok: false; error: WireError };

export interface CancelRequest {
  tenant: string;
  snapshotId: string;
  /** Stop only the clones of the fork requests that named this `ForkRequest.jobId` (a kept parent may serve several jobs at once). */
  jobId?: string;
}

/** Whether a host stopped clones for a CancelRequest. */
export interface CancelReply {
  hostId: string;
  stopped: boolean;
  /** The request was refused (malformed). */
  error?: WireError;
}

export type JobEventKind = 'state' | 'placed' | 'snapshot' | 'forked' | 'progress' | 'clone.done' | 'clone.failed' | 'clone.lost' | 'reduced' | 'done' | 'failed' | 'cancelled';

/** A job event: `kind`, time, ids, and fields of its own. */
export interface JobEvent {
  kind: JobEventKind;
  at: number;
  tenant: string;
  jobId: string;
  [field: string]: unknown;
}

export const TERMINAL_JOB_STATES: readonly JobState[] = ['done', 'failed', 'cancelled'];

export function jobKey(tenant: string, jobId: string): string {
  return `${tenant}.${jobId}`;
}

// ---------------------------------------------------------------------------
// Job data: named uploads used as a parent's init input (docs/api.md, "Job data")

/** The object store holding a tenant's uploaded data: one store per tenant, objects named as uploaded. */
export function dataStoreName(tenant: string): string {
  return `flurry_data_${tenant}`;
}

/** Data names: 1-128 letters, digits, dots, dashes and underscores, starting with a letter or digit (file names such as `db.fasta.gz`). */
export const DATA_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** An uploaded data object, as the API shows it. */
export interface DataRecord {
  name: string;
  bytes: number;
  /** `sha256:<hex>` of the bytes. */
  digest: string;
  createdAt: number;
}

/** Where a host finds an uploaded object, and which version: a host refuses bytes whose digest differs. */
export interface InitDataRef {
  store: string;
  name: string;
  /** `sha256:<hex>`. */
  digest: string;
  bytes: number;
}

// ---------------------------------------------------------------------------
// Services: persistent guest instances behind /svc/<name>/ (docs/services.md)

export const ServiceBuckets = {
  /** `<tenant>.<name>` -> ServiceRecord. */
  services: 'flurry_services',
  /** `<tenant>.<name>` -> ServiceInstanceRecord[] (which host holds which instance). */
  instances: 'flurry_service_instances',
} as const;

export const ServiceSubjects = {
  /** Request to one host: make a persistent instance of a function version (CreateInstanceRequest). */
  create: (hostId: string) => `flurry.host.${hostId}.instance.create`,
  /** Request to one host: destroy an instance (DestroyInstanceRequest). */
  destroy: (hostId: string) => `flurry.host.${hostId}.instance.destroy`,
  /** HTTP requests (InvokeRequest -> InvokeReply) to one instance of a service. */
  request: (tenant: string, service: string, instanceId: string) => `flurry.svc.${tenant}.${service}.${instanceId}`,
  /** Request to one host: keep a service's parent warm for holdMs, so that a scale-out there only clones (StandbyParentRequest). */
  standby: (hostId: string) => `flurry.host.${hostId}.instance.standby`,
} as const;

/** A service's parent to keep warm on a host that may get its next instance; each request renews the hold. */
export interface StandbyParentRequest {
  requestId: string;
  tenant: string;
  name: string;
  digest: string;
  init?: Uint8Array;
  initData?: InitDataRef;
  holdMs: number;
}

export type StandbyParentReply = { ok: true; hostId: string } | { ok: false; error: WireError };

export interface ServiceRecord {
  tenant: string;
  name: string;
  /** The function whose instances serve it, and the version it was created with. */
  function: string;
  digest: string;
  min: number;
  max: number;
  targetConcurrency: number;
  /** The init input its instances' parent is booted with (absent: none; the function version's shared parent). */
  init?: Uint8Array;
  /** Or an uploaded object (PUT /v1/data/:name) as the init input, pinned to its digest at creation. */
  initData?: InitDataRef;
  createdAt: number;
  updatedAt: number;
}

export interface ServiceInstanceRecord {
  id: string;
  host: string;
  digest: string;
  createdAt: number;
  /** When `host` was last written by a migration or a repair (createdAt before that): the hosts' heartbeats older than it say nothing of where the instance is. */
  placedAt?: number;
  /** Set while a gateway migrates the instance (compare-and-set on the record), cleared at commit or abort. */
  migrating?: { target: string; since: number; migrationRequest: string };
}

export interface CreateInstanceRequest {
  requestId: string;
  tenant: string;
  service: string;
  /** The function (name, digest) the instance is a clone of. */
  name: string;
  digest: string;
  instanceId: string;
  /** The parent's init input (ServiceRecord.init): the host boots that parent once and clones it. */
  init?: Uint8Array;
  /** Or the uploaded object the parent's init input is (ServiceRecord.initData); the host reads it. */
  initData?: InitDataRef;
}

export type CreateInstanceReply = { ok: true; hostId: string; instanceId: string; createMs: number } | { ok: false; error: WireError };

export interface DestroyInstanceRequest {
  tenant: string;
  service: string;
  instanceId: string;
}

export type DestroyInstanceReply = { ok: true; hostId: string; existed: boolean } | { ok: false; error: WireError };

/** What a host reports of its service instances in its heartbeat. */
export interface HostServiceInstance {
  tenant: string;
  service: string;
  instanceId: string;
  requests: number;
  /** Being migrated away from this host now (it still owns it until the commit). */
  migrating?: boolean;
}

export function serviceKey(tenant: string, name: string): string {
  return `${tenant}.${name}`;
}

// ---- Live migration of service instances (docs/services.md, "Migration")

export const MigrationSubjects = {
  /** Request to the source host: migrate one of its instances (MigrateInstanceRequest -> MigrateInstanceReply). */
  migrate: (hostId: string) => `flurry.host.${hostId}.instance.migrate`,
  /** Host-to-host steps to the target host (ReceiveStep -> ReceiveStepReply). */
  receive: (hostId: string) => `flurry.host.${hostId}.instance.receive`,
  /**
   * Requests a source hands over to the instance's new host (HandoverRequest -> InvokeReply), bypassing the queue
   * group. Published with the original request's reply subject: the target answers the original caller itself.
   */
  direct: (hostId: string, instanceId: string) => `flurry.host.${hostId}.instance.direct.${instanceId}`,
} as const;

/**
 * A request of an instance that reached its source host, handed over to the target of migration `migrationId`
 * (sent once the commit is on its way): the target runs it only if that commit takes effect, and then answers the
 * reply subject it came with; else it sends nothing and the source, which resumes, runs it.
 */
export interface HandoverRequest {
  migrationId: string;
  request: InvokeRequest;
}

export interface MigrateInstanceRequest {
  requestId: string;
  tenant: string;
  service: string;
  instanceId: string;
  /** Function name and digest (the target warms that version). */
  name: string;
  digest: string;
  target: string;
  downtimeBudgetMs?: number;
  /** Pre-copy rounds at most (default 30); 0: stop-and-copy only (stop first, copy all memory while paused). */
  maxRounds?: number;
  /** Hash the instance's memory on both hosts at the commit (report `verify`); the hashing falls into the pause. */
  verify?: boolean;
}

/** A migration's downtime in its parts; what each is: PrecopyReport.downtime (worker-host/src/migration/precopy.ts). */
export type MigrationDowntime = {
  stopMs: number; waitMs: number; readMs: number; sendMs: number; commitMs: number; targetApplyMs: number; targetCommitMs: number; releaseMs: number;
  commitOutMs?: number; commitBackMs?: number;
};

export interface MigrationReportWire {
  source: string;
  target: string;
  /** See RoundRecord (worker-host/src/migration/precopy.ts). */
  rounds: { pages: number; bytes: number; ms: number; paceBytesPerS?: number; waitedMs?: number }[];
  stopReason: string;
  finalPages: number;
  downtimeMs: number;
  downtime: MigrationDowntime;
  totalMs: number;
  totalBytes: number;
  perPageMs: number;
  /** Requests held during stop-and-copy and handed over to the target (which answers their callers). */
  forwarded: number;
  /** Dirty tracking used: async/sync (native pager) or compare. */
  mode?: string;
  /** With `verify`: SHA-256 of the instance's memory on the source once stopped and on the target once committed. */
  verify?: { sourceMemory: string; targetMemory: string; memoryBytes: number };
  /** Pages the source sent (every round and stop-and-copy) and the target wrote into the instance by the commit: equal, or the target refuses the commit. */
  pagesSent: number;
  pagesApplied?: number;
  /** The commit's answer was lost and the target was asked whether it took effect (it had). */
  outcomeAsked?: boolean;
  /** The instance's memory at the stop (totalBytes / memoryBytes: what the migration sent against the instance's size). */
  memoryBytes: number;
  /** Round 0 sent only the pages written since the instance's fork: the target started from its own copy of the same parent. */
  fromParent?: boolean;
  /** Before round 0: the parent's digest and the target's prepare (which may boot the parent there). */
  prepareMs?: number;
  /** The pages went on a page stream between the hosts (worker-host's migration/page-stream.ts), not through the broker. */
  pageStream?: boolean;
}

export type MigrateInstanceReply = { ok: true; report: MigrationReportWire } | { ok: false; error: WireError };

/**
 * A reply a host keeps for a while after the request ran on a service
 * instance (worker-host/src/reply-table.ts), so that the same request sent
 * again (same requestId: the gateway's resend after a broker node's loss)
 * gets it instead of running twice. A migration's commit carries the
 * instance's kept replies to the target; `ageMs` rather than a time, the two
 * hosts' clocks may differ.
 */
export interface KeptReply {
  requestId: string;
  ageMs: number;
  reply: InvokeReply;
}

/**
 * A request the instance ran on the source lately (one per path, small bodies only): the target runs it once in
 * a throwaway clone of the parent before the commit, so that the moved instance's first requests do not compile
 * the module's code (V8 compiles a wasm function at its first call) nor warm the thread's own paths.
 */
export interface RequestSample {
  method: string;
  path: string;
  query: string;
  headers: [string, string][];
  body: Uint8Array;
}

/** A global's value on the wire (i64 as a decimal string). */
export type WireGlobal = { n: number | null } | { b: string };

export type ReceiveStep =
  /**
   * The target boots the instance's parent (function version and init input) and makes an instance to receive into.
   * `parentDigest`: the SHA-256 of the source's parent snapshot, when the source can send only the pages that differ
   * from it; the target answers `fromParent: true` when its own parent's digest is the same (the instance then starts
   * from it), else round 0 carries every non-zero page. `stream`: where the source listens for the migration's page
   * stream (worker-host's migration/page-stream.ts) and the 32-byte token to say there; the target answers
   * `stream: true` once connected, else the pages come as apply steps.
   */
  | { step: 'prepare'; migrationId: string; requestId: string; tenant: string; service: string; instanceId: string; name: string; digest: string; init?: Uint8Array; initData?: InitDataRef; memoryBytes: number; parentDigest?: string; stream?: { host: string; port: number; token: Uint8Array } }
  /**
   * `replies`: a few of the source's kept replies (KeptReply) not sent before, small enough to ride with the pages
   * (the target keeps them as a quiesce step's): sent along the rounds, they are not all encoded, decoded and
   * checked at once before the stop.
   */
  | { step: 'apply'; migrationId: string; pages: Uint8Array; bytes: Uint8Array; memoryBytes: number; replies?: KeptReply[] }
  /** Round 0 is all sent: the target clears its parent's pages that round 0 did not cover (not sent when it was `fromParent`). */
  | { step: 'settle'; migrationId: string }
  /**
   * After round 0: the target collects garbage (main and guest thread) where the pages came as apply steps (the
   * page stream leaves none), so that none falls into the pause, runs `samples` (RequestSample) in a throwaway clone of the parent, and keeps `replies`, the source's kept
   * replies (KeptReply) not sent before, so that the commit carries only those kept since (decoding and keeping
   * thousands of them took tens of ms of the pause).
   */
  | { step: 'quiesce'; migrationId: string; replies?: KeptReply[]; samples?: RequestSample[] }
  /**
   * The last pages and the globals; the target serves the instance before it answers, unless it is past expiresAt
   * (epoch ms) or it wrote other than `pagesSent` pages into the instance (every round and these last ones).
   * `replies`: the replies the source kept for the instance (KeptReply), newest first, not sent before (quiesce).
   * With a page stream the commit goes on it (worker-host's migration/page-stream.ts), behind the last pages, and
   * carries none; its answer comes back there.
   */
  | { step: 'commit'; migrationId: string; pages: Uint8Array; bytes: Uint8Array; memoryBytes: number; globals: Record<string, WireGlobal>; expiresAt: number; verify?: boolean; pagesSent: number; replies?: KeptReply[] }
  | { step: 'abort'; migrationId: string }
  /** The source's probe while pages travel: the target answers while it is alive. */
  | { step: 'ping'; migrationId: string }
  /**
   * The commit's answer was lost: did it take effect? A target that has not committed the migration marks it
   * refused before it answers, so that its commit can never take effect later.
   */
  | { step: 'status'; migrationId: string };

/**
 * `targetMs` (commit): the target's own time for the step, the last pages and globals in its guest thread (`applyMs`)
 * included; when its handler began and when it answered (`receivedAt`, `answeredAt`: ms since the epoch on the
 * target's clock, sub-ms, to split the round trip where both hosts share a clock). `pagesApplied` (commit, and status when committed): the pages the target wrote into the instance.
 * `outcome` (status): `committed`, or `refused` (never will be) with its `reason`.
 */
export type ReceiveStepReply =
  | { ok: true; targetMs?: { applyMs: number; totalMs: number; receivedAt?: number; answeredAt?: number }; memoryHash?: string; pagesApplied?: number; outcome?: 'committed' | 'refused'; reason?: string; fromParent?: boolean; stream?: boolean }
  | { ok: false; error: WireError };

// ---------------------------------------------------------------------------
// The services controller: autoscaler, consolidation and host drain (docs/autoscaling.md)

export const ControllerBuckets = {
  /** `controller` -> the gateway replica that runs the services controller; entries expire (lease). */
  lease: 'flurry_controller_lease',
  /** `moves` -> ControllerMove[] (the latest consolidation and drain moves, newest last). */
  journal: 'flurry_controller',
} as const;

export const ControllerSubjects = {
  /** Every gateway publishes its in-flight requests per service instance here (ServiceLoadReport). */
  load: 'flurry.svc.load',
  /** Request to the active controller: drain one host (DrainHostRequest -> DrainHostReply). */
  drain: 'flurry.controller.drain',
  /**
   * Request from a host that exits, to the active controller: move its instances away (DrainHostRequest ->
   * DrainHostReply). The host drained is the one in the subject, which only that host may publish to.
   */
  exiting: (hostId: string) => `flurry.controller.exiting.${hostId}`,
  allExiting: 'flurry.controller.exiting.*',
  /** Request to one host: set its state (SetHostStateRequest -> SetHostStateReply). */
  hostState: (hostId: string) => `flurry.host.${hostId}.state`,
} as const;

/** One gateway's requests in flight, per service; sent on every change (throttled) and periodically. */
export interface ServiceLoadReport {
  gateway: string;
  at: number;
  services: ServiceLoad[];
}

export interface ServiceLoad {
  tenant: string;
  service: string;
  /** Requests waiting at the gateway for an instance to exist. */
  held: number;
  /** Requests in flight per instance id. */
  instances: Record<string, number>;
}

export interface DrainHostRequest {
  requestId: string;
  hostId: string;
  /** Why (`api`, `SIGTERM`, ...): recorded with each move. */
  reason: string;
  /** The host is exiting: leave it draining (it deregisters itself) instead of marking it drained. */
  exiting?: boolean;
}

export type DrainHostReply =
  | { ok: true; hostId: string; moved: ControllerMove[]; failed: { instanceId: string; error: string }[] }
  | { ok: false; error: WireError };

export interface SetHostStateRequest {
  state: HostState;
  reason: string;
}

export type SetHostStateReply = { ok: true; hostId: string; state: HostState } | { ok: false; error: WireError };

/** One instance moved by the controller, and why. */
export interface ControllerMove {
  at: number;
  tenant: string;
  service: string;
  instanceId: string;
  from: string;
  to?: string;
  /** `consolidate` or `drain`. */
  kind: 'consolidate' | 'drain';
  reason: string;
  ok: boolean;
  downtimeMs?: number;
  error?: string;
}

// ---- Guest logs (docs/api.md, "Guest logs")

/**
 * JetStream stream of what guests logged, one GuestLogBatch per call, clone or
 * service request, for their owner to read (`GET /v1/functions/:name/logs`).
 */
export const GuestLogsStream = 'FLURRY_GUEST_LOGS';

/** Subjects of the guest logs stream: the tenant first, so a reader is scoped by the caller's tenant. */
export const GuestLogSubjects = {
  /** Every subject of the stream. */
  all: 'flurry.logs.>',
  /** A function's calls (and its warm parent's init). */
  function: (tenant: string, name: string) => `flurry.logs.${tenant}.fn.${name}`,
  /** One clone of a job. */
  clone: (tenant: string, jobId: string, index: number) => `flurry.logs.${tenant}.job.${jobId}.${index}`,
  /** A job's reduce. */
  reduce: (tenant: string, jobId: string) => `flurry.logs.${tenant}.job.${jobId}.reduce`,
  /** Every clone and the reduce of a job. */
  job: (tenant: string, jobId: string) => `flurry.logs.${tenant}.job.${jobId}.*`,
  /** A service's requests, all instances. */
  service: (tenant: string, service: string) => `flurry.logs.${tenant}.svc.${service}`,
} as const;

/** Which run of a guest logged: a function call, a job's clone or reduce, a service request. */
export type GuestLogSource =
  | { kind: 'function'; name: string }
  | { kind: 'clone'; jobId: string; index: number }
  | { kind: 'reduce'; jobId: string }
  | { kind: 'service'; service: string; instanceId: string };

/** The lines one guest run logged, as a host publishes them after the run. */
export interface GuestLogBatch {
  /** When the run ended (ms since the epoch): every line of the batch carries it. */
  at: number;
  tenant: string;
  source: GuestLogSource;
  requestId: string;
  hostId: string;
  lines: { level: 'debug' | 'info' | 'warn' | 'error'; message: string }[];
  /** Lines over the per-call caps, not kept. */
  dropped: number;
}
