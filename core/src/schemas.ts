/**
 * The shape of every message in protocol.ts, as zod schemas: what a process
 * accepts off the wire (NATS messages, KV values, stream messages, job
 * objects). Nothing that crosses a process boundary is trusted, not even a
 * host's reply: checked-decode.ts decodes against these and drops the rest.
 *
 * The TypeScript interfaces in protocol.ts stay the names code uses; at the
 * end of this file each is checked, at compile time, to be the same type as
 * its schema's output, so that a field added to one and not the other fails
 * `tsc -b` instead of being silently stripped on the wire.
 *
 *   const req = MessageSchemas.InvokeRequest.safeParse(value);
 */
import { z } from 'zod';
import type * as P from './protocol.js';
import { CALL_LIMIT_BOUNDS, MAX_TASKS } from './protocol.js';

/**
 * zod reports every bad element of an array (or entry of a record), and an
 * issue costs microseconds: a 1 MiB message of 100,000 wrong numbers took a
 * second to refuse. These stop at the first bad one, reporting it, and parse
 * each element once (a guard in front of zod's own array parse parsed every
 * element twice: a good part of the gateway's checking during a job).
 */
function arrayOf<T extends z.ZodType>(item: T) {
  return z.unknown().transform((v, ctx): z.output<T>[] => {
    if (!Array.isArray(v)) return refuse(ctx, 'expected an array');
    const out: z.output<T>[] = [];
    for (let i = 0; i < v.length; i++) {
      const r = item.safeParse(v[i]);
      if (!r.success) return refuse(ctx, r.error.issues[0]!, i);
      out.push(r.data);
    }
    return out;
  });
}

function recordOf<K extends z.core.$ZodRecordKey, V extends z.ZodType>(key: K, value: V) {
  // Numeric keys arrive as strings, as in any JS object; zod's record reads them as numbers.
  const keyOf = key instanceof z.ZodNumber ? Number : (k: string) => k;
  return z.unknown().transform((v, ctx): Record<z.output<K>, z.output<V>> => {
    if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array) return refuse(ctx, 'expected a map');
    const out: Record<string, z.output<V>> = {};
    for (const [k, x] of Object.entries(v)) {
      const keyOk = z.safeParse(key, keyOf(k));
      const r = keyOk.success ? value.safeParse(x) : keyOk;
      if (!r.success) return refuse(ctx, r.error.issues[0]!, k);
      out[k] = r.data as z.output<V>;
    }
    return out as Record<z.output<K>, z.output<V>>;
  });
}

/** The first bad element's issue (or `why` about the value itself), at its path. */
function refuse(ctx: z.RefinementCtx, why: string | z.core.$ZodIssue, at?: string | number): never {
  if (typeof why === 'string') ctx.addIssue({ code: 'custom', message: why });
  else ctx.addIssue({ code: 'custom', message: why.message, path: [at!, ...why.path] });
  return z.NEVER;
}

const bytes = z.instanceof(Uint8Array, { error: 'expected binary' });
const num = z.number();
const str = z.string();
const headers = arrayOf(z.tuple([str, str]));
/** A non-negative integer: indices, chunk numbers, sizes, times since the epoch. */
const count = z.number().int().nonnegative();
/** A task job's number of tasks (JobSpec.tasks). */
const taskCount = z.number().int().min(1).max(MAX_TASKS);

const errorCode = z.enum([
  'bad_request', 'unauthorized', 'invalid_module', 'not_found', 'payload_too_large', 'timeout', 'guest_trap',
  'guest_error', 'output_limit', 'no_capacity', 'unavailable', 'conflict', 'internal',
  'forbidden', 'rate_limited', 'quota_exceeded', 'storage_full',
]);
const wireError = z.object({ code: errorCode, message: str, retryAfterSeconds: num.optional() });
const failed = z.object({ ok: z.literal(false), error: wireError });

const hostState = z.enum(['active', 'draining', 'drained']);
const pager = z.enum(['userfaultfd', 'portable']);
const initDataRef = z.object({ store: str, name: str, digest: str, bytes: num });
const pageCounts = z.object({ local: num, multicast: num, unicast: num, zero: num });
const warmFunction = z.object({ tenant: str, name: str, digest: str });
const parentKey = { tenant: str, moduleDigest: str, initDigest: str };
const keptParent = z.object({ ...parentKey, function: str, snapshotId: str, memoryBytes: num, holders: num, idleSince: num.optional() });
const hostServiceInstance = z.object({ tenant: str, service: str, instanceId: str, requests: num, migrating: z.boolean().optional() });

const hostRecord = z.object({
  id: str, pid: num, hostname: str, startedAt: num, heartbeatAt: num, cores: num, memoryBytes: num,
  guestSlots: num, runningGuests: num, warm: arrayOf(warmFunction), pager, draining: z.boolean(),
  state: hostState.optional(), stateReason: str.optional(), instances: arrayOf(hostServiceInstance).optional(),
  releasable: z.boolean().optional(), parents: arrayOf(keptParent).optional(), serviceParents: arrayOf(z.object(parentKey)).optional(),
  pageCaches: arrayOf(str).optional(),
  memoryBudget: z.object({ budgetBytes: num, usedBytes: num }).optional(),
  rejectedMessages: recordOf(str, num).optional(),
  brokerOutages: num.optional(),
});

/** A call's time limit (the hosts' FLURRY_CALL_TIMEOUT_MS range). */
const timeLimitMs = z.number().int().min(CALL_LIMIT_BOUNDS.timeoutMs.min).max(CALL_LIMIT_BOUNDS.timeoutMs.max);
/** Answer bytes (the hosts' FLURRY_MAX_OUTPUT range). */
const outputBytes = z.number().int().min(CALL_LIMIT_BOUNDS.outputBytes.min).max(CALL_LIMIT_BOUNDS.outputBytes.max);
const functionLimits = z.object({
  timeoutMs: timeLimitMs.optional(), memoryBytes: z.number().int().min(65536).max(4 * 1024 ** 3).optional(), outputBytes: outputBytes.optional(),
});
const invokeLimits = z.object({ timeoutMs: timeLimitMs.optional(), outputBytes: outputBytes.optional() });

const functionRecord = z.object({
  tenant: str, name: str, digest: str, size: num, exports: arrayOf(str),
  memory: z.object({ initialPages: num, maximumPages: num }), limits: functionLimits.optional(), createdAt: num, updatedAt: num,
});

const placeRequest = z.object({ requestId: str, tenant: str, name: str, digest: str });
const placeReply = z.discriminatedUnion('ok', [z.object({ ok: z.literal(true), hostId: str, initMs: num }), failed]);

const invokeRequest = z.object({
  requestId: str, tenant: str, name: str, digest: str, method: str, path: str, query: str, headers, body: bytes, limits: invokeLimits.optional(),
});
const invokeReply = z.discriminatedUnion('ok', [
  z.object({ ok: z.literal(true), status: num, headers, body: bytes, hostId: str, durationMs: num }),
  failed.extend({ hostId: str.optional() }),
]);

const openCallsRequest = z.object({ token: bytes.refine((t) => t.length === 32, 'a token is 32 bytes') });
const openCallsReply = z.discriminatedUnion('ok', [
  z.object({ ok: z.literal(true), hostId: str, host: str, port: z.number().int().min(1).max(65535), threadPorts: z.array(z.number().int().min(1).max(65535)).max(256).optional() }),
  failed,
]);

const snapshotRequest = z.object({
  requestId: str, tenant: str, name: str, digest: str, initInput: bytes, initData: initDataRef.optional(), keep: z.boolean().optional(),
});
const snapshotReply = z.discriminatedUnion('ok', [
  z.object({ ok: z.literal(true), hostId: str, snapshotId: str, descriptor: bytes, initMs: num, snapshotMs: num, reused: z.boolean().optional() }),
  failed,
]);

const forkRequest = z.object({
  requestId: str, jobId: str.optional(), descriptor: bytes, clones: arrayOf(z.object({ index: num, input: bytes })), count: num,
  resultSubject: str, prefetch: z.boolean(), mode: z.enum(['lazy', 'unicast', 'eager', 'cold']).optional(),
  initInput: bytes.optional(), initData: initDataRef.optional(), perIndexResults: z.boolean().optional(),
  failSubject: str.optional(), progressSubject: str.optional(), entry: z.enum(['run', 'reduce']).optional(),
  tasks: z.object({ count: taskCount, subject: str, keepOutputs: z.boolean().optional() }).optional(),
  keptOutputs: arrayOf(z.object({ requestId: str, first: count, count: count.min(1) })).optional(),
  objects: z.object({ store: str, inputs: recordOf(num, str).optional(), outputPrefix: str.optional(), minOutputBytes: num.optional() }).optional(),
  timeoutMs: num.optional(),
});
/** A duration in ms: finite, not negative. */
const ms = z.number().nonnegative().finite();
const forkPhases = z.object({ receivedAt: ms, preparedMs: ms, runningMs: ms });
const forkReply = z.discriminatedUnion('ok', [
  z.object({ ok: z.literal(true), hostId: str, started: num, runningAt: num, pager, phases: forkPhases.optional() }),
  failed.extend({ hostId: str.optional() }),
]);

const releaseRequest = z.object({ tenant: str, snapshotId: str, holder: str.optional() });
const releaseReply = z.object({
  hostId: str,
  server: z.object({ requests: num, chunksSent: num, bytesSent: num, workingSetChunks: num }).optional(),
  cache: z.object({ chunksRequested: num, chunksUnicast: num, chunksMulticast: num, bytesReceived: num, duplicateChunks: num }).optional(),
  error: wireError.optional(),
});

const cloneResult = z.object({
  requestId: str, hostId: str, index: num, ok: z.boolean(), output: bytes.optional(), error: wireError.optional(),
  startMs: num, runMs: num, createdMs: ms.optional(), firstFaultMs: ms.optional(), pages: pageCounts, faultWaitMs: num,
  progress: z.object({ done: num, total: num }).optional(), outputObject: str.optional(), task: count.optional(),
  taskRunMs: arrayOf(ms).refine((a) => a.length >= 1 && a.length <= MAX_TASKS, { message: `expected 1 to ${MAX_TASKS} tasks` }).optional(),
});
const taskRange = z.object({ lo: count, hi: count });
const taskRequest = z.object({
  requestId: str, hostId: str, index: count, failed: arrayOf(z.object({ task: count, error: wireError })),
  startMs: z.number().finite().nonnegative().optional(), ahead: z.boolean().optional(), report: z.boolean().optional(), range: taskRange.optional(),
});
const taskReply = z.discriminatedUnion('ok', [z.object({ ok: z.literal(true), tasks: arrayOf(count), range: taskRange.optional(), end: z.boolean() }), failed]);
const taskSplitRequest = z.object({ requestId: str, index: count, lo: count });
const taskSplitReply = z.discriminatedUnion('ok', [z.object({ ok: z.literal(true), hi: count }), failed]);
const cloneProgress = z.object({ requestId: str, hostId: str, index: num, done: num, total: num });

const pageMessage = z.object({ chunk: count, bytes });
/** The msgpack body of a snapshot descriptor (snapshot.ts checks its framing, checksum and sizes). */
const snapshotDescriptor = z.object({
  snapshotId: str, tenant: str, function: str, moduleDigest: str, memoryBytes: count, maximumPages: count, pageSize: count, chunkPages: count,
  globals: arrayOf(z.object({ name: str, type: z.enum(['i32', 'i64', 'f32', 'f64']), value: z.union([num, str]) })),
  zeroPages: bytes, chunkHashes: bytes, serverHostId: str, createdAt: num,
});
const pageFetchRequest = z.object({
  hostId: str, chunks: arrayOf(count), workingSet: z.boolean().optional(), unicastSubject: str.optional(),
  force: z.boolean().optional(), relisten: z.boolean().optional(),
});
const pageFetchReply = z.discriminatedUnion('ok', [z.object({ ok: z.literal(true), sent: num }), failed]);

const drainRequest = z.object({ requestId: str });
const drainReply = z.discriminatedUnion('ok', [z.object({ ok: z.literal(true), hostId: str }), failed]);

const fleetEvent = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('host.up'), at: num, hostId: str }),
  z.object({ kind: z.literal('host.down'), at: num, hostId: str, reason: str }),
  z.object({ kind: z.literal('host.reconnected'), at: num, hostId: str, startedAt: num, brokerOutages: count }),
  z.object({ kind: z.literal('function.deployed'), at: num, tenant: str, name: str, digest: str }),
  z.object({ kind: z.literal('function.deleted'), at: num, tenant: str, name: str }),
  z.object({ kind: z.literal('function.placed'), at: num, tenant: str, name: str, digest: str, hostId: str, initMs: num, requestId: str }),
  z.object({ kind: z.literal('function.evicted'), at: num, tenant: str, name: str, digest: str, hostId: str, reason: str }),
]);

// ---- Jobs

const jobState = z.enum(['queued', 'snapshotting', 'running', 'reducing', 'done', 'failed', 'cancelled']);
const cloneDetail = z.object({
  index: num, state: z.enum(['pending', 'running', 'done', 'failed']), host: str.optional(), attempts: num,
  startMs: num.optional(), runMs: num.optional(), error: wireError.optional(), pages: pageCounts.optional(),
});
const jobBoot = z.enum(['fork', 'cold']);
const callbackOutcome = z.object({
  state: z.enum(['pending', 'delivered', 'failed']), attempts: num, lastStatus: num.optional(), lastError: str.optional(), at: num.optional(),
});
const jobRecord = z.object({
  id: str, tenant: str, function: str, digest: str, clones: num, state: jobState, createdAt: num, updatedAt: num,
  startedAt: num.optional(), finishedAt: num.optional(), parentHost: str.optional(), snapshotId: str.optional(),
  boot: jobBoot.optional(), initData: str.optional(), parentReused: z.boolean().optional(),
  initMs: num.optional(), snapshotMs: num.optional(),
  counts: z.object({ done: num, failed: num, running: num, pending: num }),
  clonesDetail: arrayOf(cloneDetail), pagesFetched: num, error: wireError.optional(),
  errors: arrayOf(z.object({ index: num, code: errorCode, message: str })).optional(),
  callback: callbackOutcome.optional(),
  tasks: z.object({ total: num, done: num, running: num, backups: num, duplicates: num, failures: num }).optional(),
});
const jobSpec = z.object({
  init: bytes, initData: initDataRef.optional(), boot: jobBoot.optional(), keepParent: z.boolean().optional(),
  input: bytes, inputs: arrayOf(bytes).optional(), timeoutMs: num, retries: num, reduce: z.boolean(), tasks: taskCount.optional(),
});
const storedJob = z.object({
  record: jobRecord, callbackUrl: str.optional(), specObject: str.optional(), dispatch: recordOf(num, str).optional(), parentIncarnation: num.optional(),
  cancelRequested: z.boolean().optional(), eventSeq: num.optional(), doneEventsStored: arrayOf(num).optional(), traceparent: str.optional(),
});
const idempotencyEntry = z.object({ jobId: str, bodyHash: str });
const jobControlRequest = z.object({ action: z.literal('cancel'), tenant: str, jobId: str });
const jobControlReply = z.discriminatedUnion('ok', [z.object({ ok: z.literal(true), job: jobRecord }), failed]);
const cancelRequest = z.object({ tenant: str, snapshotId: str, jobId: str.optional() });
const cancelReply = z.object({ hostId: str, stopped: z.boolean(), error: wireError.optional() });
const jobEvent = z.object({
  kind: z.enum(['state', 'placed', 'snapshot', 'forked', 'progress', 'clone.done', 'clone.failed', 'clone.lost', 'reduced', 'done', 'failed', 'cancelled']),
  at: num, tenant: str, jobId: str,
}).catchall(z.unknown());

// ---- Services, migration, controller

const standbyParentRequest = z.object({
  requestId: str, tenant: str, name: str, digest: str, init: bytes.optional(), initData: initDataRef.optional(), holdMs: num,
});
const standbyParentReply = z.discriminatedUnion('ok', [z.object({ ok: z.literal(true), hostId: str }), failed]);
const serviceRecord = z.object({
  tenant: str, name: str, function: str, digest: str, min: num, max: num, targetConcurrency: num,
  init: bytes.optional(), initData: initDataRef.optional(), createdAt: num, updatedAt: num,
});
const serviceInstanceRecord = z.object({
  id: str, host: str, digest: str, createdAt: num, placedAt: num.optional(),
  migrating: z.object({ target: str, since: num, migrationRequest: str }).optional(),
});
const createInstanceRequest = z.object({
  requestId: str, tenant: str, service: str, name: str, digest: str, instanceId: str, init: bytes.optional(), initData: initDataRef.optional(),
});
const createInstanceReply = z.discriminatedUnion('ok', [z.object({ ok: z.literal(true), hostId: str, instanceId: str, createMs: num }), failed]);
const destroyInstanceRequest = z.object({ tenant: str, service: str, instanceId: str });
const destroyInstanceReply = z.discriminatedUnion('ok', [z.object({ ok: z.literal(true), hostId: str, existed: z.boolean() }), failed]);

const migrateInstanceRequest = z.object({
  requestId: str, tenant: str, service: str, instanceId: str, name: str, digest: str, target: str,
  downtimeBudgetMs: num.optional(), maxRounds: num.optional(), verify: z.boolean().optional(),
});
const migrationReport = z.object({
  source: str, target: str, rounds: arrayOf(z.object({ pages: num, bytes: num, ms: num, paceBytesPerS: num.optional(), waitedMs: num.optional() })), stopReason: str, finalPages: num, downtimeMs: num,
  downtime: z.object({
    stopMs: num, waitMs: num, readMs: num, sendMs: num, commitMs: num, targetApplyMs: num, targetCommitMs: num, releaseMs: num,
    commitOutMs: num.optional(), commitBackMs: num.optional(),
  }),
  totalMs: num, totalBytes: num, perPageMs: num, forwarded: num, mode: str.optional(),
  verify: z.object({ sourceMemory: str, targetMemory: str, memoryBytes: num }).optional(),
  pagesSent: num, pagesApplied: num.optional(), outcomeAsked: z.boolean().optional(), memoryBytes: num, fromParent: z.boolean().optional(), prepareMs: num.optional(),
  pageStream: z.boolean().optional(),
});
const migrateInstanceReply = z.discriminatedUnion('ok', [z.object({ ok: z.literal(true), report: migrationReport }), failed]);

/** Page numbers, 4 bytes each. */
const pageList = bytes.refine((b) => b.length % 4 === 0, 'pages is not a list of u32');
const keptReply = z.object({ requestId: str, ageMs: count, reply: invokeReply });
const requestSample = z.object({ method: str, path: str, query: str, headers, body: bytes });
const wireGlobal = z.union([z.object({ n: num.nullable() }), z.object({ b: str })]);
const receiveStep = z.discriminatedUnion('step', [
  z.object({
    step: z.literal('prepare'), migrationId: str, requestId: str, tenant: str, service: str, instanceId: str, name: str, digest: str,
    init: bytes.optional(), initData: initDataRef.optional(), memoryBytes: count, parentDigest: str.optional(),
    stream: z.object({ host: str.min(1).max(255), port: count.min(1).max(65535), token: bytes.refine((t) => t.length === 32, 'a token is 32 bytes') }).optional(),
  }),
  z.object({ step: z.literal('apply'), migrationId: str, pages: pageList, bytes, memoryBytes: count, replies: arrayOf(keptReply).optional() }),
  z.object({ step: z.literal('settle'), migrationId: str }),
  z.object({ step: z.literal('quiesce'), migrationId: str, replies: arrayOf(keptReply).optional(), samples: arrayOf(requestSample).optional() }),
  z.object({
    step: z.literal('commit'), migrationId: str, pages: pageList, bytes, memoryBytes: count, globals: recordOf(str, wireGlobal),
    expiresAt: count, verify: z.boolean().optional(), pagesSent: count, replies: arrayOf(keptReply).optional(),
  }),
  z.object({ step: z.literal('abort'), migrationId: str }),
  z.object({ step: z.literal('ping'), migrationId: str }),
  z.object({ step: z.literal('status'), migrationId: str }),
]);
const handoverRequest = z.object({ migrationId: str, request: invokeRequest });
const receiveStepReply = z.discriminatedUnion('ok', [
  z.object({
    ok: z.literal(true), targetMs: z.object({ applyMs: num, totalMs: num, receivedAt: num.optional(), answeredAt: num.optional() }).optional(), memoryHash: str.optional(),
    pagesApplied: count.optional(), outcome: z.enum(['committed', 'refused']).optional(), reason: str.optional(),
    fromParent: z.boolean().optional(), stream: z.boolean().optional(),
  }),
  failed,
]);

const serviceLoadReport = z.object({
  gateway: str, at: num,
  services: arrayOf(z.object({ tenant: str, service: str, held: num, instances: recordOf(str, num) })),
});
const drainHostRequest = z.object({ requestId: str, hostId: str, reason: str, exiting: z.boolean().optional() });
const controllerMove = z.object({
  at: num, tenant: str, service: str, instanceId: str, from: str, to: str.optional(), kind: z.enum(['consolidate', 'drain']),
  reason: str, ok: z.boolean(), downtimeMs: num.optional(), error: str.optional(),
});
const drainHostReply = z.discriminatedUnion('ok', [
  z.object({ ok: z.literal(true), hostId: str, moved: arrayOf(controllerMove), failed: arrayOf(z.object({ instanceId: str, error: str })) }),
  failed,
]);
const setHostStateRequest = z.object({ state: hostState, reason: str });
const setHostStateReply = z.discriminatedUnion('ok', [z.object({ ok: z.literal(true), hostId: str, state: hostState }), failed]);

const guestLogSource = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('function'), name: str }),
  z.object({ kind: z.literal('clone'), jobId: str, index: count }),
  z.object({ kind: z.literal('reduce'), jobId: str }),
  z.object({ kind: z.literal('service'), service: str, instanceId: str }),
]);
const guestLogBatch = z.object({
  at: count, tenant: str, source: guestLogSource, requestId: str, hostId: str,
  lines: arrayOf(z.object({ level: z.enum(['debug', 'info', 'warn', 'error']), message: str })), dropped: count,
});

/** Every message kind, by the name of its type in protocol.ts. */
export const MessageSchemas = {
  HostRecord: hostRecord,
  FunctionRecord: functionRecord,
  PlaceRequest: placeRequest,
  PlaceReply: placeReply,
  InvokeRequest: invokeRequest,
  InvokeReply: invokeReply,
  OpenCallsRequest: openCallsRequest,
  OpenCallsReply: openCallsReply,
  SnapshotRequest: snapshotRequest,
  SnapshotReply: snapshotReply,
  ForkRequest: forkRequest,
  ForkReply: forkReply,
  ReleaseRequest: releaseRequest,
  ReleaseReply: releaseReply,
  CloneResult: cloneResult,
  CloneProgress: cloneProgress,
  TaskRequest: taskRequest,
  TaskReply: taskReply,
  TaskSplitRequest: taskSplitRequest,
  TaskSplitReply: taskSplitReply,
  PageMessage: pageMessage,
  SnapshotDescriptor: snapshotDescriptor,
  PageFetchRequest: pageFetchRequest,
  PageFetchReply: pageFetchReply,
  DrainRequest: drainRequest,
  DrainReply: drainReply,
  FleetEvent: fleetEvent,
  JobSpec: jobSpec,
  StoredJob: storedJob,
  IdempotencyEntry: idempotencyEntry,
  JobControlRequest: jobControlRequest,
  JobControlReply: jobControlReply,
  CancelRequest: cancelRequest,
  CancelReply: cancelReply,
  JobEvent: jobEvent,
  StandbyParentRequest: standbyParentRequest,
  StandbyParentReply: standbyParentReply,
  ServiceRecord: serviceRecord,
  ServiceInstanceRecords: arrayOf(serviceInstanceRecord),
  CreateInstanceRequest: createInstanceRequest,
  CreateInstanceReply: createInstanceReply,
  DestroyInstanceRequest: destroyInstanceRequest,
  DestroyInstanceReply: destroyInstanceReply,
  MigrateInstanceRequest: migrateInstanceRequest,
  MigrateInstanceReply: migrateInstanceReply,
  ReceiveStep: receiveStep,
  ReceiveStepReply: receiveStepReply,
  HandoverRequest: handoverRequest,
  ServiceLoadReport: serviceLoadReport,
  DrainHostRequest: drainHostRequest,
  DrainHostReply: drainHostReply,
  SetHostStateRequest: setHostStateRequest,
  SetHostStateReply: setHostStateReply,
  ControllerMoves: arrayOf(controllerMove),
  GuestLogBatch: guestLogBatch,
} as const;

export type MessageKind = keyof typeof MessageSchemas;
/** The checked value of a message kind. */
export type Message<K extends MessageKind> = z.output<(typeof MessageSchemas)[K]>;

// ---- Compile-time: each schema's output is exactly the protocol.ts type of the same name.

/** Optional fields read `T | undefined` on both sides; any Uint8Array is one. */
type Normal<T> = T extends Uint8Array ? Uint8Array : T extends readonly (infer E)[] ? Normal<E>[] : T extends object ? { [K in keyof T]: Normal<T[K]> } : T;
type Same<A, B> = (<X>() => X extends Normal<A> ? 1 : 2) extends (<X>() => X extends Normal<B> ? 1 : 2) ? true : false;
/** Each message kind as protocol.ts declares it (the schemas' outputs are the same, up to Uint8Array's buffer type). */
export type Protocol = {
  HostRecord: P.HostRecord; FunctionRecord: P.FunctionRecord; PlaceRequest: P.PlaceRequest; PlaceReply: P.PlaceReply;
  InvokeRequest: P.InvokeRequest; InvokeReply: P.InvokeReply; OpenCallsRequest: P.OpenCallsRequest; OpenCallsReply: P.OpenCallsReply; SnapshotRequest: P.SnapshotRequest; SnapshotReply: P.SnapshotReply;
  ForkRequest: P.ForkRequest; ForkReply: P.ForkReply; ReleaseRequest: P.ReleaseRequest; ReleaseReply: P.ReleaseReply;
  CloneResult: P.CloneResult; CloneProgress: P.CloneProgress; TaskRequest: P.TaskRequest; TaskReply: P.TaskReply; TaskSplitRequest: P.TaskSplitRequest; TaskSplitReply: P.TaskSplitReply; PageMessage: P.PageMessage; SnapshotDescriptor: P.SnapshotDescriptor; PageFetchRequest: P.PageFetchRequest;
  PageFetchReply: P.PageFetchReply; DrainRequest: P.DrainRequest; DrainReply: P.DrainReply; FleetEvent: P.FleetEvent;
  JobSpec: P.JobSpec; StoredJob: P.StoredJob; IdempotencyEntry: P.IdempotencyEntry; JobControlRequest: P.JobControlRequest;
  JobControlReply: P.JobControlReply; CancelRequest: P.CancelRequest; CancelReply: P.CancelReply; JobEvent: P.JobEvent;
StandbyParentRequest: P.StandbyParentRequest; StandbyParentReply: P.StandbyParentReply;
  ServiceRecord: P.ServiceRecord; ServiceInstanceRecords: P.ServiceInstanceRecord[]; CreateInstanceRequest: P.CreateInstanceRequest;
  CreateInstanceReply: P.CreateInstanceReply; DestroyInstanceRequest: P.DestroyInstanceRequest; DestroyInstanceReply: P.DestroyInstanceReply;
  MigrateInstanceRequest: P.MigrateInstanceRequest; MigrateInstanceReply: P.MigrateInstanceReply; ReceiveStep: P.ReceiveStep;
  ReceiveStepReply: P.ReceiveStepReply; HandoverRequest: P.HandoverRequest; ServiceLoadReport: P.ServiceLoadReport; DrainHostRequest: P.DrainHostRequest;
  DrainHostReply: P.DrainHostReply; SetHostStateRequest: P.SetHostStateRequest; SetHostStateReply: P.SetHostStateReply;
  ControllerMoves: P.ControllerMove[]; GuestLogBatch: P.GuestLogBatch;
};
/** Fails to compile, naming the kind, when a schema and its protocol type differ (or a kind lacks either). */
export const schemasMatchProtocol: { [K in MessageKind | keyof Protocol]: K extends MessageKind ? K extends keyof Protocol ? Same<Message<K>, Protocol[K]> : never : never } = {
  HostRecord: true, FunctionRecord: true, PlaceRequest: true, PlaceReply: true, InvokeRequest: true, InvokeReply: true, OpenCallsRequest: true, OpenCallsReply: true,
  SnapshotRequest: true, SnapshotReply: true, ForkRequest: true, ForkReply: true, ReleaseRequest: true, ReleaseReply: true,
  CloneResult: true, CloneProgress: true, TaskRequest: true, TaskReply: true, TaskSplitRequest: true, TaskSplitReply: true, PageMessage: true, SnapshotDescriptor: true, PageFetchRequest: true, PageFetchReply: true, DrainRequest: true,
  DrainReply: true, FleetEvent: true, JobSpec: true, StoredJob: true, IdempotencyEntry: true, JobControlRequest: true,
  JobControlReply: true, CancelRequest: true, CancelReply: true, JobEvent: true, StandbyParentRequest: true,
  StandbyParentReply: true, ServiceRecord: true, ServiceInstanceRecords: true, CreateInstanceRequest: true, CreateInstanceReply: true,
  DestroyInstanceRequest: true, DestroyInstanceReply: true, MigrateInstanceRequest: true, MigrateInstanceReply: true, ReceiveStep: true,
  ReceiveStepReply: true, HandoverRequest: true, ServiceLoadReport: true, DrainHostRequest: true, DrainHostReply: true, SetHostStateRequest: true,
  SetHostStateReply: true, ControllerMoves: true, GuestLogBatch: true,
};
