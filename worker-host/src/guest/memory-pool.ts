/**
 * Wasm memories made ahead, one pool per guest thread. A clone variant
 * imports its memory (core's rewriteForSnapshot), so a fork takes a memory
 * from here and maps its snapshot over it instead of making, growing and
 * accounting for a new WebAssembly.Memory on its critical path (0.4–6 ms, most
 * of it V8's garbage-collection work for the growth).
 *
 * A memory is pooled by class: the module's declared maximum (an imported
 * memory may not declare more, and must not declare less, or clones could
 * grow less far than their parent) and its current size (a clone's memory is
 * exactly its snapshot's size, and wasm memories never shrink). Memories
 * are made for the classes of the snapshots this thread holds, most recently
 * used first; a class nobody holds any more keeps its free memories until
 * their room is needed (the next snapshot is often of the same size). Nothing in a pooled memory belongs to any fork: a fresh one is all
 * zero, and one a clone used comes back reset to fresh zero pages by the
 * native pager (without it, it is dropped: portable hosts only make fresh ones).
 *
 * A free memory may also carry an instance of a clone variant made on it
 * while the thread idled (`instantiateAhead`): the instance has run no code
 * and holds nothing of any snapshot (a clone variant's data segments are
 * passive, its start function removed), so a fork of any snapshot of that
 * module and class maps its snapshot under it and sets its globals instead
 * of instantiating on its path (0.1–0.2 ms on a thread cold from idling).
 * Every free memory of the class may carry one, not just one of them. And a
 * clone's memory may come back with the clone's own instance, when the
 * module's code changes nothing of an instance but its memory and globals
 * (core's wasm-instance-state.ts): the next fork maps its snapshot over the
 * memory and sets every mutable global, as it does to an instance made
 * ahead, and that leaves it as a fresh one. Back to back, the next request
 * comes before the thread could make an instance ahead (docs/fork.md,
 * "Instances given back"), so this is what spares those forks instantiating.
 *
 * A memory given back later (`giveBackLater`) is free at once but unreset:
 * it still holds what its clone left. A restorer that maps its snapshot over
 * the whole memory (copy-on-write: one MAP_FIXED mapping, which replaces every
 * page under it) takes it as it is, so the reset, a second mapping of the
 * same range, is not on its path; any other gets it reset first. An idle
 * thread resets them (`settle`), so that the pages a clone wrote are not
 * held for long.
 */
import { WASM_PAGE_SIZE } from '@flurry/core/basics';
import type { NativePager } from '../native/pager.js';

/**
 * Free memories kept per thread, over all classes: room for the memory of
 * the clone that just ended beside the one made ahead, so that back-to-back
 * clones and spares circulate the same memories and none is made (and
 * collected) per call. Each holds no pages but is a whole V8 reservation
 * (10 GiB of address space, of about 1 TiB for every wasm memory of a
 * process): in steady state a call thread holds three (running, spare, one
 * free) where it held two.
 */
export const POOLED_PER_THREAD = 2;

/** A clone variant's instance made ahead on a pooled memory, for any snapshot of the module `module` names. */
export interface PooledInstance {
  module: string;
  instance: WebAssembly.Instance;
}

interface FreeMemory {
  memory: WebAssembly.Memory;
  instance?: PooledInstance;
  /** Given back and not reset yet: it holds what its clone left (its pages, the snapshot mapped over it). */
  unreset: boolean;
}

interface MemoryClass {
  maximumPages: number;
  pages: number;
  /** Snapshots of this class the thread holds (0: memories are kept, not made). */
  users: number;
  free: FreeMemory[];
}

export interface PoolStats {
  /** Memories handed out from the pool, and made on the spot because none was free. */
  taken: number;
  missed: number;
  /** Made ahead, and given back after a clone (kept for the next). */
  made: number;
  recycled: number;
  /** Handed out unreset, to a restorer that maps its snapshot over all of it. */
  takenUnreset: number;
  /** Instances made ahead on free memories, given back with their memory after a clone (instances.ts's recycle), and handed out with their memory. */
  instancesMade: number;
  instancesReturned: number;
  instancesTaken: number;
  free: number;
}

export class MemoryPool {
  /** By `maximumPages:pages`, least recently used first. */
  private readonly classes = new Map<string, MemoryClass>();
  private readonly counts = { taken: 0, missed: 0, made: 0, recycled: 0, takenUnreset: 0, instancesMade: 0, instancesReturned: 0, instancesTaken: 0 };

  constructor(
    private readonly pager: NativePager | undefined,
    private readonly limit: number = POOLED_PER_THREAD,
  ) {}

  /** A snapshot of this class is held: keep memories of it ahead. Returns its release. */
  want(maximumPages: number, byteLength: number): () => void {
    const pages = byteLength / WASM_PAGE_SIZE;
    const c = this.touch(maximumPages, pages);
    c.users++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      c.users--;
    };
  }

  /**
   * A memory of exactly `byteLength` bytes and the declared maximum: from
   * the pool, or made now. It holds zeros, unless `mapsWhole` (the caller
   * maps its snapshot over all of it, which replaces every page) and it is
   * handed out unreset (`unreset`). With `module`, one carrying an instance of
   * that module is preferred, and its instance handed out with it.
   */
  take(
    maximumPages: number,
    byteLength: number,
    module?: string,
    mapsWhole = false,
  ): { memory: WebAssembly.Memory; pooled: boolean; instance?: WebAssembly.Instance; unreset: boolean } {
    const pages = byteLength / WASM_PAGE_SIZE;
    const free = this.classes.get(key(maximumPages, pages))?.free ?? [];
    // Best first: an instance of the module (it saves instantiating, 0.1 ms), then no reset needed (25–40 µs).
    const worth = (f: FreeMemory) => (module !== undefined && f.instance?.module === module ? 2 : 0) + (mapsWhole || !f.unreset ? 1 : 0);
    while (free.length > 0) {
      let best = 0;
      for (let i = 1; i < free.length; i++) if (worth(free[i]) > worth(free[best])) best = i;
      const entry = free.splice(best, 1)[0];
      if (entry.unreset && !mapsWhole && !this.reset(entry.memory)) continue;
      this.counts.taken++;
      if (entry.unreset && mapsWhole) this.counts.takenUnreset++;
      this.touch(maximumPages, pages);
      const instance = module !== undefined && entry.instance?.module === module ? entry.instance.instance : undefined;
      if (instance) this.counts.instancesTaken++;
      return { memory: entry.memory, pooled: true, instance, unreset: entry.unreset && mapsWhole };
    }
    this.counts.missed++;
    return { memory: new WebAssembly.Memory({ initial: pages, maximum: maximumPages }), pooled: false, unreset: false };
  }

  /**
   * Makes an instance of `module` on one free memory of the class that has
   * none of it (call while the thread is idle; one per call, so that each
   * step stays short); `make` instantiates on the memory given. A memory
   * carries one instance at most: another module's is dropped. False when
   * every free memory of the class has one already.
   */
  instantiateAhead(module: string, maximumPages: number, byteLength: number, make: (memory: WebAssembly.Memory) => WebAssembly.Instance): boolean {
    const free = this.classes.get(key(maximumPages, byteLength / WASM_PAGE_SIZE))?.free;
    const lacking = free?.filter((f) => f.instance?.module !== module) ?? [];
    const entry = lacking.find((f) => !f.instance) ?? lacking[0];
    if (!entry) return false;
    entry.instance = { module, instance: make(entry.memory) };
    this.counts.instancesMade++;
    return true;
  }

  /**
   * A clone is over and nothing references its memory any more: reset it and
   * keep it if its class (by its size now) is wanted and there is room; else
   * it is left to the garbage collector.
   */
  giveBack(memory: WebAssembly.Memory, maximumPages: number): void {
    const free = this.roomFor(memory, maximumPages);
    if (!free || !this.reset(memory)) return;
    free.push({ memory, unreset: false });
    this.counts.recycled++;
  }

  /**
   * giveBack, with the reset left for the thread's next idle moment
   * (settle), or never, if a restorer that maps over all of it takes it
   * first: a clone's memory comes back right after its answer is posted,
   * when the next call may already be waiting (the reset unmaps the pages it
   * wrote: 25–40 µs here). `instance`: the clone's instance, kept with it
   * for the next fork of its module (only for a module whose code changes
   * nothing of an instance but memory and globals).
   */
  giveBackLater(memory: WebAssembly.Memory, maximumPages: number, instance?: PooledInstance): void {
    const free = this.roomFor(memory, maximumPages);
    if (!free) return;
    free.push({ memory, unreset: true, instance });
    this.counts.recycled++;
    if (instance) this.counts.instancesReturned++;
  }

  /** Resets every free memory given back unreset (the thread is idle); true if any was. */
  settle(): boolean {
    let any = false;
    for (const c of this.classes.values()) {
      for (let i = 0; i < c.free.length; ) {
        const f = c.free[i];
        if (!f.unreset) {
          i++;
          continue;
        }
        any = true;
        if (this.reset(f.memory)) {
          f.unreset = false;
          i++;
        } else c.free.splice(i, 1);
      }
    }
    return any;
  }

  /**
   * Makes memories for the held classes, most recently used first, up to the
   * limit: the `limit` most recent get one each, room taken first from
   * classes nobody holds, then from the least recent (call while the thread is idle).
   */
  refill(): void {
    const all = [...this.classes.values()];
    const recent = all.filter((c) => c.users > 0).reverse().slice(0, this.limit);
    const evictable = all.filter((c) => !recent.includes(c));
    for (const c of recent) {
      if (c.free.length > 0) continue;
      if (this.freeCount() >= this.limit) (evictable.find((o) => o.free.length > 0) ?? recent.find((o) => o.free.length > 1))?.free.pop();
      if (this.freeCount() >= this.limit) break;
      c.free.push({ memory: new WebAssembly.Memory({ initial: c.pages, maximum: c.maximumPages }), unreset: false });
      this.counts.made++;
    }
    for (const [k, c] of this.classes) if (c.users === 0 && c.free.length === 0) this.classes.delete(k);
  }

  stats(): PoolStats {
    return { ...this.counts, free: this.freeCount() };
  }

  /** The free list a given-back memory may join (its class by its size now is wanted, reuse is possible, there is room), if any. */
  private roomFor(memory: WebAssembly.Memory, maximumPages: number): FreeMemory[] | undefined {
    const c = this.classes.get(key(maximumPages, memory.buffer.byteLength / WASM_PAGE_SIZE));
    if (!c || !this.pager || this.freeCount() >= this.limit) return undefined;
    return c.free;
  }

  /** Fresh zero pages over the whole memory; false if it cannot be (still registered, or unmappable): never reuse it then. */
  private reset(memory: WebAssembly.Memory): boolean {
    try {
      if (memory.buffer.byteLength > 0) this.pager!.resetMemory(memory, memory.buffer.byteLength);
      return true;
    } catch {
      return false;
    }
  }

  private freeCount(): number {
    let n = 0;
    for (const c of this.classes.values()) n += c.free.length;
    return n;
  }

  /** The class, made most recently used. */
  private touch(maximumPages: number, pages: number): MemoryClass {
    const k = key(maximumPages, pages);
    const c = this.classes.get(k) ?? { maximumPages, pages, users: 0, free: [] };
    this.classes.delete(k);
    this.classes.set(k, c);
    return c;
  }
}

function key(maximumPages: number, pages: number): string {
  return `${maximumPages}:${pages}`;
}
