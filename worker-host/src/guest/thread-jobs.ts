/** A guest thread as the pool's main thread sees it, the jobs it runs, and what the scheduler reports of its threads. */
import type { Cells } from './thread-call-cells.js';
import type { Worker } from 'node:worker_threads';
import type { FlurryError } from '@flurry/core';
import type { FifoQueue } from './fifo-queue.js';
import type { Snapshot } from './instance.js';
import type { RegistrationSlot } from './registration-slot.js';
import type { ThreadMailbox } from './thread-mailbox.js';
import type { WireError } from '@flurry/core';
import type { FromThread, TaskStep, ToThread } from './thread-messages.js';

/** A job's answer from its thread (a failure rejects the job instead). */
export type Answer = Extract<FromThread, { type: 'warmed' | 'result' | 'created' | 'migrated' }>;

export interface Job {
  message: Extract<ToThread, { type: 'warm' | 'call' | 'instance-create' | 'instance-call' | 'instance-migrate' }>;
  transfer: ArrayBuffer[];
  timeoutMs: number;
  /** When it went to its thread (performance.now()): its time limit counts from here, less the process's own stops. */
  dispatchedAt?: number;
  /** For messages: "call" or "init". */
  what: string;
  key: string;
  callId?: string;
  /** A persistent instance's request or creation: pinned to the instance's thread. */
  instanceId?: string;
  /** Called when the job goes to its thread. */
  onDispatch?: () => void;
  /** A request to an instance: hands it to the instance's held requests instead (taken out of the queue at stop-and-copy). */
  hold?: () => void;
  onProgress?: (done: number, total: number) => void;
  onStarted?: () => void;
  /** A task clone's step; a `want` is answered with `answer` (no tasks: the clone ends). */
  onTask?: (step: TaskStep, answer: (tasks: number[], error?: WireError) => void) => void;
  resolve(answer: Answer): void;
  reject(err: FlurryError): void;
}

/** A job before it is submitted (submit adds how it settles). */
export type JobSubmission = Omit<Job, 'resolve' | 'reject'>;

export interface GuestThread {
  worker: Worker;
  /** Where every message to it goes (never `worker.postMessage`: the thread does not read its parent port). */
  mailbox: ThreadMailbox;
  /** The lazy-memory registration of its running call, to release it from a fault before terminating it. */
  slot: RegistrationSlot;
  job?: Job;
  /** When its job's time limit ends (performance.now()); the scheduler's one timer watches every thread's. */
  deadline?: number;
  /** Its script has loaded and listens (it posted `ready`): it may be given jobs. */
  online: boolean;
  /** Terminated on purpose (timeout, close): its exit is expected. */
  retired: boolean;
  lastError?: Error;
  /** Settles once it runs (or failed to start). */
  started: Promise<void>;
  /** An instance thread's instances; none on a call thread. */
  holding?: InstanceHolding;
  /** A call thread that reads its own calls: its slot (thread-call-cells.ts), and the port it listens on once ready. */
  own?: { slot: Cells; port?: number; usAtDispatch: bigint };
}

/** What an instance thread holds: one tenant's persistent instances and the jobs waiting for them. */
export interface InstanceHolding {
  /** Undefined on the thread started ahead, until a tenant takes it. */
  tenant?: string;
  /** Ids of the instances living in it. */
  instances: Set<string>;
  /** Instances being made or received in it (not in `instances` yet). */
  claims: number;
  /** Jobs of its instances, in arrival order. */
  pinned: FifoQueue<Job>;
}

export type InstanceThread = GuestThread & { holding: InstanceHolding };

export function isInstanceThread(thread: GuestThread): thread is InstanceThread {
  return thread.holding !== undefined;
}

/** What the scheduler tells the pool's other parts about its threads. */
export interface ThreadEvents {
  /** A call thread was started: it needs every snapshot the pool holds. */
  callThreadStarted(thread: GuestThread): void;
  /** A thread has exited: what it held of snapshots died with it. */
  threadExited(thread: GuestThread): void;
  /** A thread dropped a snapshot it was told to evict. */
  snapshotDropped(thread: GuestThread, snapshotId: number): void;
  /** A warm answered after its job timed out: nobody will hold the snapshot. */
  snapshotOrphaned(snapshot: Snapshot): void;
  /** An instance thread ended with every instance in it (its pinned jobs are failed after this). */
  instancesLost(thread: InstanceThread, reason: string): void;
  /** What a call read by a thread from its own connection logged. */
  channelLogs?(logs: Extract<FromThread, { type: 'channel-logs' }>): void;
}
