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
}

interface MemoryClass {
  maximumPages: number;
  pages: number;
  /** Snapshots of this class the thread holds (0: memories are kept, not made). */
  users: number;
  free: FreeMemory[];
}

/** A memory given back whose reset waits for the thread to idle (giveBackLater). */
interface ReturnedMemory {
  memory: WebAssembly.Memory;
  maximumPages: number;
}

export interface PoolStats {
  /** Memories handed out from the pool, and made on the spot because none was free. */
  taken: number;
  missed: number;
  /** Made ahead, and given back (reset) after a clone. */
  made: number;
  recycled: number;
  /** Instances made ahead on free memories, and handed out with their memory. */
  instancesMade: number;
  instancesTaken: number;
  free: number;
}

export class MemoryPool {
  /** By `maximumPages:pages`, least recently used first. */
  private readonly classes = new Map<string, MemoryClass>();
  private readonly counts = { taken: 0, missed: 0, made: 0, recycled: 0, instancesMade: 0, instancesTaken: 0 };
  /** Given back, not reset yet: nothing of them is handed out before their reset. */
  private readonly returned: ReturnedMemory[] = [];

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
   * A memory of exactly `byteLength` bytes and the declared maximum, holding
   * zeros: from the pool, or made now. With `module`, one carrying an
   * instance of that module is preferred, and its instance handed out with it.
   */
  take(maximumPages: number, byteLength: number, module?: string): { memory: WebAssembly.Memory; pooled: boolean; instance?: WebAssembly.Instance } {
    const pages = byteLength / WASM_PAGE_SIZE;
    const free = this.classes.get(key(maximumPages, pages))?.free;
    // None free: one given back and not reset yet is reset now, cheaper than a new memory.
    if (free?.length === 0) this.settle((r) => r.maximumPages === maximumPages && r.memory.buffer.byteLength === byteLength);
    const at = free && module !== undefined ? free.findIndex((f) => f.instance?.module === module) : -1;
    const entry = at >= 0 ? free!.splice(at, 1)[0] : free?.pop();
    if (entry) {
      this.counts.taken++;
      this.touch(maximumPages, pages);
      const instance = module !== undefined && entry.instance?.module === module ? entry.instance.instance : undefined;
      if (instance) this.counts.instancesTaken++;
      return { memory: entry.memory, pooled: true, instance };
    }
    this.counts.missed++;
    return { memory: new WebAssembly.Memory({ initial: pages, maximum: maximumPages }), pooled: false };
  }

  /**
   * Makes an instance of `module` on a free memory of the class that has
   * none of it (call while the thread is idle); `make` instantiates on the
   * memory given. A memory carries one instance at most: another module's is dropped.
   */
  instantiateAhead(module: string, maximumPages: number, byteLength: number, make: (memory: WebAssembly.Memory) => WebAssembly.Instance): void {
    const free = this.classes.get(key(maximumPages, byteLength / WASM_PAGE_SIZE))?.free;
    if (!free || free.some((f) => f.instance?.module === module)) return;
    const entry = free.find((f) => !f.instance) ?? free[0];
    if (!entry) return;
    entry.instance = { module, instance: make(entry.memory) };
    this.counts.instancesMade++;
  }

  /**
   * A clone is over and nothing references its memory any more: reset it and
   * keep it if its class (by its size now) is wanted and there is room; else
   * it is left to the garbage collector.
   */
  giveBack(memory: WebAssembly.Memory, maximumPages: number): void {
    const c = this.classes.get(key(maximumPages, memory.buffer.byteLength / WASM_PAGE_SIZE));
    if (!c || !this.pager || this.freeCount() >= this.limit) return;
    try {
      if (memory.buffer.byteLength > 0) this.pager.resetMemory(memory, memory.buffer.byteLength);
    } catch {
      // Still registered (a fault was pending at the end) or unmappable: never reused, left to the collector.
      return;
    }
    c.free.push({ memory });
    this.counts.recycled++;
  }

  /**
   * giveBack, with the reset left for the thread's next idle moment
   * (settle): a clone's memory comes back right after its answer is posted,
   * when the next call may already be waiting (the reset unmaps the pages it
   * wrote: 25–40 µs here).
   */
  giveBackLater(memory: WebAssembly.Memory, maximumPages: number): void {
    this.returned.push({ memory, maximumPages });
    // A thread kept busy never idles: at most `limit` wait, each holding the pages its clone wrote.
    if (this.returned.length > this.limit) {
      const oldest = this.returned.shift()!;
      this.giveBack(oldest.memory, oldest.maximumPages);
    }
  }

  /** Resets the memories given back later (those `which` picks) and keeps them as giveBack does; true if any was waiting. */
  settle(which: (r: ReturnedMemory) => boolean = () => true): boolean {
    let any = false;
    for (let i = 0; i < this.returned.length; ) {
      const r = this.returned[i];
      if (!which(r)) {
        i++;
        continue;
      }
      this.returned.splice(i, 1);
      this.giveBack(r.memory, r.maximumPages);
      any = true;
    }
    return any;
  }

  /**
   * Makes memories for the held classes, most recently used first, up to the
   * limit: the `limit` most recent get one each, room taken first from
   * classes nobody holds, then from the least recent (call while the thread is idle).
   */
  refill(): void {
    this.settle();
    const all = [...this.classes.values()];
    const recent = all.filter((c) => c.users > 0).reverse().slice(0, this.limit);
    const evictable = all.filter((c) => !recent.includes(c));
    for (const c of recent) {
      if (c.free.length > 0) continue;
      if (this.freeCount() >= this.limit) (evictable.find((o) => o.free.length > 0) ?? recent.find((o) => o.free.length > 1))?.free.pop();
      if (this.freeCount() >= this.limit) break;
      c.free.push({ memory: new WebAssembly.Memory({ initial: c.pages, maximum: c.maximumPages }) });
      this.counts.made++;
    }
    for (const [k, c] of this.classes) if (c.users === 0 && c.free.length === 0) this.classes.delete(k);
  }

  stats(): PoolStats {
    return { ...this.counts, free: this.freeCount() };
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
