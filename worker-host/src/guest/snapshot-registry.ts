/**
 * The snapshots a pool holds (warmed here or adopted from another host),
 * which guest threads were sent each one, and when a released snapshot's
 * memory can be freed: only once every thread has dropped it, because a
 * memfd number closed too early could be reused for another file and mapped
 * by a thread that has not heard of the release yet.
 */
import type { Snapshot } from './instance.js';
import type { ModuleVariants } from './module-variants.js';

export interface HeldSnapshot<Holder, Info> {
  /** Unique for the pool's life: a key released and warmed again gets a new one. */
  id: number;
  key: string;
  origin: 'warm' | 'adopted';
  variants: ModuleVariants;
  snapshot: Snapshot;
  info: Info;
  /** Threads that were sent it and have not dropped it yet. */
  holders: Set<Holder>;
  released: boolean;
}

interface Releasing<Holder, Info> {
  held: HeldSnapshot<Holder, Info>;
  done: Promise<void>;
  resolve(): void;
}

export class SnapshotRegistry<Holder, Info> {
  private readonly byKey = new Map<string, HeldSnapshot<Holder, Info>>();
  private readonly releasing = new Map<number, Releasing<Holder, Info>>();
  private nextId = 1;

  /** @param free frees a snapshot's memory and module once no thread holds it (called once per snapshot). */
  constructor(private readonly free: (held: HeldSnapshot<Holder, Info>) => void) {}

  get(key: string): HeldSnapshot<Holder, Info> | undefined {
    return this.byKey.get(key);
  }

  keys(origin: HeldSnapshot<Holder, Info>['origin']): string[] {
    return [...this.byKey.values()].filter((h) => h.origin === origin).map((h) => h.key);
  }

  all(): IterableIterator<HeldSnapshot<Holder, Info>> {
    return this.byKey.values();
  }

  add(key: string, origin: HeldSnapshot<Holder, Info>['origin'], variants: ModuleVariants, snapshot: Snapshot, info: Info): HeldSnapshot<Holder, Info> {
    if (this.byKey.has(key)) throw new Error(`${key} already holds a snapshot`);
    const held = { id: this.nextId++, key, origin, variants, snapshot, info, holders: new Set<Holder>(), released: false };
    this.byKey.set(key, held);
    return held;
  }

  /** Takes the key away at once; resolves once every holder has dropped the snapshot and it was freed. */
  release(key: string): { held: HeldSnapshot<Holder, Info>; done: Promise<void> } | undefined {
    const held = this.byKey.get(key);
    if (!held) return undefined;
    this.byKey.delete(key);
    held.released = true;
    let resolve!: () => void;
    const done = new Promise<void>((r) => (resolve = r));
    this.releasing.set(held.id, { held, done, resolve });
    this.settle(held.id);
    return { held, done };
  }

  /** A thread dropped a snapshot (answering its release, or replacing it). */
  dropped(holder: Holder, snapshotId: number): void {
    const releasing = this.releasing.get(snapshotId);
    if (!releasing) return;
    releasing.held.holders.delete(holder);
    this.settle(snapshotId);
  }

  /** A thread is gone: whatever it held died with it. */
  holderGone(holder: Holder): void {
    for (const held of this.byKey.values()) held.holders.delete(holder);
    for (const [id, { held }] of this.releasing) {
      held.holders.delete(holder);
      this.settle(id);
    }
  }

  /** Every thread is gone (the pool closed): frees everything. */
  releaseAll(): Promise<void> {
    for (const key of [...this.byKey.keys()]) this.release(key);
    const all = [...this.releasing.values()].map((r) => r.done);
    for (const [id, { held }] of [...this.releasing]) {
      held.holders.clear();
      this.settle(id);
    }
    return Promise.all(all).then(() => undefined);
  }

  private settle(id: number): void {
    const releasing = this.releasing.get(id);
    if (!releasing || releasing.held.holders.size > 0) return;
    this.releasing.delete(id);
    try {
      this.free(releasing.held);
    } finally {
      releasing.resolve();
    }
  }
}
