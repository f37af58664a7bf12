/**
 * The native pager (worker-host/native, an N-API addon in C): its typed
 * interface, loading it, and whether it works here (the one module that knows
 * which V8 internals Flurry relies on). Copy-on-write memories made with it are
 * in cow-memory.ts; the fault handler thread's death is told by handler-death.ts.
 *
 * V8 assumptions (Node 20, x64), checked by `nativePagerStatus()` at run time
 * and by pager.test.ts:
 *  - a WebAssembly.Memory is one reservation (10 GiB) that grows in place:
 *    the backing store's base address never changes, only `buffer` objects do;
 *  - V8 does not touch a fresh memory's pages, so a userfaultfd registration
 *    up to the declared maximum sees every first touch;
 *  - an mmap over the backing store (MAP_FIXED) is what wasm loads and stores
 *    see; the reservation is released with one munmap when the Memory dies.
 *
 * Threads: the addon is process-global and may be loaded by the main thread and
 * by guest workers. `setMissHandler` and `onHandlerDeath` callbacks run on the
 * thread that set them (the host's main thread), which must never touch lazy
 * guest memory; `registerMemory` belongs in the worker that owns the memory.
 * File descriptors (memfds) are valid in every thread: the main thread makes
 * them, workers map them. The addon's one fault handler thread is never
 * restarted: if it dies, `onHandlerDeath` says why, every registration that
 * needed it is failed, and nothing can be registered any more.
 *
 * Bitmaps (zero pages, runs) are LSB-first: page i is bit (i & 7) of byte
 * (i >> 3), as in @flurry/core's snapshot descriptor.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PAGE_SIZE, WASM_PAGE_SIZE } from '@flurry/core/basics';

/** Where `node-gyp rebuild --directory worker-host/native` puts the addon. */
export const NATIVE_PAGER_PATH =
  process.env.FLURRY_PAGER_ADDON ??
  resolve(dirname(fileURLToPath(import.meta.url)), '../../native/build/Release/flurry_pager.node');

export const BUILD_COMMAND = 'node_modules/.bin/node-gyp rebuild --nodedir=/usr --directory worker-host/native';

/** Anything whose bytes the addon can address. */
export type MemoryLike = WebAssembly.Memory | ArrayBuffer | SharedArrayBuffer | ArrayBufferView;

export interface PagerCapabilities {
  /** MISSING registrations work. */
  userfaultfd: boolean;
  /** UFFDIO_REGISTER_MODE_WP works (synchronous dirty tracking). */
  writeProtect: boolean;
  /** UFFD_FEATURE_WP_ASYNC (kernel 6.7+). */
  wpAsync: boolean;
  /** UFFD_FEATURE_WP_UNPOPULATED (kernel 6.4+), needed by 'sync' tracking. */
  wpUnpopulated: boolean;
  /** The PAGEMAP_SCAN ioctl on /proc/self/pagemap (kernel 6.7+). */
  pagemapScan: boolean;
  /** memfd_create + MAP_PRIVATE mapping (copy-on-write local fork). */
  memfd: boolean;
  /** UFFD_FEATURE_MISSING_SHMEM: a store's memfd can be mapped under lazy memory (StoreOptions.mapPages). */
  missingShmem?: boolean;
  pageSize?: number;
  /** How a userfaultfd was obtained. `user-mode-only` cannot serve faults taken inside syscalls. */
  via?: 'syscall' | 'dev' | 'user-mode-only' | 'none';
  /** UFFDIO_API feature bits the kernel offers, hex. */
  features?: string;
  /** Why something is missing. */
  reason?: string;
}

export interface StoreOptions {
  /** Pages copied per fault, the faulting page and those after it the host has (default 16). */
  runPages?: number;
  /** Pages asked for per missing fault: the faulting one and those after it (default 1). */
  requestPages?: number;
  /**
   * Pages moved together (the snapshot's `chunkPages`). When > 1, a fault fills
   * every page of its chunk the host has, and a miss asks for the chunk's
   * missing pages; runPages/requestPages are then not used.
   */
  chunkPages?: number;
  /** How many distinct faulted pages `storeFaultOrder` keeps (default 65536). */
  faultOrderLimit?: number;
  /**
   * Memories registered from now on get the store's memfd mapped over the
   * snapshot's pages (where the kernel has missingShmem; otherwise ignored):
   * a page the store holds is mapped by the kernel at its first touch, like
   * a file's page, with no userfault and no pager work (counted in the
   * registration's pagesMapped, not pagesCopied); only pages the store lacks
   * (or zero pages) fault to the pager.
   */
  mapPages?: boolean;
}

export type StorePageState = 'present' | 'zero' | 'requested' | false;

export interface StoreStats {
  pageCount: number;
  /** Pages whose bytes are in the store. */
  present: number;
  /** Pages known to be zero. */
  zero: number;
  /** Pages asked from JavaScript and not put yet. */
  requested: number;
  /** Distinct pages some fault waits for. */
  waitingPages: number;
  /** Faults waiting (over all registrations). */
  waitingFaults: number;
  registrations: number;
  runPages: number;
  requestPages: number;
  chunkPages: number;
  faultOrderLength: number;
  /** Pages handed to the miss handler, and in how many calls. */
  requestedPages: number;
  requestCalls: number;
  putPages: number;
  putCalls: number;
  bytes: number;
  missHandler: boolean;
}

export interface RegistrationStats {
  storeId: number;
  pageCount: number;
  /** Fault messages read (for trackers: 0). */
  faults: number;
  /** Of which for a page already being served (another thread on the same page). */
  duplicateFaults: number;
  /** Of which had to wait for a page the host did not have. */
  missFaults: number;
  /** Pages copied in from the store (run pages included). */
  pagesCopied: number;
  /** With the store mapped (mapPages): pages the kernel mapped from it so far (present in its span, not filled by the pager). */
  pagesMapped?: number;
  zeroPages: number;
  /** Pages this registration's faults asked the miss handler for. */
  pagesRequested: number;
  /** Sum over resolved faults of (handler read the fault -> page in place), ns. */
  waitNs: number;
  maxWaitNs: number;
  resolvedFaults: number;
  /** CLOCK_MONOTONIC (process.hrtime's clock) when the first fault was served, ns; absent before any. */
  firstFaultNs?: number;
  /** Synchronous write-protect faults (trackers in 'sync' mode). */
  wpFaults: number;
  /** Faults waiting now. */
  pending: number;
  /** Pages this pager filled. */
  populated: number;
  errors: number;
  lastError?: string;
  /**
   * Set once the fault handler thread has died (why it died): this
   * registration's faults are served no more. A lazy clone on it must be
   * stopped (zeroFillPending, then terminate); a 'sync' tracker was
   * unprotected and its collectDirty throws.
   */
  failed?: string;
}

export interface FillResult {
  copied: number;
  zeroed: number;
  /** Snapshot pages the host does not have yet. */
  missing: Uint32Array;
}

export type DirtyMode = 'async' | 'sync';

/** The addon's exports. Ids are small positive integers. */
export interface NativePager {
  capabilities(): PagerCapabilities;

  // Page stores: one per snapshot per host.
  createStore(pageCount: number, pageSize?: number): number;
  storeConfigure(storeId: number, options: StoreOptions): void;
  /** Stores whole pages from firstPage; wakes every fault waiting on them. Returns pages newly stored. */
  storePut(storeId: number, firstPage: number, bytes: ArrayBufferView | ArrayBuffer): number;
  /** ORs in the zero-page bitmap; faults waiting on those pages get zero pages. Returns zero pages known. */
  storeMarkZero(storeId: number, zeroBitmap: Uint8Array): number;
  /** Bit p set: page p is wanted together with page p-1. null clears. */
  storeSetRuns(storeId: number, continuation: Uint8Array | null): void;
  storeHas(storeId: number, page: number): StorePageState;
  storeStats(storeId: number): StoreStats;
  /** Pages some fault waits for (ascending): re-ask for them after a lost request. */
  storeWaiting(storeId: number): Uint32Array;
  /** Forget which pages were asked for, so that the next fault on them asks again. */
  storeForgetRequests(storeId: number): void;
  /** A copy of pages the store has (zero pages as zeros), or null if one is missing. */
  storeRead(storeId: number, firstPage: number, count: number): Uint8Array | null;
  /** The first distinct pages faulted over all registrations of the store (working set, in order). */
  storeFaultOrder(storeId: number): Uint32Array;
  /** Throws ERR_FLURRY_BUSY while registrations use the store. */
  dropStore(storeId: number): void;
  /**
   * Called (on this thread, batched) with pages a fault needs that the store
   * lacks. Answer with storePut (or storeMarkZero). Set it from the host's
   * main thread, which must never touch lazy memory. null removes it.
   */
  setMissHandler(storeId: number, handler: ((pages: number[]) => void) | null): void;
  /**
   * Called once, on this thread, with why the process's fault handler thread
   * died (at once if it already has). One per thread, replaced by the next;
   * null removes it. Use `onHandlerDeath`, which shares it among listeners.
   */
  setHandlerDeathHandler(handler: ((reason: string) => void) | null): void;

  // Lazy memories.
  /**
   * Registers [base, base + maximumBytes) for MISSING faults served from the store. Call in the owning worker.
   * Throws ERR_FLURRY_HANDLER_DEAD, naming the reason, once the handler thread has died (so does trackDirty).
   */
  registerMemory(memory: MemoryLike, maximumBytes: number, storeId: number, mode?: 'missing'): number;
  /** false while a fault is pending or queued (unregistering would zero-fill it: data loss). */
  unregister(regId: number): boolean;
  /** Zero-fills every pending fault so that the thread can be terminated. Never on a clone that goes on. */
  zeroFillPending(regId: number): number;
  registrationStats(regId: number): RegistrationStats;
  /** Fills the listed pages the store has before the guest touches them (prefetch). */
  registrationPopulate(regId: number, pages: Uint32Array | number[]): number;
  /** Fills every snapshot page the store has; `missing` lists the rest. */
  registrationFill(regId: number): FillResult;

  // Dirty tracking (live migration).
  /**
   * Registers [base, base + maximumBytes) for dirty tracking and write-protects its first `armBytes` (default: all);
   * armDirty protects the rest in steps. A write before its page is protected is not tracked.
   */
  trackDirty(memory: MemoryLike, maximumBytes: number, mode?: DirtyMode, armBytes?: number): number;
  /** Write-protects the next `bytes` of a tracker armed in steps; returns the bytes armed in all. collectDirty needs all. */
  armDirty(trackerId: number, bytes: number): number;
  /**
   * Pages written since trackDirty or the last collect, re-protected. Read their bytes afterwards.
   * `upTo` (the memory, or its current byte length) limits the scan to the memory's current size:
   * much faster when the declared maximum is large (a 4 GiB maximum costs ~2.5 ms per scan).
   */
  collectDirty(trackerId: number, upTo?: MemoryLike | number): Uint32Array;
  stopTracking(trackerId: number): void;
  /** Present, non-file, non-zero-page pages in [offset, offset + length): a CoW clone's own pages. No registration needed. */
  privatePages(memory: MemoryLike, length: number, offset?: number): Uint32Array;

  // Copy-on-write local fork.
  /** A memfd holding the bytes (zero pages as holes unless sparse: false; sealed unless seal: false), or an empty one of `size` bytes. */
  memfdCreate(name: string, source: MemoryLike | number, options?: { seal?: boolean; sparse?: boolean }): number;
  memfdWrite(fd: number, offset: number, bytes: MemoryLike, options?: { sparse?: boolean }): void;
  memfdSeal(fd: number): void;
  fdSize(fd: number): number;
  closeFd(fd: number): void;
  /** Whether any of the descriptors has data to read (or is closed), without waiting: poll(2) with a timeout of 0. */
  anyReadable(fds: Int32Array): boolean;
  /** mmap(fd, MAP_PRIVATE | MAP_FIXED) over [base, base + length); length within the memory and the file. */
  mapSnapshotPrivate(memory: MemoryLike, fd: number, length: number): void;
  /** Fresh zero pages over [base, base + length) (anonymous MAP_FIXED): whatever a clone left in the memory is gone. Not while registered or tracked. */
  resetMemory(memory: MemoryLike, length: number): void;
  /** MADV_POPULATE_READ: map the pages read-only now (copies nothing). */
  populateRead(memory: MemoryLike, length: number): void;
  /**
   * Benchmarks: touches one byte of each listed 4 KiB page, in order, on this
   * thread (never the one answering misses), and returns each touch's time in
   * ns, the clock's own cost (clockCostNs) included.
   */
  timeTouches(memory: MemoryLike, pages: Uint32Array, write?: boolean): Float64Array;
  /** `samples` back-to-back reads of the clock timeTouches uses, ns each. */
  clockCostNs(samples: number): Float64Array;
  /** pread(fd) into the memory: the copying fallback. */
  readFdInto(memory: MemoryLike, fd: number, length: number, offset?: number): void;

  // Utilities.
  memoryAddress(memory: MemoryLike): bigint;
  /** One bit per 4 KiB page, set when the page is all zero. */
  zeroBitmap(bytes: MemoryLike): Uint8Array;
  /** handlerThread: a handler thread runs; handlerDeath: why it died, once it has. */
  debugState(): { stores: number; registrations: number; handlerThread: boolean; handlerPasses: number; handlerDeath?: string };
  /**
   * TEST HOOK, never for production use: the handler thread's next epoll_wait
   * fails with this errno ('EBADF', say), so that it dies exactly as from a real
   * failure (its reason says it was injected). Throws if no handler thread runs.
   * The death is for the whole process: every registration in it fails.
   */
  debugFailHandler(errnoName: string): void;
}

export class NativePagerUnavailableError extends Error {
  override name = 'NativePagerUnavailableError';
  readonly code = 'ERR_FLURRY_PAGER_UNAVAILABLE';
}

let loaded: NativePager | undefined;
let loadError: string | undefined;

/** The addon, or a clear error saying why it cannot be used. */
export function loadNativePager(): NativePager {
  if (loaded) return loaded;
  if (loadError) throw new NativePagerUnavailableError(loadError);
  if (process.platform !== 'linux') {
    loadError = `the native pager needs Linux (this is ${process.platform})`;
    throw new NativePagerUnavailableError(loadError);
  }
  if (!existsSync(NATIVE_PAGER_PATH)) {
    loadError = `native pager not built: ${NATIVE_PAGER_PATH} is missing (run \`${BUILD_COMMAND}\` from the repository root)`;
    throw new NativePagerUnavailableError(loadError);
  }
  try {
    loaded = createRequire(import.meta.url)(NATIVE_PAGER_PATH) as NativePager;
    return loaded;
  } catch (e) {
    loadError = `cannot load ${NATIVE_PAGER_PATH}: ${(e as Error).message} (rebuild with \`${BUILD_COMMAND}\`)`;
    throw new NativePagerUnavailableError(loadError);
  }
}

export interface NativePagerStatus {
  /** The addon loads, userfaultfd works and the V8 assumptions hold: pager 'userfaultfd'. */
  available: boolean;
  /** Copy-on-write local forks work (memfd mapping, V8 assumptions hold), with or without userfaultfd. */
  copyOnWrite: boolean;
  /** Dirty tracking modes that work here, best first. */
  dirtyTracking: DirtyMode[];
  pager: 'userfaultfd' | 'portable';
  capabilities?: PagerCapabilities;
  /** Why not everything is available. */
  reason?: string;
  path: string;
}

let status: NativePagerStatus | undefined;

/** Never throws. Probes once (about a millisecond: one Memory, one memfd mapping). */
export function nativePagerStatus(): NativePagerStatus {
  if (status) return status;
  try {
    status = probeStatus();
  } catch (e) {
    status = { available: false, copyOnWrite: false, dirtyTracking: [], pager: 'portable', reason: String((e as Error)?.message ?? e), path: NATIVE_PAGER_PATH };
  }
  return status;
}

function probeStatus(): NativePagerStatus {
  let pager: NativePager;
  try {
    pager = loadNativePager();
  } catch (e) {
    return { available: false, copyOnWrite: false, dirtyTracking: [], pager: 'portable', reason: (e as Error).message, path: NATIVE_PAGER_PATH };
  }
  const capabilities = pager.capabilities();
  const v8 = checkV8Assumptions(pager);
  const reasons: string[] = [];
  if (!capabilities.userfaultfd) reasons.push(capabilities.reason ?? 'userfaultfd unavailable');
  if (v8) reasons.push(`V8 assumption failed: ${v8}`);
  const available = capabilities.userfaultfd && !v8;
  const dirtyTracking: DirtyMode[] = [];
  if (!v8 && capabilities.wpAsync && capabilities.pagemapScan) dirtyTracking.push('async');
  if (!v8 && capabilities.writeProtect && capabilities.wpUnpopulated) dirtyTracking.push('sync');
  if (available && capabilities.reason) reasons.push(capabilities.reason);
  return {
    available,
    copyOnWrite: capabilities.memfd && !v8,
    dirtyTracking,
    pager: available ? 'userfaultfd' : 'portable',
    capabilities,
    reason: reasons.length ? reasons.join('; ') : undefined,
    path: NATIVE_PAGER_PATH,
  };
}

/**
 * Checks, on a small throwaway memory, what the pager relies on: the base
 * address stays put across grow, and a private mapping over the backing store
 * is what the memory reads. Returns why not, or undefined.
 */
export function checkV8Assumptions(pager: NativePager = loadNativePager()): string | undefined {
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 64 });
  const base = pager.memoryAddress(memory);
  memory.grow(3);
  if (pager.memoryAddress(memory) !== base) return 'memory.grow moved the backing store';
  if (base % BigInt(PAGE_SIZE) !== 0n) return 'backing store is not page aligned';
  const bytes = new Uint8Array(2 * WASM_PAGE_SIZE);
  bytes[5] = 42;
  bytes[WASM_PAGE_SIZE + 7] = 43;
  const fd = pager.memfdCreate('flurry-v8-check', bytes);
  try {
    pager.mapSnapshotPrivate(memory, fd, bytes.length);
  } finally {
    pager.closeFd(fd);
  }
  const view = new Uint8Array(memory.buffer);
  if (view[5] !== 42 || view[WASM_PAGE_SIZE + 7] !== 43) return 'a mapping over the backing store is not what the memory reads';
  view[5] = 1;
  memory.grow(1);
  if (pager.memoryAddress(memory) !== base) return 'memory.grow after mapping moved the backing store';
  if (new Uint8Array(memory.buffer)[5] !== 1) return 'a write to the mapped memory was lost on grow';
  return undefined;
}
