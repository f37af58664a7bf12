/**
 * The kinds of a snapshot's linear memory and the restorer contract that puts
 * one into each clone: copied (portable), mapped copy-on-write from a memfd
 * (local clones, native pager), or paged in lazily through userfaultfd from
 * the host's page store (clones of a snapshot that lives on another host).
 * The restorers: copy-restorer.ts, cow-restorer.ts, lazy-restorer.ts, chosen in snapshot-restore.ts.
 */
import { WASM_PAGE_SIZE } from '@flurry/core/basics';

/** A snapshot's memory as posted to guest threads. */
export type SnapshotMemory =
  | {
      kind: 'copy';
      byteLength: number;
      bytes: SharedArrayBuffer;
      /** Runs of pages holding non-zero bytes, as [firstPage, endPage) pairs of 4 KiB pages. */
      dataRuns: Uint32Array;
    }
  | {
      kind: 'cow';
      byteLength: number;
      /** A sealed memfd holding the memory (zero pages as holes); its number is valid in every thread. */
      fd: number;
      /** One bit per 4 KiB page, set when the page is all zero (LSB first). */
      zeroPages: Uint8Array;
    }
  | {
      kind: 'lazy';
      byteLength: number;
      /** The native page store the host fills for this snapshot. */
      storeId: number;
    };

export type MemoryMode = SnapshotMemory['kind'];

/** What making one clone's memory cost (CallResult.memory). */
export interface MemoryStats {
  mode: MemoryMode;
  /** Making the instance: instantiating the clone variant, its memory and its globals. */
  restoreMs: number;
  /** Pages copied in: from the page store (lazy) or the snapshot's bytes (copy); 0 for cow, which shares them. */
  pagesFromStore: number;
  /** Pages filled as zeros by the pager (lazy). */
  zeroPages: number;
  /** Faults that waited for a page the host did not have yet (lazy). */
  pagesWaited: number;
  /** Time the guest's faults took to be served, all together (lazy). */
  faultWaitMs: number;
  /** The instance was made ahead, while the thread was idle: restoreMs was off this call's path. */
  spare: boolean;
  /** Its memory was made ahead, generic (the thread's memory pool): no new memory was made or grown for it. */
  pooled?: boolean;
  /** Its instance was made ahead on that pooled memory, for any snapshot of the module: restoreMs was mapping the snapshot and setting the globals. */
  instanceAhead?: boolean;
  /** When the thread took the call, ms since the epoch (same clock as createdAt). */
  receivedAt?: number;
  /** When this call's instance was ready (its first instruction next), ms since the epoch (performance.timeOrigin + now: one clock for every thread). */
  createdAt?: number;
  /** When the pool rang the thread's doorbell for this call, on the same epoch clock but the pool's thread (threads' clocks may differ by tens of µs). */
  postedAt?: number;
  /** Where restoreMs went, on the thread's own clock (made on the call's path only; absent for a spare). */
  instanceParts?: InstanceParts;
  /** When its first lazy fault was served, on the same clock (lazy memories that faulted). */
  firstFaultAt?: number;
}

/** Making one clone's instance, step by step (ms). */
export interface InstanceParts {
  /** A memory from the pool (a reset included, when one was needed), or a new one. */
  takeMs: number;
  /** The snapshot put into it (cow: mapped over it; lazy: registered). */
  restoreMs: number;
  /** Instantiating the clone variant on it; 0 when an instance made ahead came with the memory. */
  instantiateMs: number;
  /** The snapshot's mutable globals set. */
  globalsMs: number;
}

export type PagingStats = Pick<MemoryStats, 'pagesFromStore' | 'zeroPages' | 'pagesWaited' | 'faultWaitMs' | 'firstFaultAt'>;

export const NO_PAGING: PagingStats = { pagesFromStore: 0, zeroPages: 0, pagesWaited: 0, faultWaitMs: 0 };

/** One clone's memory, made from a snapshot, until its call ends. */
export interface RestoredMemory {
  /** The userfaultfd registration, while there is one (lazy memory only). */
  readonly registration: number | undefined;
  /**
   * Ends the clone's use of the snapshot (a lazy memory is unregistered) and
   * says what paging cost. Only once no guest code will run in it again.
   */
  finish(): PagingStats;
}

/** Puts a snapshot's memory into a clone's fresh memory. Made once per snapshot per thread. */
export interface MemoryRestorer {
  readonly mode: MemoryMode;
  /** Bytes a restored memory holds of its own before any guest code ran (what an idle spare clone costs). */
  readonly residentBytes: number;
  /**
   * `restore` maps the snapshot over every byte of the memory it is given (one MAP_FIXED mapping): whatever the
   * memory held is gone, so a pooled memory a clone used needs no reset before it (memory-pool.ts).
   */
  readonly mapsWholeMemory: boolean;
  /** Grows `memory` (fresh, at the module's initial size) to exactly the snapshot's size and makes it hold the snapshot. */
  restore(memory: WebAssembly.Memory): RestoredMemory;
}

/** Grows a fresh clone memory to exactly `byteLength` (it starts at the module's initial size, which the parent can only have grown from). */
export function growToSnapshotSize(memory: WebAssembly.Memory, byteLength: number): void {
  const current = memory.buffer.byteLength;
  if (current > byteLength) throw new Error(`a fresh clone memory of ${current / WASM_PAGE_SIZE} pages is larger than its snapshot of ${byteLength / WASM_PAGE_SIZE} pages`);
  if (current < byteLength) memory.grow((byteLength - current) / WASM_PAGE_SIZE);
}
