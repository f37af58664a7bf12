/**
 * Every NATS subject of protocol.ts, once: who listens on it, the message
 * kind it carries (schemas.ts) and the kind of its reply, if it has one.
 * Listeners decode with `decodeChecked(entry.request, …)`; the NATS fuzz test
 * walks this table, so a subject added here is fuzzed, and the permissions of
 * each role can be derived from it.
 *
 *   const { request, reply } = SubjectTable.invoke; // 'InvokeRequest', 'InvokeReply'
 */
import type { MessageKind } from './schemas.js';

export interface SubjectEntry {
  /** Who subscribes: a worker host, the gateway, or only clients (CLIs, SDK, benchmarks). */
  listener: 'host' | 'gateway' | 'client';
  /** The builder family in protocol.ts that names its subjects (ForkRequest: named by the fork's sender). */
  family: 'Subjects' | 'JobSubjects' | 'ServiceSubjects' | 'MigrationSubjects' | 'ControllerSubjects' | 'GuestLogSubjects' | 'ForkRequest';
  /** Every subject of the entry, as a NATS wildcard (`*` one token, `>` the rest): what permissions grant. */
  pattern: string;
  request: MessageKind;
  /** Absent: a plain publish, nobody answers. */
  reply?: MessageKind;
  /** Also read from a JetStream stream (the stream's messages are checked the same way). */
  stream?: boolean;
  /** How long a caller waits for the reply unless it says otherwise (nats-call.ts `call`); every entry with a reply has one. */
  timeoutMs?: number;
}

export const SubjectTable = {
  place: { listener: 'host', family: 'Subjects', pattern: 'flurry.host.*.place', request: 'PlaceRequest', reply: 'PlaceReply', timeoutMs: 30_000 },
  drain: { listener: 'host', family: 'Subjects', pattern: 'flurry.host.*.drain', request: 'DrainRequest', reply: 'DrainReply', timeoutMs: 5_000 },
  /** The gateway opens a direct call channel to one host (call-frames.ts); the host answers where it listens. */
  openCalls: { listener: 'host', family: 'Subjects', pattern: 'flurry.host.*.calls', request: 'OpenCallsRequest', reply: 'OpenCallsReply', timeoutMs: 5_000 },
  invoke: { listener: 'host', family: 'Subjects', pattern: 'flurry.fn.*.*.*.invoke', request: 'InvokeRequest', reply: 'InvokeReply', timeoutMs: 30_000 },
  snapshot: { listener: 'host', family: 'Subjects', pattern: 'flurry.host.*.snapshot', request: 'SnapshotRequest', reply: 'SnapshotReply', timeoutMs: 120_000 },
  fork: { listener: 'host', family: 'Subjects', pattern: 'flurry.host.*.fork', request: 'ForkRequest', reply: 'ForkReply', timeoutMs: 120_000 },
  release: { listener: 'host', family: 'Subjects', pattern: 'flurry.host.*.release', request: 'ReleaseRequest', reply: 'ReleaseReply', timeoutMs: 10_000 },
  parentFreed: { listener: 'host', family: 'Subjects', pattern: 'flurry.parents.*.freed', request: 'ReleaseRequest' },
  pageRequests: { listener: 'host', family: 'Subjects', pattern: 'flurry.snap.*.*.fetch', request: 'PageFetchRequest', reply: 'PageFetchReply', timeoutMs: 5_000 },
  pages: { listener: 'host', family: 'Subjects', pattern: 'flurry.snap.*.*.pages', request: 'PageMessage' },
  unicastPages: { listener: 'host', family: 'Subjects', pattern: 'flurry.snap.*.*.to.>', request: 'PageMessage' },
  event: { listener: 'client', family: 'Subjects', pattern: 'flurry.events.*.*.*', request: 'FleetEvent' },
  /** Inside `event`'s pattern: a host back from a broker outage; the gateway ends the requests it held (fleet-view.ts). */
  hostReconnected: { listener: 'gateway', family: 'Subjects', pattern: 'flurry.events.system.host.reconnected', request: 'FleetEvent' },
  cancel: { listener: 'host', family: 'JobSubjects', pattern: 'flurry.host.*.cancel', request: 'CancelRequest', reply: 'CancelReply', timeoutMs: 5_000 },
  results: { listener: 'gateway', family: 'JobSubjects', pattern: 'flurry.results.*.*.*', request: 'CloneResult', stream: true },
  failures: { listener: 'gateway', family: 'JobSubjects', pattern: 'flurry.failures.>', request: 'CloneResult', stream: true },
  progress: { listener: 'gateway', family: 'JobSubjects', pattern: 'flurry.jobs.*.*.progress', request: 'CloneProgress' },
  /** A task job's task server: a clone reports failed tasks and takes a range or tasks when it has none left. */
  tasks: { listener: 'gateway', family: 'JobSubjects', pattern: 'flurry.jobs.*.*.tasks', request: 'TaskRequest', reply: 'TaskReply', timeoutMs: 10_000 },
  /** The task server asks a clone's host to give away the back half of the clone's range. */
  split: { listener: 'host', family: 'JobSubjects', pattern: 'flurry.host.*.split', request: 'TaskSplitRequest', reply: 'TaskSplitReply', timeoutMs: 2_000 },
  /** Inside `event`'s pattern: a job's events are fleet events of kind `job.<jobId>`, kept by a stream. */
  jobEvents: { listener: 'gateway', family: 'JobSubjects', pattern: 'flurry.events.*.job.*', request: 'JobEvent', stream: true },
  jobControl: { listener: 'gateway', family: 'JobSubjects', pattern: 'flurry.jobs.control', request: 'JobControlRequest', reply: 'JobControlReply', timeoutMs: 30_000 },
  /** A plain fork's `resultSubject` (an inbox of the caller). */
  forkResults: { listener: 'client', family: 'ForkRequest', pattern: 'flurry.fork.*', request: 'CloneResult' },
  /** A job's reduce: its fork's `resultSubject`, an inbox of the coordinating gateway. */
  reduceResult: { listener: 'gateway', family: 'ForkRequest', pattern: 'flurry.reduce.*', request: 'CloneResult' },
  createInstance: { listener: 'host', family: 'ServiceSubjects', pattern: 'flurry.host.*.instance.create', request: 'CreateInstanceRequest', reply: 'CreateInstanceReply', timeoutMs: 30_000 },
  destroyInstance: { listener: 'host', family: 'ServiceSubjects', pattern: 'flurry.host.*.instance.destroy', request: 'DestroyInstanceRequest', reply: 'DestroyInstanceReply', timeoutMs: 30_000 },
  serviceRequest: { listener: 'host', family: 'ServiceSubjects', pattern: 'flurry.svc.*.*.*', request: 'InvokeRequest', reply: 'InvokeReply', timeoutMs: 30_000 },
  standby: { listener: 'host', family: 'ServiceSubjects', pattern: 'flurry.host.*.instance.standby', request: 'StandbyParentRequest', reply: 'StandbyParentReply', timeoutMs: 120_000 },
  migrate: { listener: 'host', family: 'MigrationSubjects', pattern: 'flurry.host.*.instance.migrate', request: 'MigrateInstanceRequest', reply: 'MigrateInstanceReply', timeoutMs: 300_000 },
  receive: { listener: 'host', family: 'MigrationSubjects', pattern: 'flurry.host.*.instance.receive', request: 'ReceiveStep', reply: 'ReceiveStepReply', timeoutMs: 30_000 },
  direct: { listener: 'host', family: 'MigrationSubjects', pattern: 'flurry.host.*.instance.direct.*', request: 'HandoverRequest', reply: 'InvokeReply', timeoutMs: 10_000 },
  load: { listener: 'gateway', family: 'ControllerSubjects', pattern: 'flurry.svc.load', request: 'ServiceLoadReport' },
  controllerDrain: { listener: 'gateway', family: 'ControllerSubjects', pattern: 'flurry.controller.drain', request: 'DrainHostRequest', reply: 'DrainHostReply', timeoutMs: 600_000 },
  controllerExiting: { listener: 'gateway', family: 'ControllerSubjects', pattern: 'flurry.controller.exiting.*', request: 'DrainHostRequest', reply: 'DrainHostReply', timeoutMs: 300_000 },
  /** What guests logged, published by hosts after each run and read from its stream by the gateway's log routes. */
  guestLogs: { listener: 'gateway', family: 'GuestLogSubjects', pattern: 'flurry.logs.>', request: 'GuestLogBatch', stream: true },
  hostState: { listener: 'host', family: 'ControllerSubjects', pattern: 'flurry.host.*.state', request: 'SetHostStateRequest', reply: 'SetHostStateReply', timeoutMs: 5_000 },
} as const satisfies Record<string, SubjectEntry>;

export type SubjectKind = keyof typeof SubjectTable;
