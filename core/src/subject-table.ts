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
  /** The family it belongs to in protocol.ts, and the key there. */
  family: 'Subjects' | 'JobSubjects' | 'ServiceSubjects' | 'MigrationSubjects' | 'ControllerSubjects' | 'ForkRequest';
  request: MessageKind;
  /** Absent: a plain publish, nobody answers. */
  reply?: MessageKind;
  /** Also read from a JetStream stream (the stream's messages are checked the same way). */
  stream?: boolean;
}

export const SubjectTable = {
  place: { listener: 'host', family: 'Subjects', request: 'PlaceRequest', reply: 'PlaceReply' },
  drain: { listener: 'host', family: 'Subjects', request: 'DrainRequest', reply: 'DrainReply' },
  invoke: { listener: 'host', family: 'Subjects', request: 'InvokeRequest', reply: 'InvokeReply' },
  snapshot: { listener: 'host', family: 'Subjects', request: 'SnapshotRequest', reply: 'SnapshotReply' },
  fork: { listener: 'host', family: 'Subjects', request: 'ForkRequest', reply: 'ForkReply' },
  release: { listener: 'host', family: 'Subjects', request: 'ReleaseRequest', reply: 'ReleaseReply' },
  parentFreed: { listener: 'host', family: 'Subjects', request: 'ReleaseRequest' },
  pageRequests: { listener: 'host', family: 'Subjects', request: 'PageFetchRequest', reply: 'PageFetchReply' },
  pages: { listener: 'host', family: 'Subjects', request: 'PageMessage' },
  unicastPages: { listener: 'host', family: 'Subjects', request: 'PageMessage' },
  event: { listener: 'client', family: 'Subjects', request: 'FleetEvent' },
  cancel: { listener: 'host', family: 'JobSubjects', request: 'CancelRequest', reply: 'CancelReply' },
  results: { listener: 'gateway', family: 'JobSubjects', request: 'CloneResult', stream: true },
  failures: { listener: 'gateway', family: 'JobSubjects', request: 'CloneResult', stream: true },
  progress: { listener: 'gateway', family: 'JobSubjects', request: 'CloneProgress' },
  jobEvents: { listener: 'gateway', family: 'JobSubjects', request: 'JobEvent', stream: true },
  jobControl: { listener: 'gateway', family: 'JobSubjects', request: 'JobControlRequest', reply: 'JobControlReply' },
  /** A plain fork's `resultSubject` (an inbox of the caller). */
  forkResults: { listener: 'client', family: 'ForkRequest', request: 'CloneResult' },
  createInstance: { listener: 'host', family: 'ServiceSubjects', request: 'CreateInstanceRequest', reply: 'CreateInstanceReply' },
  destroyInstance: { listener: 'host', family: 'ServiceSubjects', request: 'DestroyInstanceRequest', reply: 'DestroyInstanceReply' },
  serviceRequest: { listener: 'host', family: 'ServiceSubjects', request: 'InvokeRequest', reply: 'InvokeReply' },
  standby: { listener: 'host', family: 'ServiceSubjects', request: 'StandbyParentRequest', reply: 'StandbyParentReply' },
  migrate: { listener: 'host', family: 'MigrationSubjects', request: 'MigrateInstanceRequest', reply: 'MigrateInstanceReply' },
  receive: { listener: 'host', family: 'MigrationSubjects', request: 'ReceiveStep', reply: 'ReceiveStepReply' },
  direct: { listener: 'host', family: 'MigrationSubjects', request: 'InvokeRequest', reply: 'InvokeReply' },
  load: { listener: 'gateway', family: 'ControllerSubjects', request: 'ServiceLoadReport' },
  controllerDrain: { listener: 'gateway', family: 'ControllerSubjects', request: 'DrainHostRequest', reply: 'DrainHostReply' },
  hostState: { listener: 'host', family: 'ControllerSubjects', request: 'SetHostStateRequest', reply: 'SetHostStateReply' },
} as const satisfies Record<string, SubjectEntry>;

export type SubjectKind = keyof typeof SubjectTable;
