/** Messages between the guest pool (main thread) and its guest threads. */
import type { WireError } from '@flurry/core';
import type { RequestHead } from './call-context.js';
import type { GuestLimits, GuestLogLine } from './guest-pool.js';
import type { EntryPoint, Snapshot } from './instance.js';

/** The `workerData` a guest thread starts with. */
export interface GuestThreadData {
  limits: GuestLimits;
}

export type ToThread =
  /** Run a parent's init and snapshot it; answered with `warmed` or `failed`. */
  | { type: 'warm'; id: number; parent: WebAssembly.Module; initInput: Uint8Array }
  /** Keep what makes clones of a warm key (posted to every thread; no answer). */
  | { type: 'load'; key: string; clone: WebAssembly.Module; snapshot: Snapshot }
  /** One call in a fresh instance; answered with `result` or `failed`, maybe after some `progress`. */
  | { type: 'call'; id: number; key: string; entry: EntryPoint; args: number[]; input: Uint8Array; request?: RequestHead }
  | { type: 'evict'; key: string };

export interface GuestLogs {
  logs: GuestLogLine[];
  droppedLogLines: number;
}

export type FromThread =
  | ({ type: 'warmed'; id: number; snapshot: Snapshot; initMs: number } & GuestLogs)
  | ({ type: 'result'; id: number; status: number; headers: [string, string][]; body: Uint8Array; durationMs: number; progress?: { done: number; total: number } } & GuestLogs)
  | { type: 'progress'; id: number; done: number; total: number }
  | ({ type: 'failed'; id: number; error: WireError } & GuestLogs);
