/** What the guest pool's callers and its threads exchange about a call: limits, the HTTP request, the result, logs and failures. */
import type { ErrorCode } from '@flurry/core';
import { FlurryError } from '@flurry/core/basics';
import type { MemoryStats } from './snapshot-memory.js';

/**
 * How snapshots are kept and clones made: 'native' maps snapshots
 * copy-on-write from memfds and pages adopted snapshots lazily through
 * userfaultfd (worker-host/native); 'portable' copies.
 */
export type PagerMode = 'native' | 'portable';

export interface GuestLimits {
  callTimeoutMs: number;
  initTimeoutMs: number;
  maxOutputBytes: number;
  maxLogLines: number;
  maxLogBytes: number;
  /** Most wasm memories each guest thread keeps made ahead for clones (memory-pool.ts; default POOLED_PER_THREAD, 0 for none). */
  pooledMemories?: number;
}

export interface HttpRequestData {
  method: string;
  path: string;
  query: string;
  headers: [string, string][];
  body: Uint8Array;
}

export interface GuestLogLine {
  level: 'debug' | 'info' | 'warn' | 'error';
  message: string;
}

export interface CallResult {
  status: number;
  headers: [string, string][];
  body: Uint8Array;
  logs: GuestLogLine[];
  droppedLogLines: number;
  /** Time in the guest thread: instantiating from the snapshot, restoring it and running the entry point. */
  durationMs: number;
  /** From the guest thread picking the call up to the clone running (instance ready, `on_restore` returned). */
  startMs: number;
  /** How the clone's memory was made and what paging it cost. */
  memory?: MemoryStats;
  /** The last progress a `run` reported. */
  progress?: { done: number; total: number };
  /** The host that ran it, when another host answered (a request forwarded to where its instance migrated). */
  hostId?: string;
}

export interface WarmInfo {
  initMs: number;
  memoryBytes: number;
  /** Mutable globals in the snapshot. */
  globals: number;
  /** What `_initialize` and `init` logged. */
  logs: GuestLogLine[];
  droppedLogLines: number;
}

/** A failed guest call or init: a FlurryError that also carries what the guest logged before it failed. */
export class GuestCallError extends FlurryError {
  constructor(
    code: ErrorCode,
    message: string,
    readonly logs: GuestLogLine[],
    readonly droppedLogLines: number,
  ) {
    super(code, message);
  }
}
