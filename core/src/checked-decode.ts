/**
 * Decoding an untrusted message: msgpack, then a size limit, a walk for
 * prototype-polluting keys and nesting depth, then its schema (schemas.ts).
 * A message that fails any of these is dropped: counted by kind, logged the
 * first time its kind fails, and the caller gets `undefined` (or a
 * `bad_request` FlurryError from `decodeOrRefuse`, for a request that can be
 * answered). Nothing here throws on bad input.
 *
 *   const record = decodeChecked('HostRecord', entry.value);   // a KV value, a stream message
 *   if (!record) return;                                       // dropped, counted, logged once
 *
 * NATS requests and messages are decoded by nats-call.ts (serve, listen) with it.
 */
import { CallChecks } from './call-checks.js';
import { decode } from './codec.js';
import { FlurryError } from './errors.js';
import type { Logger } from './log.js';
import type { ErrorCode } from './protocol.js';
import { MessageSchemas, type Message, type MessageKind } from './schemas.js';

const KiB = 1024;
const MiB = 1024 * KiB;
/** Ids, names and small numbers only. */
const CONTROL = 64 * KiB;
/** Lists that grow with the fleet (hosts' instances, moves, chunk lists, job records). */
const LISTS = 8 * MiB;
/** Messages that carry guest data (bodies, inputs, outputs, pages); NATS's max_payload bounds them further. */
const BULK = 64 * MiB;

/** The most bytes a message of each kind may have. */
export const MessageByteLimits: Record<MessageKind, number> = {
  HostRecord: LISTS, FunctionRecord: CONTROL, PlaceRequest: CONTROL, PlaceReply: CONTROL,
  InvokeRequest: BULK, InvokeReply: BULK, OpenCallsRequest: CONTROL, OpenCallsReply: CONTROL, SnapshotRequest: BULK, SnapshotReply: BULK, ForkRequest: BULK, ForkReply: CONTROL,
  ReleaseRequest: CONTROL, ReleaseReply: CONTROL, CloneResult: BULK, CloneProgress: CONTROL, TaskRequest: CONTROL, TaskReply: CONTROL, TaskSplitRequest: CONTROL, TaskSplitReply: CONTROL, PageMessage: BULK, SnapshotDescriptor: BULK,
  PageFetchRequest: LISTS, PageFetchReply: CONTROL, DrainRequest: CONTROL, DrainReply: CONTROL, FleetEvent: CONTROL,
  JobSpec: BULK, StoredJob: BULK, IdempotencyEntry: CONTROL, JobControlRequest: CONTROL, JobControlReply: BULK,
  CancelRequest: CONTROL, CancelReply: CONTROL, JobEvent: BULK,
  StandbyParentRequest: BULK, StandbyParentReply: CONTROL, ServiceRecord: BULK, ServiceInstanceRecords: LISTS,
  CreateInstanceRequest: BULK, CreateInstanceReply: CONTROL, DestroyInstanceRequest: CONTROL, DestroyInstanceReply: CONTROL,
  MigrateInstanceRequest: CONTROL, MigrateInstanceReply: LISTS, ReceiveStep: BULK, ReceiveStepReply: CONTROL, HandoverRequest: BULK,
  ServiceLoadReport: LISTS, DrainHostRequest: CONTROL, DrainHostReply: LISTS, SetHostStateRequest: CONTROL,
  SetHostStateReply: CONTROL, ControllerMoves: LISTS, GuestLogBatch: LISTS,
};

/** Deeper than any message of protocol.ts nests (a job event's record: 6). */
const MAX_DEPTH = 32;
/**
 * Keys that reach an object's prototype when a value is copied key by key.
 * msgpackr already renames a `__proto__` key to `__proto_` (that is the one it
 * leaves), JSON.parse keeps it as an own key.
 */
const POLLUTING_KEYS = new Set(['__proto__', '__proto_', 'constructor', 'prototype']);

const rejected = new Map<MessageKind, number>();
let log: Logger | undefined;

/** Where rejections are logged (once per kind); the process's logger, set at start. */
export function logRejectedMessagesTo(logger: Logger): void {
  log = logger;
}

/** Messages dropped so far, by kind (a host's record and the gateway's /healthz show them). */
export function rejectedMessages(): Record<string, number> {
  return Object.fromEntries(rejected);
}

/** The message, checked against its kind's schema; `undefined` (counted and logged) when it is not one. */
export function decodeChecked<K extends MessageKind>(kind: K, data: Uint8Array, subject?: string): Message<K> | undefined {
  const checked = check(kind, data);
  if (typeof checked === 'string') {
    reject(kind, checked, subject);
    return undefined;
  }
  return checked;
}

/**
 * As decodeChecked, but a message that is not one throws a FlurryError saying why: `bad_request` for a
 * request to answer or a reply awaited, `internal` for a stored value (a job record) that should have been one.
 */
export function decodeOrRefuse<K extends MessageKind>(kind: K, data: Uint8Array, subject?: string, code: ErrorCode = 'bad_request'): Message<K> {
  const checked = check(kind, data);
  if (typeof checked === 'string') {
    reject(kind, checked, subject);
    throw new FlurryError(code, `malformed ${kind}: ${checked}`);
  }
  return checked;
}

/** Why `data` is not a message of `kind`, or undefined when it is one; counts and logs nothing (for tests and tools). */
export function whyMalformed(kind: MessageKind, data: Uint8Array): string | undefined {
  const checked = check(kind, data);
  return typeof checked === 'string' ? checked : undefined;
}

/** The checked value, or why it is not one. */
function check<K extends MessageKind>(kind: K, data: Uint8Array): Message<K> | string {
  const limit = MessageByteLimits[kind];
  if (data.length > limit) return `${data.length} bytes, more than the ${limit} a ${kind} may have`;
  let value: unknown;
  try {
    value = decode(data, limit);
  } catch (err) {
    return `not msgpack (${(err as Error).message})`;
  }
  const unsafe = unsafeShape(value, 0);
  if (unsafe) return unsafe;
  // A call's messages are checked by hand first (call-checks.ts); what that does not accept, the schema decides.
  const quick = (CallChecks as Partial<Record<MessageKind, (v: unknown) => unknown>>)[kind]?.(value);
  if (quick !== undefined) return quick as Message<K>;
  const result = MessageSchemas[kind].safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0];
    return `${issue.path.length > 0 ? issue.path.join('.') : 'the message'}: ${issue.message}`.slice(0, 300);
  }
  return result.data as Message<K>;
}

/** A polluting key or a nesting deeper than any message has, else undefined. */
function unsafeShape(value: unknown, depth: number): string | undefined {
  if (typeof value !== 'object' || value === null || value instanceof Uint8Array) return undefined;
  if (depth > MAX_DEPTH) return `nested deeper than ${MAX_DEPTH}`;
  if (Array.isArray(value)) {
    for (const v of value) {
      const bad = unsafeShape(v, depth + 1);
      if (bad) return bad;
    }
    return undefined;
  }
  // Decoded maps are plain objects: for-in sees their own keys only, without the array Object.keys makes.
  for (const key in value) {
    if (POLLUTING_KEYS.has(key)) return `forbidden key ${key}`;
    const bad = unsafeShape((value as Record<string, unknown>)[key], depth + 1);
    if (bad) return bad;
  }
  return undefined;
}

function reject(kind: MessageKind, reason: string, subject: string | undefined): void {
  const n = (rejected.get(kind) ?? 0) + 1;
  rejected.set(kind, n);
  // Once per kind: a flood of bad messages must not become a flood of log lines.
  if (n === 1) log?.warn({ kind, subject, reason }, 'malformed message dropped (further ones of this kind are counted, not logged)');
}
