/** Messages between the guest pool (main thread) and its guest threads. */
import type { MessagePort } from 'node:worker_threads';
import type { WireError } from '@flurry/core';
import type { RequestHead } from './call-context.js';
import type { GuestLimits, GuestLogLine, PagerMode } from './call-types.js';
import type { EntryPoint, Snapshot } from './instance.js';
import type { MemoryStats } from './snapshot-memory.js';
import type { MigrationOp, MigrationOpResult } from './migration-ops.js';

/** What a guest thread needs of its mailbox (sent in its `workerData`, the port in the transfer list). */
export interface MailboxEnd {
  port: MessagePort;
  /** An Int32Array of one: messages posted so far. */
  doorbell: SharedArrayBuffer;
  /** Its CallFrameSlot. */
  calls: SharedArrayBuffer;
  /** How it polls its doorbell before it sleeps (thread-mailbox.ts), and the id it takes a place to poll with (never 0). */
  spin: SpinLimits;
  id: number;
}

/** How the guest threads of a process poll their doorbells before they sleep: the window's cap, and the places for the threads polling now. */
export interface SpinLimits {
  /** µs at most (0: never poll). */
  maxUs: number;
  /** An Int32Array, one place per thread that may poll at once: the polling thread's mailbox id, 0 when free. */
  spinners: SharedArrayBuffer;
}

/** The `workerData` a guest thread starts with. */
export interface GuestThreadData {
  limits: GuestLimits;
  pager: PagerMode;
  /** An Int32Array slot: the lazy-memory registration of the running call, 0 when none (see registration-slot.ts). */
  registrationSlot: SharedArrayBuffer;
  /** Where its messages come from (thread-mailbox.ts); it reads nothing from its parent port. */
  mailbox: MailboxEnd;
  /** A call thread of a host whose threads read their own calls (thread-channel.ts); it then sleeps in its event loop. */
  channel?: ThreadChannelData;
}

/** What a call thread needs to read its own calls (thread-channel.ts, thread-call-cells.ts). */
export interface ThreadChannelData {
  /** The address it listens on (a free port of it). */
  listenHost: string;
  hostId: string;
  /** The largest frame taken or sent (as the host's own channel). */
  maxFrameBytes: number;
  limits: GuestLimits;
  /** The digests of the tokens the host granted. */
  tokens: SharedArrayBuffer;
  /** The pool's cells: when the watchdog looks next. */
  pool: SharedArrayBuffer;
  /** This thread's slot: the call it runs now. */
  slot: SharedArrayBuffer;
}

/** What a guest thread is sent, through its mailbox (ThreadMailbox.post), in the order posted. */
export type ToThread =
  /** Run a parent's init and snapshot it; answered with `warmed` or `failed`. */
  | { type: 'warm'; id: number; parent: WebAssembly.Module; initInput: Uint8Array }
  /**
   * Keep what makes clones of a snapshot under `key` (posted to every thread; no answer). `moduleDigest`: instances
   * made ahead serve every snapshot of that module; `instancesReusable`: so does the instance a clone ran in (ModuleVariants).
   */
  | { type: 'load'; key: string; snapshotId: number; clone: WebAssembly.Module; snapshot: Snapshot; maximumPages: number; stackPointer?: string; moduleDigest?: string; instancesReusable?: boolean; cells?: { id: number; buffer: SharedArrayBuffer } }
  /** One call in a fresh instance (`maxOutputBytes`: its function's own, instead of the thread's); answered with `result` or `failed`, maybe after `started` and some `progress`. */
  | { type: 'call'; id: number; key: string; entry: EntryPoint; args: number[]; input: Uint8Array; request?: RequestHead; notifyStart: boolean; maxOutputBytes?: number }
  /** Make a persistent (service) instance of a snapshot: a clone that stays alive; answered with `created` or `failed`. */
  | { type: 'instance-create'; id: number; key: string; instanceId: string }
  /** `handle` on a persistent instance, whose memory and globals persist between requests; answered with `result` or `failed`. */
  | { type: 'instance-call'; id: number; instanceId: string; input: Uint8Array; request: RequestHead; maxOutputBytes?: number }
  /** Drop a persistent instance (no answer; it runs after the call in progress, if any). */
  | { type: 'instance-destroy'; instanceId: string }
  /** A live-migration step on a persistent instance, between its requests (see migration-ops.ts); answered with `migrated` or `failed`. */
  | { type: 'instance-migrate'; id: number; instanceId: string; op: MigrationOp }
  /** The task server's answer to a `task` step `want` of call `id`: tasks to run (none: the call ends), or why there are none. */
  | { type: 'tasks'; id: number; tasks: number[]; error?: WireError }
  /** Drop a snapshot; answered with `dropped` once nothing of it is left in the thread. */
  | { type: 'evict'; key: string; snapshotId: number };

/**
 * What a task clone's thread tells the pool: it wants tasks (answered with
 * `tasks`), a task starts (its time limit starts), a task's output, a task
 * that failed (the clone goes on with a fresh instance after a trap).
 */
export type TaskStep =
  | { kind: 'want' }
  | { kind: 'start'; task: number }
  | { kind: 'done'; task: number; output: Uint8Array; runMs: number }
  | { kind: 'failed'; task: number; error: WireError };

export interface GuestLogs {
  logs: GuestLogLine[];
  droppedLogLines: number;
}

export type FromThread =
  | ({ type: 'warmed'; id: number; snapshot: Snapshot; initMs: number } & GuestLogs)
  | ({ type: 'result'; id: number; status: number; headers: [string, string][]; body: Uint8Array; durationMs: number; startMs: number; memory: MemoryStats; progress?: { done: number; total: number }; memoryBytes?: number } & GuestLogs)
  | ({ type: 'created'; id: number; memory: MemoryStats; startMs: number } & GuestLogs)
  /** The clone's instance is ready and `on_restore` has returned; the entry point runs next. */
  | { type: 'started'; id: number; startMs: number }
  | { type: 'progress'; id: number; done: number; total: number }
  /** A step of a `run_task` call's loop (task-loop.ts). */
  | { type: 'task'; id: number; step: TaskStep }
  | ({ type: 'failed'; id: number; error: WireError } & GuestLogs)
  /** The thread has loaded its script and listens: jobs are sent from now on, so their time limits count guest time only. `port`: where it reads its own calls. */
  | { type: 'ready'; port?: number }
  /** A call read from the thread's own connection began, and the watchdog is not armed for its deadline (thread-call-cells.ts). */
  | { type: 'channel-deadline' }
  /** What a call read from the thread's own connection logged (sent only for a call that logged). */
  | ({ type: 'channel-logs'; key: string; tenant: string; name: string; requestId: string; /** The caller's, as its call frame carried it (parsed, and checked, by the main thread). */ traceparent: string } & GuestLogs)
  | { type: 'dropped'; snapshotId: number }
  | { type: 'migrated'; id: number; result: MigrationOpResult };

/** A copy with a buffer of its own, which can be transferred to a thread without detaching the caller's bytes. */
export function ownCopy(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  return copy;
}
