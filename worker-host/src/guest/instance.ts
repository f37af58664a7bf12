/**
 * Guest instances: the warm parent (instantiated, `_initialize`d and `init`ed),
 * its snapshot (linear memory plus every mutable global), and fresh instances
 * made from a snapshot, one per call.
 */
import { CLONE_MEMORY_IMPORT, GLOBAL_EXPORT_PREFIX, WASM_PAGE_SIZE } from '@flurry/core/basics';
import type { NativePager } from '../native/pager.js';
import { GuestExit, GuestFailure } from './guest-failure.js';
import type { GuestMemory } from './guest-memory.js';
import type { MemoryPool } from './memory-pool.js';
import type { InstanceParts, MemoryRestorer, RestoredMemory, SnapshotMemory } from './snapshot-memory.js';
import { captureMemory, memoryRestorer } from './snapshot-restore.js';

export type EntryPoint = 'handle' | 'run' | 'run_task' | 'reduce';

/** What a mutable global can hold and still be posted between threads. */
export type GlobalValue = number | bigint | null;

export interface Snapshot {
  memory: SnapshotMemory;
  /** Every mutable global, by its `__flurry_global_<i>` export. */
  globals: { name: string; value: GlobalValue }[];
}

function exportedMemory(instance: WebAssembly.Instance): WebAssembly.Memory {
  const memory = instance.exports.memory;
  if (!(memory instanceof WebAssembly.Memory)) throw new GuestFailure('invalid_module', 'the module does not export its memory as "memory"');
  return memory;
}

function exportedFunction(instance: WebAssembly.Instance, name: string): ((...args: number[]) => unknown) | undefined {
  const fn = instance.exports[name];
  return typeof fn === 'function' ? (fn as (...args: number[]) => unknown) : undefined;
}

/**
 * Instantiates the parent variant (its start function, if any, runs here),
 * then runs `_initialize` (WASI reactors) and `init`. The call context with
 * the init input must already be current.
 */
export function makeWarmParent(parent: WebAssembly.Module, imports: WebAssembly.Imports, memory: GuestMemory): WebAssembly.Instance {
  const instance = new WebAssembly.Instance(parent, imports);
  memory.attach(exportedMemory(instance));
  try {
    exportedFunction(instance, '_initialize')?.();
    exportedFunction(instance, 'init')?.();
  } catch (err) {
    // proc_exit(0) ends init successfully; the parent is snapshotted as it stands.
    if (!(err instanceof GuestExit && err.exitCode === 0)) throw err;
  }
  return instance;
}

/** Freezes the parent's state (its memory into a memfd when the native pager is given). Only between calls: nothing may run meanwhile. */
export function takeSnapshot(parent: WebAssembly.Instance, pager: NativePager | undefined): Snapshot {
  const globals: Snapshot['globals'] = [];
  for (const [name, value] of Object.entries(parent.exports)) {
    if (!name.startsWith(GLOBAL_EXPORT_PREFIX) || !(value instanceof WebAssembly.Global)) continue;
    let v: unknown;
    try {
      v = value.value;
    } catch {
      throw new GuestFailure('invalid_module', `mutable global ${name.slice(GLOBAL_EXPORT_PREFIX.length)} has a type that cannot be snapshotted`);
    }
    if (typeof v !== 'number' && typeof v !== 'bigint' && v !== null) {
      throw new GuestFailure('invalid_module', `mutable global ${name.slice(GLOBAL_EXPORT_PREFIX.length)} holds a reference, which cannot be snapshotted`);
    }
    globals.push({ name, value: v });
  }
  return { memory: captureMemory(exportedMemory(parent), pager), globals };
}

/** Spare instances are kept ahead only while one costs at most this much memory. */
const MAX_SPARE_RESIDENT_BYTES = 64 * 1024 * 1024;

/** A fresh instance in a snapshot's state; no guest code has run in it yet. */
export interface Clone {
  instance: WebAssembly.Instance;
  memory: WebAssembly.Memory;
  /** End it with `restored.finish()` once the call is over. */
  restored: RestoredMemory;
  /** Instantiating, restoring memory and globals. */
  restoreMs: number;
  /** Made ahead, while the thread was idle. */
  spare: boolean;
  /** Its memory came from the thread's pool of memories made ahead. */
  pooled: boolean;
  /** Its instance came with its pooled memory, made ahead for any snapshot of the module (restoreMs was mapping and globals). */
  instanceAhead: boolean;
  /** Where restoreMs went. */
  parts: InstanceParts;
}

/** Where a clone variant's memory comes from: the thread's pool, for the module's declared maximum. */
export interface ClonePool {
  pool: MemoryPool;
  maximumPages: number;
  /** The module's digest: instances made ahead on pooled memories serve every snapshot of it. */
  module?: string;
  /** The module's code changes nothing of an instance but memory and globals: a clone's instance goes back to the pool with its memory. */
  instancesReusable?: boolean;
}

/**
 * Makes fresh instances in a snapshot's state from the clone variant. One per
 * snapshot per thread: it keeps the compiled module, the import object and
 * the memory restorer, so a call only instantiates and restores — or not even
 * that, when a spare was made while the thread was idle. A spare has run no
 * guest code, so it is as fresh as one made at the call, and it serves one
 * call only. A clone variant that imports its memory gets one from the pool
 * (made ahead, holding nothing of anyone) and gives it back when the clone is over.
 */
export class CloneFactory {
  private readonly restorer: MemoryRestorer;
  private readonly globals: Snapshot['globals'];
  private readonly byteLength: number;
  /** Set when the clone variant imports its memory. */
  private readonly memories: ClonePool | undefined;
  private readonly releaseClass: (() => void) | undefined;
  private spare: Clone | undefined;

  constructor(
    private readonly clone: WebAssembly.Module,
    private readonly imports: WebAssembly.Imports,
    snapshot: Snapshot,
    pager: NativePager | undefined,
    memories?: ClonePool,
  ) {
    this.restorer = memoryRestorer(snapshot.memory, pager);
    this.globals = snapshot.globals;
    this.byteLength = snapshot.memory.byteLength;
    const imported = WebAssembly.Module.imports(clone).some((i) => i.module === CLONE_MEMORY_IMPORT.module && i.kind === 'memory');
    if (imported && !memories) throw new Error('the clone variant imports its memory and no memory pool was given');
    this.memories = imported ? memories : undefined;
    this.releaseClass = this.memories?.pool.want(this.memories.maximumPages, this.byteLength);
  }

  get mode(): MemoryRestorer['mode'] {
    return this.restorer.mode;
  }

  /** A new instance holding the snapshot's memory and globals, attached to `memory`. */
  instantiate(memory: GuestMemory): Clone {
    const clone = this.spare ?? this.make(false);
    this.spare = undefined;
    memory.attach(clone.memory);
    return clone;
  }

  /** Makes the next call's instance ahead, off its critical path (call when the thread would otherwise idle). */
  prepareSpare(): void {
    if (this.spare || this.restorer.residentBytes > MAX_SPARE_RESIDENT_BYTES) return;
    this.spare = this.make(true);
  }

  /** Drops the spare (a lazy one is unregistered from its page store); its memory goes back to the pool, reset now (its snapshot is often being dropped: no step follows). */
  dropSpare(): void {
    const spare = this.spare;
    this.spare = undefined;
    if (!spare) return;
    spare.restored.finish();
    this.recycle(spare);
  }

  /**
   * A clone is over (its `restored.finish()` returned, and nothing will use
   * its instance again): its memory goes back to the pool, reset (`later`:
   * when the thread idles, see MemoryPool.giveBackLater). With `later`, a
   * module whose code changes nothing of an instance but memory and globals
   * gives back the instance with it: the next fork maps its snapshot over
   * the memory and sets every mutable global, which leaves that instance as
   * a fresh one would be, so it need not instantiate.
   */
  recycle(clone: Clone, later = false): void {
    const m = this.memories;
    if (!m) return;
    if (!later) return m.pool.giveBack(clone.memory, m.maximumPages);
    const instance = m.instancesReusable && m.module !== undefined ? { module: m.module, instance: clone.instance } : undefined;
    m.pool.giveBackLater(clone.memory, m.maximumPages, instance);
  }

  /**
   * Makes an instance of the module ahead on a free pooled memory of this snapshot's class that has none (call when
   * the thread would otherwise idle); false when there was none to make.
   */
  instantiateAhead(): boolean {
    const m = this.memories;
    if (m?.module === undefined) return false;
    return m.pool.instantiateAhead(m.module, m.maximumPages, this.byteLength, (memory) => this.instantiateOn(memory));
  }

  /** The snapshot is dropped from this thread: its class of memory is no longer wanted (for it). */
  close(): void {
    try {
      this.dropSpare();
    } finally {
      this.releaseClass?.();
    }
  }

  private make(spare: boolean): Clone {
    const started = performance.now();
    let memory: WebAssembly.Memory;
    let instance: WebAssembly.Instance;
    let restored: RestoredMemory;
    let pooled = false;
    let ahead: WebAssembly.Instance | undefined;
    let took = started;
    let mapped: number;
    let instantiated: number;
    if (this.memories) {
      ({ memory, pooled, instance: ahead, restored, took } = this.takeAndRestore(this.memories));
      mapped = performance.now();
      try {
        instance = ahead ?? this.instantiateOn(memory);
      } catch (err) {
        restored.finish();
        throw err;
      }
      instantiated = performance.now();
    } else {
      instance = new WebAssembly.Instance(this.clone, this.imports);
      memory = exportedMemory(instance);
      instantiated = performance.now();
      restored = this.restorer.restore(memory);
      mapped = performance.now();
    }
    try {
      for (const { name, value } of this.globals) (instance.exports[name] as WebAssembly.Global).value = value;
    } catch (err) {
      restored.finish();
      throw err;
    }
    const done = performance.now();
    // Without a pool the instance is made first, its memory with it, then restored: "take" is nothing.
    const parts: InstanceParts = this.memories
      ? { takeMs: took - started, restoreMs: mapped - took, instantiateMs: instantiated - mapped, globalsMs: done - instantiated }
      : { takeMs: 0, restoreMs: mapped - instantiated, instantiateMs: instantiated - started, globalsMs: done - mapped };
    return { instance, memory, restored, restoreMs: done - started, spare, pooled, instanceAhead: ahead !== undefined, parts };
  }

  /**
   * A memory from the pool with the snapshot restored into it. A memory handed out unreset that cannot be
   * mapped over (still registered: the pool would not have reset it either) is dropped for a fresh one.
   * `took`: when it had its memory (the pool's part ends there).
   */
  private takeAndRestore(m: ClonePool): { memory: WebAssembly.Memory; pooled: boolean; instance?: WebAssembly.Instance; restored: RestoredMemory; took: number } {
    const taken = m.pool.take(m.maximumPages, this.byteLength, m.module, this.restorer.mapsWholeMemory);
    const took = performance.now();
    try {
      return { ...taken, restored: this.restorer.restore(taken.memory), took };
    } catch (err) {
      if (!taken.unreset) throw err;
      const memory = new WebAssembly.Memory({ initial: this.byteLength / WASM_PAGE_SIZE, maximum: m.maximumPages });
      return { memory, pooled: false, restored: this.restorer.restore(memory), took: performance.now() };
    }
  }

  /** The clone variant instantiated on an imported memory: no guest code runs (no start function), no memory is written (passive data). */
  private instantiateOn(memory: WebAssembly.Memory): WebAssembly.Instance {
    return new WebAssembly.Instance(this.clone, { ...this.imports, [CLONE_MEMORY_IMPORT.module]: { [CLONE_MEMORY_IMPORT.name]: memory } });
  }
}

/** Runs `on_restore` if the module exports it (once, when a persistent instance is made). */
export function runOnRestore(instance: WebAssembly.Instance): void {
  exportedFunction(instance, 'on_restore')?.();
}

/** Runs an entry point on an instance that is already running (a persistent instance): no `on_restore`. */
export function runPersistentEntry(instance: WebAssembly.Instance, entry: EntryPoint, args: number[]): number {
  const fn = exportedFunction(instance, entry);
  if (!fn) throw new GuestFailure('bad_request', `the module does not export ${entry}`);
  const status = fn(...args);
  return status === undefined ? 0 : Number(status);
}

/**
 * Runs `on_restore` if exported, tells `restored` (the clone is running),
 * then runs the entry point; returns the guest's status (0 for success).
 */
export function runEntry(instance: WebAssembly.Instance, entry: EntryPoint, args: number[], restored?: () => void): number {
  const fn = exportedFunction(instance, entry);
  if (!fn) throw new GuestFailure('bad_request', `the module does not export ${entry}`);
  exportedFunction(instance, 'on_restore')?.();
  restored?.();
  const status = fn(...args);
  return status === undefined ? 0 : Number(status);
}
