/**
 * The records the API answers with, as the document declares them. Each is
 * strict: a field the gateway sends that is not declared here fails the
 * integration suites' response check (test/helpers/openapi-responses.ts),
 * so the document cannot fall behind the code. Times are milliseconds since
 * the Unix epoch; durations milliseconds; sizes bytes.
 */
import { z } from '@hono/zod-openapi';
import { ErrorCode } from './api-app.js';

const int = z.number().int();

/** A function's own limits (functions/function-limits.ts checks them against the fleet's caps). */
export const FunctionLimits = z.strictObject({
  timeoutMs: int.positive().optional().openapi({ description: 'A call\'s (or service request\'s) time limit in ms, at most the gateway\'s FLURRY_INVOKE_TIMEOUT_MS' }),
  memoryBytes: int.positive().optional().openapi({ description: 'Most linear memory its module may declare, at most FLURRY_MAX_GUEST_MEMORY: a module declaring more is refused' }),
  outputBytes: int.positive().optional().openapi({ description: 'Most bytes a call may answer, at most FLURRY_MAX_OUTPUT' }),
}).openapi('FunctionLimits', { description: 'A function\'s own limits instead of the fleet\'s defaults; one left out is the default' });

export const FunctionRecord = z.strictObject({
  tenant: z.string(),
  name: z.string(),
  digest: z.string().openapi({ description: 'SHA-256 of the module bytes, lower-case hex' }),
  size: int.openapi({ description: 'Module size in bytes' }),
  exports: z.array(z.string()).openapi({ description: 'Entry points the module exports (init, handle, run, reduce, ...)' }),
  memory: z.strictObject({ initialPages: int, maximumPages: int }).openapi({ description: 'Linear memory size in 64 KiB wasm pages' }),
  limits: FunctionLimits.optional().openapi({ description: 'Its own limits (PATCH /v1/functions/{name}); absent: the fleet\'s defaults. Kept across redeploys' }),
  createdAt: z.number(),
  updatedAt: z.number(),
}).openapi('FunctionRecord', { description: 'A deployed function' });

const hostState = z.enum(['active', 'draining', 'drained']).openapi('HostState', {
  description: '`active` takes work; `draining` is being emptied; `drained` holds nothing and takes no work',
});

const capacity = {
  id: z.string(),
  startedAt: z.number(),
  heartbeatAt: z.number(),
  cores: int,
  memoryBytes: z.number(),
  guestSlots: int.openapi({ description: 'Guest threads in the host\'s pool' }),
  runningGuests: int.openapi({ description: 'Guest calls running now' }),
  pager: z.enum(['userfaultfd', 'portable']).openapi({ description: '`userfaultfd` when the native pager works on the host' }),
  draining: z.boolean().openapi({ description: 'True once the host has begun draining, or is drained' }),
  state: hostState.optional(),
  releasable: z.boolean().optional().openapi({ description: 'Drained, idle and holding nothing: the machine may be released' }),
  memoryBudget: z.strictObject({ budgetBytes: z.number(), usedBytes: z.number() }).optional()
    .openapi({ description: 'The host\'s memory budget and what its parents, page caches and instances use of it' }),
};

export const HostCapacity = z.strictObject(capacity).openapi('HostCapacity', {
  description: 'What every caller sees of a worker host: its capacity (a user key sees no more)',
});

export const WarmFunction = z.strictObject({ tenant: z.string(), name: z.string(), digest: z.string() })
  .openapi('WarmFunction', { description: 'A function a host holds a warm parent of' });

export const HostRecord = z.strictObject({
  ...capacity,
  pid: int,
  hostname: z.string(),
  warm: z.array(WarmFunction),
  parents: z.array(z.strictObject({
    tenant: z.string(), function: z.string(), moduleDigest: z.string(), initDigest: z.string(), snapshotId: z.string(),
    memoryBytes: z.number(), holders: int, idleSince: z.number().optional(),
  })).optional().openapi({ description: 'Parents of jobs kept for later jobs with the same function version and init' }),
  serviceParents: z.array(z.strictObject({ tenant: z.string(), moduleDigest: z.string(), initDigest: z.string() })).optional()
    .openapi({ description: 'Services\' parents booted with an init input that are warm on the host (a migration there starts from one)' }),
  pageCaches: z.array(z.string()).optional().openapi({ description: 'Snapshots whose pages this host caches for clones' }),
  stateReason: z.string().optional().openapi({ description: 'Why the host is draining or drained' }),
  instances: z.array(z.strictObject({ tenant: z.string(), service: z.string(), instanceId: z.string(), requests: int, migrating: z.boolean().optional() }))
    .optional().openapi({ description: 'The service instances on the host' }),
  rejectedMessages: z.record(z.string(), int).optional().openapi({ description: 'NATS messages the host dropped as malformed, by kind' }),
  brokerOutages: int.optional().openapi({ description: 'How many times the host lost the broker connection' }),
}).openapi('HostRecord', { description: 'A worker host as an admin key sees it: its capacity and what it holds for every tenant' });

export const ErrorInfo = z.strictObject({ code: ErrorCode, message: z.string() })
  .openapi('ErrorInfo', { description: 'A platform error as a job or clone record carries it' });

export const PageCounts = z.strictObject({ local: int, multicast: int, unicast: int, zero: int })
  .openapi('PageCounts', { description: 'Where a clone\'s memory pages came from: on the host already, multicast, asked for by this host alone, or all-zero' });

export const CloneDetail = z.strictObject({
  index: int,
  state: z.enum(['pending', 'running', 'done', 'failed']),
  host: z.string().optional().openapi({ description: 'The host the clone runs or ran on' }),
  attempts: int.openapi({ description: 'How many times it was forked (retries and re-forks after a lost host included)' }),
  startMs: z.number().optional(),
  runMs: z.number().optional(),
  error: ErrorInfo.optional(),
  pages: PageCounts.optional(),
}).openapi('CloneDetail', { description: 'One clone of a job' });

export const JobState = z.enum(['queued', 'snapshotting', 'running', 'reducing', 'done', 'failed', 'cancelled'])
  .openapi('JobState', { description: 'Where a job stands; `done`, `failed` and `cancelled` are final' });

export const CallbackOutcome = z.strictObject({
  state: z.enum(['pending', 'delivered', 'failed']),
  attempts: int,
  lastStatus: int.optional().openapi({ description: 'The last attempt\'s HTTP status, when the receiver answered' }),
  lastError: z.string().optional(),
  at: z.number().optional().openapi({ description: 'When the last attempt ended' }),
}).openapi('CallbackOutcome', { description: 'The delivery of a job\'s callback' });

export const TaskCounts = z.strictObject({
  total: int,
  done: int,
  running: int.openapi({ description: 'Tasks some clone runs now (a task with a backup counts once)' }),
  backups: int.openapi({ description: 'Backup tasks handed out: duplicates of tasks still running elsewhere' }),
  duplicates: int.openapi({ description: 'Results of tasks that had one already, dropped' }),
  failures: int.openapi({ description: 'Failures of run_task, each counted against its task\'s retries' }),
}).openapi('TaskCounts', { description: 'Where a task job\'s tasks stand' });

export const JobRecord = z.strictObject({
  id: z.string(),
  tenant: z.string(),
  function: z.string(),
  digest: z.string().openapi({ description: 'The module digest the job runs' }),
  clones: int,
  state: JobState,
  createdAt: z.number(),
  updatedAt: z.number(),
  startedAt: z.number().optional(),
  finishedAt: z.number().optional(),
  parentHost: z.string().optional().openapi({ description: 'The host of the warm parent that was snapshotted' }),
  snapshotId: z.string().optional(),
  boot: z.enum(['fork', 'cold']).optional().openapi({ description: '`fork`: clones forked from one snapshotted parent; `cold`: every clone booted and ran init itself' }),
  initData: z.string().optional().openapi({ description: 'The uploaded data used as the init input, by name' }),
  parentReused: z.boolean().optional().openapi({ description: 'The parent was kept from an earlier job with the same function version and init' }),
  initMs: z.number().optional(),
  snapshotMs: z.number().optional(),
  counts: z.strictObject({ done: int, failed: int, running: int, pending: int }),
  clonesDetail: z.array(CloneDetail),
  pagesFetched: int.openapi({ description: 'Pages the clones waited for, all together' }),
  error: ErrorInfo.optional().openapi({ description: 'Why the job failed' }),
  errors: z.array(z.strictObject({ index: int, code: ErrorCode, message: z.string() })).optional()
    .openapi({ description: 'Each failed clone\'s error' }),
  callback: CallbackOutcome.optional(),
  tasks: TaskCounts.optional().openapi({ description: 'A job with tasks: its progress is tasks done / total' }),
}).openapi('JobRecord', { description: 'A fork-join job: one snapshot of a warm parent, forked into `clones` clones' });

export const DataRecord = z.strictObject({
  name: z.string(),
  bytes: int,
  digest: z.string().openapi({ description: '`sha256:<hex>` of the bytes' }),
  createdAt: z.number(),
}).openapi('DataRecord', { description: 'Uploaded data, usable as a job\'s or service\'s `initData`' });

export const ServiceInstance = z.strictObject({
  id: z.string(),
  host: z.string(),
  inFlight: int.openapi({ description: 'Requests the answering gateway has in flight to the instance' }),
  createdAt: z.number(),
  migrating: z.strictObject({ target: z.string(), since: z.number(), migrationRequest: z.string() }).optional()
    .openapi({ description: 'Present while a migration of the instance is under way' }),
}).openapi('ServiceInstance', { description: 'One instance of a service and the host that holds it' });

export const ServiceRecord = z.strictObject({
  tenant: z.string(),
  name: z.string(),
  function: z.string(),
  digest: z.string().openapi({ description: 'The function version the service was created with' }),
  init: z.string().optional().openapi({ description: 'The init input of the instances\' parent, base64 (as given)' }),
  initData: z.string().optional().openapi({ description: 'Or the name of the uploaded data that is its init input' }),
  min: int,
  max: int,
  targetConcurrency: int.openapi({ description: 'Requests in flight per instance the autoscaler aims at' }),
  createdAt: z.number(),
  updatedAt: z.number(),
  instances: z.array(ServiceInstance),
}).openapi('ServiceRecord', { description: 'A long-lived service: min..max persistent instances of one function version' });

export const MigrationReport = z.strictObject({
  source: z.string(),
  target: z.string(),
  mode: z.string().optional().openapi({ description: 'Dirty tracking used: `async` / `sync` (native pager) or `compare`' }),
  rounds: z.array(z.strictObject({
    pages: int, bytes: z.number(), ms: z.number(),
    paceBytesPerS: z.number().optional().openapi({ description: 'Paced (FLURRY_MIGRATION_PACE_MIB_S): the rate the round was sent at, bytes a second' }),
    waitedMs: z.number().optional().openapi({ description: 'What the round waited before its slices to keep the instance\'s requests on time on the source: round 0 starts at its floor rate and speeds up while they are (FLURRY_MIGRATION_YIELD_MAX_MS)' }),
  })).openapi({ description: 'Each pre-copy round, round 0 (all non-zero pages) first' }),
  stopReason: z.string().openapi({ description: '`budget`, `not-shrinking`, `max-rounds` or `stop-and-copy`' }),
  memoryBytes: z.number().openapi({ description: 'The instance\'s memory at the stop: `totalBytes` / `memoryBytes` is what the migration sent against its size' }),
  finalPages: int.openapi({ description: 'Pages sent while the instance was paused' }),
  downtimeMs: z.number(),
  downtime: z.strictObject({
    stopMs: z.number(), waitMs: z.number(), readMs: z.number(), sendMs: z.number(), commitMs: z.number(),
    targetApplyMs: z.number(), targetCommitMs: z.number(), releaseMs: z.number(),
    commitOutMs: z.number().optional().openapi({ description: 'Of `commitMs`, from the source\'s send to the target\'s handler (hosts that share a clock)' }),
    commitBackMs: z.number().optional().openapi({ description: 'Of `commitMs`, from the target\'s answer to the source (hosts that share a clock)' }),
  }).openapi({ description: 'Where the pause went' }),
  totalMs: z.number(),
  totalBytes: z.number(),
  perPageMs: z.number(),
  forwarded: int.openapi({ description: 'Requests held during the pause and answered by the target' }),
  verify: z.strictObject({ sourceMemory: z.string(), targetMemory: z.string(), memoryBytes: z.number() }).optional()
    .openapi({ description: 'With `verify`: SHA-256 of the memory on the source once stopped and on the target once committed' }),
  pagesSent: int,
  pagesApplied: int.optional(),
  outcomeAsked: z.boolean().optional().openapi({ description: 'The commit\'s answer was lost and the target was asked whether it took effect' }),
  placementMs: z.number().openapi({ description: 'The gateway\'s placement write, after the pause' }),
  prepareMs: z.number().optional().openapi({ description: 'Before round 0: the parent\'s digest and the target\'s prepare (which may boot the parent there)' }),
  fromParent: z.boolean().optional().openapi({ description: 'Round 0 sent only the pages written since the instance was forked: the target started from its own copy of the same parent' }),
  pageStream: z.boolean().optional().openapi({ description: 'The pages went on a page stream between the two hosts, not through the broker (FLURRY_MIGRATION_STREAM)' }),
}).openapi('MigrationReport', { description: 'What a live migration of a service instance did' });

export const HostMove = z.strictObject({
  at: z.number(),
  tenant: z.string(),
  service: z.string(),
  instanceId: z.string(),
  from: z.string(),
  to: z.string().optional(),
  kind: z.enum(['consolidate', 'drain']),
  reason: z.string(),
  ok: z.boolean(),
  downtimeMs: z.number().optional(),
  error: z.string().optional(),
}).openapi('HostMove', { description: 'One instance moved by the services controller (a consolidation or a drain), and why' });
